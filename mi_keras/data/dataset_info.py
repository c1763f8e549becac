"""What `load_dataset` tells about the data it returns."""

from __future__ import annotations

import dataclasses
from typing import Any

from mi_keras.data.dataset_source import DatasetSource


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """A small description of a loaded dataset, enough to build and label a classifier.

    Example:
    ```python
    import mi_keras
    from mi_keras.models.architectures import small_cnn

    dataset, info = mi_keras.data.load_dataset("digits", split="train", batch_size=64)
    classifier = small_cnn(input_shape=info.image_shape, num_classes=info.num_classes, padding="same")
    print(info.num_examples)  # {'train': 1294, 'validation': 144}
    ```

    Args:
        name: the dataset's name (the tfds name, or the file or folder name).
        source: which `DatasetSource` read it.
        origin: the file, folder or tfds data folder that was read.
        num_classes: labels are in ``[0, num_classes)``.
        image_shape: ``(height, width, channels)`` of the images the dataset yields.
        class_names: one name per class, in label order.
        num_examples: examples per split, for the splits read by this call (train and
            validation come together, since validation is carved from train).
        class_counts: examples per class, for the same splits.
    """

    name: str
    source: DatasetSource
    origin: str
    num_classes: int
    image_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    num_examples: dict[str, int]
    class_counts: dict[str, tuple[int, ...]]

    def __post_init__(self):
        if len(self.class_names) != self.num_classes:
            raise ValueError(f"`class_names` has {len(self.class_names)} names for {self.num_classes} classes.")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, e.g. for an exported model's metadata."""
        return {
            "name": self.name,
            "source": self.source.value,
            "origin": self.origin,
            "num_classes": self.num_classes,
            "image_shape": list(self.image_shape),
            "class_names": list(self.class_names),
            "num_examples": dict(self.num_examples),
            "class_counts": {split: list(counts) for split, counts in self.class_counts.items()},
        }
