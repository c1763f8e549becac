"""The one entry point: a dataset spec in, a tf.data pipeline and its description out."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from mi_keras.data.augment_policy import AugmentPolicy
from mi_keras.data.data_error import DataError
from mi_keras.data.dataset_info import DatasetInfo
from mi_keras.data.dataset_source import DatasetSource
from mi_keras.data.dataset_spec import DatasetSpec
from mi_keras.data.dataset_split import DatasetSplit
from mi_keras.data.digits_source import read_digits
from mi_keras.data.idx_source import read_idx_folder
from mi_keras.data.image_augmentation import ImageAugmentation
from mi_keras.data.image_folder_source import read_image_folder
from mi_keras.data.input_pipeline import build_input_pipeline
from mi_keras.data.numpy_source import read_npy_folder, read_npz
from mi_keras.data.source_data import SourceData
from mi_keras.data.splits import random_subset, resolve_size, stratified_split
from mi_keras.data.tfds_source import read_tfds
from mi_keras.data.tiny_imagenet_source import read_tiny_imagenet
from mi_keras.data.validation import resolve_class_names, validate_images, validate_labels

# Streams of the seeds derived from `split_seed`: one per carving, so they stay independent.
_TEST_STREAM, _VALIDATION_STREAM, _TAKE_STREAM = 0, 1, 2


def load_dataset(
    spec: str | DatasetSpec = "digits",
    split: str | DatasetSplit = DatasetSplit.TRAIN,
    batch_size: int | None = 64,
    *,
    augment: bool | str | AugmentPolicy = False,
    seed: int | None = None,
    shuffle: bool | None = None,
    drop_remainder: bool | None = None,
    validation_size: int | float = 0.1,
    test_size: int | float = 0.2,
    split_seed: int = 0,
    take: int | None = None,
    data_dir: str | os.PathLike | None = None,
    download: bool = False,
    image_size: tuple[int, int] | None = None,
    class_names: Sequence[str] | None = None,
    num_classes: int | None = None,
    cache: bool | None = None,
) -> tuple[tf.data.Dataset, DatasetInfo]:
    """Loads one split of a dataset as ``(image float32 [0, 1] NHWC, label int32)`` batches.

    Every source gives the same contract. The data is read and checked before the
    pipeline is built, so bad data fails here with a `DataError` naming the file and the
    problem, never in the middle of training. The validation split is carved from the
    training files (seeded by ``split_seed`` and stratified), never from the test files:
    it is what model selection uses. Sources without a train/test division (digits, an
    ``.npz`` with ``x``/``y``, a flat image folder) also give up a stratified test split.

    Example:
    ```python
    from mi_keras.data import load_dataset
    from mi_keras.models import build_classifier

    # "idx:/data/mnist", "cifar10" (tfds) or "npz:..." read the same way; digits ship with scikit-learn.
    train, info = load_dataset("digits", "train", batch_size=128, augment=True, seed=0)
    validation, _ = load_dataset("digits", "validation", batch_size=512)
    test, _ = load_dataset("digits", "test", batch_size=512)
    model = build_classifier("small_cnn", info.image_shape, info.num_classes, padding="same")
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(train, validation_data=validation, epochs=1)
    ```

    Args:
        spec: what to read (see `DatasetSpec`): ``"digits"``, a tfds name such as
            ``"cifar10"`` or ``"tfds:svhn_cropped"``, or ``"idx:PATH"``, ``"npz:PATH"``,
            ``"npy:PATH"``, ``"folder:PATH"``.
        split: ``"train"``, ``"validation"`` or ``"test"``.
        batch_size: examples per batch; None yields single examples.
        augment: ``False``, ``True`` (the policy that fits the data, see `AugmentPolicy`)
            or a policy name; training split only.
        seed: seeds the shuffle and the augmentation; the same seed gives the same batches.
        shuffle: reshuffle at every epoch; by default only the training split is shuffled.
        drop_remainder: drop the last, smaller batch; by default True for the training
            split (the MI bound needs full batches of at least two examples).
        validation_size: examples carved from the training files for validation: a
            fraction in [0, 1) or a count.
        test_size: the same, for the test split of sources without one.
        split_seed: decides which examples go to validation and test. Keep it equal in
            the calls that load the splits of one experiment, so that they never overlap.
        take: keep this many examples of the split, drawn at random under
            ``split_seed`` (for quick runs).
        data_dir: the tensorflow_datasets data folder; for file sources, the folder that
            a relative path in ``spec`` starts from.
        download: let tensorflow_datasets download a dataset that is not prepared.
        image_size: ``(height, width)`` to resize every image to; needed for sources
            whose images differ in size.
        class_names: the class names, in label order, when the source has none.
        num_classes: the number of classes when the source declares none (labels are
            checked against it); by default the largest label + 1.
        cache: cache prepared examples in memory; by default decoded or resized
            examples are cached when they fit in 2 GiB.

    Returns:
        ``(dataset, info)``: the `tf.data.Dataset` and a `DatasetInfo`.

    Raises:
        DataError: for missing, unreadable or bad data, or an empty split.
        ValueError: for invalid arguments.
    """
    spec = DatasetSpec.parse(spec)
    split = DatasetSplit.parse(split, "split")
    policy = AugmentPolicy.from_argument(augment)
    _check_arguments(spec, split, batch_size, policy, take, download, image_size)
    source = _read_source(spec, split, data_dir, download, image_size)

    images = validate_images(source.images, source.origin) if source.images is not None else None
    labels = validate_labels(source.labels, len(source.labels) if images is None else len(images), source.labels_origin)
    if len(labels) == 0:
        raise DataError(
            source.origin,
            f"is an empty split: the {split.file_split.value} split holds no examples.",
        )
    names = resolve_class_names(labels, source.labels_origin, class_names or source.class_names, num_classes)
    image_shape = _image_shape(source, images, image_size)

    splits = _split_indices(source, labels, split, validation_size, test_size, split_seed)
    indices = splits[split.value]
    if take is not None:
        indices = random_subset(indices, take, [split_seed, _TAKE_STREAM])
        splits[split.value] = indices
    drop_remainder = (split is DatasetSplit.TRAIN) if drop_remainder is None else drop_remainder
    _check_not_empty(source, split, indices, batch_size, drop_remainder, validation_size)

    policy = policy.resolve(source.name, image_shape)
    augmentation = _augmentation(policy, image_shape, seed)
    dataset = build_input_pipeline(
        source,
        images,
        labels,
        indices,
        image_shape=image_shape,
        batch_size=batch_size,
        shuffle=(split is DatasetSplit.TRAIN) if shuffle is None else shuffle,
        seed=seed,
        augmentation=augmentation,
        drop_remainder=drop_remainder,
        cache=cache,
    )
    info = DatasetInfo(
        name=source.name,
        source=spec.source,
        origin=source.origin,
        num_classes=len(names),
        image_shape=image_shape,
        class_names=names,
        num_examples={name: len(chosen) for name, chosen in splits.items()},
        class_counts={
            name: tuple(np.bincount(labels[chosen], minlength=len(names)).tolist()) for name, chosen in splits.items()
        },
    )
    return dataset, info


def _check_arguments(
    spec: DatasetSpec,
    split: DatasetSplit,
    batch_size: int | None,
    policy: AugmentPolicy,
    take: int | None,
    download: bool,
    image_size: tuple[int, int] | None,
) -> None:
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"`batch_size` must be an int >= 1, or None for single examples; got {batch_size!r}.")
    if policy is not AugmentPolicy.NONE and split is not DatasetSplit.TRAIN:
        raise ValueError(
            f"`augment` applies to the training split only; got augment={policy.value!r} for {split.value!r}."
        )
    if take is not None and (isinstance(take, bool) or not isinstance(take, int) or take < 1):
        raise ValueError(f"`take` must be an int >= 1 or None; got {take!r}.")
    if download and spec.source is not DatasetSource.TFDS:
        raise ValueError(f"`download` applies to tensorflow_datasets only, not to the {spec.source.value!r} source.")
    if image_size is not None and (len(image_size) != 2 or min(image_size) < 1):
        raise ValueError(f"`image_size` must be (height, width) with both >= 1; got {image_size!r}.")


def _read_source(
    spec: DatasetSpec,
    split: DatasetSplit,
    data_dir: str | os.PathLike | None,
    download: bool,
    image_size: tuple[int, int] | None,
) -> SourceData:
    if spec.source is DatasetSource.TFDS:
        return read_tfds(spec.location, split, data_dir, download)
    if spec.source is DatasetSource.DIGITS:
        return read_digits()
    path = spec.path(data_dir, split)
    if spec.source is DatasetSource.IMAGE_FOLDER:
        return read_image_folder(path, split, tuple(image_size) if image_size else None)
    if spec.source is DatasetSource.NPZ:
        return read_npz(path, split, split_file=spec.per_split_files)
    readers = {
        DatasetSource.IDX: read_idx_folder,
        DatasetSource.NPY: read_npy_folder,
        DatasetSource.TINY_IMAGENET: read_tiny_imagenet,
    }
    return readers[spec.source](path, split)


def _image_shape(
    source: SourceData, images: np.ndarray | None, image_size: tuple[int, int] | None
) -> tuple[int, int, int]:
    stored = images.shape[1:] if images is not None else source.image_shape
    if image_size is not None:
        return (int(image_size[0]), int(image_size[1]), int(stored[-1]))
    if None in stored:
        raise DataError(
            source.origin,
            f"mixed image shapes {tuple(stored)}: pass image_size=(height, width) to resize them all.",
        )
    return tuple(int(size) for size in stored)


def _split_indices(
    source: SourceData,
    labels: np.ndarray,
    split: DatasetSplit,
    validation_size: float,
    test_size: float,
    split_seed: int,
) -> dict[str, np.ndarray]:
    """The indices of the split asked for and of its sibling (train with validation)."""
    everything = np.arange(len(labels))
    if source.pooled:
        test_count = resolve_size(test_size, len(labels), "test_size")
        rest, test = stratified_split(labels, test_count, [split_seed, _TEST_STREAM])
    else:
        rest, test = everything, everything
    if split is DatasetSplit.TEST:
        return {DatasetSplit.TEST.value: test}
    validation_count = resolve_size(validation_size, len(rest), "validation_size")
    kept, carved = stratified_split(labels[rest], validation_count, [split_seed, _VALIDATION_STREAM])
    return {DatasetSplit.TRAIN.value: rest[kept], DatasetSplit.VALIDATION.value: rest[carved]}


def _check_not_empty(
    source: SourceData,
    split: DatasetSplit,
    indices: np.ndarray,
    batch_size: int | None,
    drop_remainder: bool,
    validation_size: float,
) -> None:
    if len(indices) == 0:
        hint = f" (validation_size={validation_size})" if split is DatasetSplit.VALIDATION else ""
        raise DataError(source.origin, f"is an empty split: the {split.value} split has no examples{hint}.")
    if batch_size is not None and drop_remainder and len(indices) < batch_size:
        raise DataError(
            source.origin,
            f"is an empty split: {len(indices)} {split.value} examples make no full batch of "
            f"{batch_size} "
            "with drop_remainder=True; lower batch_size or pass drop_remainder=False.",
        )


def _augmentation(
    policy: AugmentPolicy, image_shape: tuple[int, int, int], seed: int | None
) -> ImageAugmentation | None:
    if policy is AugmentPolicy.NONE:
        return None
    height, width, _ = image_shape
    # 4 pixels for 32x32 (the CIFAR recipe), 3 for 28x28, 1 for 8x8 digits.
    padding = max(1, min(height, width) // 8)
    return ImageAugmentation(
        height, width, padding=padding, horizontal_flip=policy is AugmentPolicy.CROP_FLIP, seed=seed
    )
