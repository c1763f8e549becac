"""Which augmentations the training pipeline applies."""

from __future__ import annotations

from mi_keras.enums import ParsableEnum

# Colour datasets of digits, whose meaning changes under a horizontal flip; single-channel
# data (MNIST-like, digits) never gets flips from AUTO anyway.
_FLIP_VARIANT_DATASETS = frozenset({"svhn", "svhn_cropped"})


class AugmentPolicy(ParsableEnum):
    """Augmentation of the training split (Keras preprocessing layers, seeded).

    ``AUTO`` (what ``augment=True`` means) picks random crop with zero padding for every
    dataset and adds the horizontal flip only for three-channel images of natural scenes:
    never for single-channel data (MNIST-like, digits) nor for known digit and character
    datasets such as SVHN. Ask for ``"crop_flip"`` explicitly to flip, say, Fashion-MNIST.
    """

    NONE = "none"
    CROP = "crop"  # ZeroPadding2D + RandomCrop back to the input size
    CROP_FLIP = "crop_flip"  # the CIFAR recipe: RandomCrop(32, padding=4) + horizontal flip
    AUTO = "auto"

    @classmethod
    def from_argument(cls, augment: bool | str | AugmentPolicy | None) -> AugmentPolicy:
        """Reads the ``augment`` argument: a bool, a policy, or its name."""
        if augment is None or augment is False:
            return cls.NONE
        if augment is True:
            return cls.AUTO
        return cls.parse(augment, "augment")

    def resolve(self, dataset_name: str, image_shape: tuple[int, ...]) -> AugmentPolicy:
        """Replaces ``AUTO`` by the concrete policy that fits this data."""
        if self is not AugmentPolicy.AUTO:
            return self
        flips_fit = image_shape[-1] == 3 and dataset_name.lower() not in _FLIP_VARIANT_DATASETS
        return AugmentPolicy.CROP_FLIP if flips_fit else AugmentPolicy.CROP
