"""What a source hands to `load_dataset`: one split of the files, read but not yet checked."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class SourceData:
    """The examples of one split of the files (or of the whole pool), in a fixed order.

    Small sources hold their images in memory (``images``); large ones (tensorflow_datasets,
    image folders) give a ``stream`` that decodes them on the fly, in the order of
    ``labels``. Either way the labels are in memory, which is what the validation checks
    and the stratified splits need.

    Args:
        name: the dataset's name.
        origin: the file or folder read, named in every error message.
        labels_origin: the file of the labels when it is not ``origin``.
        labels: the labels as read, one per example.
        images: the images as read (``[N, H, W]`` or ``[N, H, W, C]``), or None for a stream.
        stream: for streamed sources, a function returning a `tf.data.Dataset` of
            ``(uint8 image [H, W, C], label)`` in the order of ``labels``.
        image_shape: ``(H, W, C)`` of the streamed images (``None`` where they vary); None
            for in-memory images, whose shape is their array's.
        class_names: the class names the source declares, or None to infer them.
        pooled: True when the source holds all examples with no train/test division,
            so that `load_dataset` carves the test split from it too.
    """

    name: str
    origin: str
    labels: np.ndarray
    images: np.ndarray | None = None
    stream: Callable[[], tf.data.Dataset] | None = None
    image_shape: tuple[int | None, ...] | None = None
    class_names: tuple[str, ...] | None = None
    pooled: bool = False
    labels_origin: str | None = None

    @classmethod
    def from_files(cls, folder, images_path, images: np.ndarray, labels_path, labels: np.ndarray) -> SourceData:
        """In-memory examples read from an images file and a labels file of ``folder``."""
        return cls(
            name=folder.name, origin=str(images_path), labels=labels, images=images, labels_origin=str(labels_path)
        )

    def __post_init__(self):
        if (self.images is None) == (self.stream is None):
            raise ValueError("A SourceData holds either `images` or a `stream`, not both or neither.")
        if self.stream is not None and self.image_shape is None:
            raise ValueError("A streamed SourceData needs its `image_shape`.")
        if self.labels_origin is None:
            object.__setattr__(self, "labels_origin", self.origin)
