"""Folders of image files, one sub-folder per class, read through Keras utilities."""

from __future__ import annotations

import pathlib

import keras
import numpy as np
import tensorflow as tf
from PIL import Image, UnidentifiedImageError

from mi_keras.data.data_error import DataError
from mi_keras.data.dataset_split import DatasetSplit
from mi_keras.data.pixels import to_uint8
from mi_keras.data.source_data import SourceData

_GRAYSCALE_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})


def read_image_folder(
    folder: pathlib.Path, split: DatasetSplit, image_size: tuple[int, int] | None = None
) -> SourceData:
    """Reads ``folder/<class>/<image>``, or ``folder/{train,test}/<class>/<image>``.

    With ``train`` and ``test`` sub-folders each is one split of the files; otherwise the
    class folders form a pool that `load_dataset` divides. Files are listed and decoded by
    `keras.utils.image_dataset_from_directory` (bmp, gif, jpeg, png), in a fixed order.
    Every header is checked first: an unreadable file, or (without ``image_size``) images
    of different sizes, fail before any training.

    Args:
        folder: the root folder.
        split: which split of the files to read when there are train/test sub-folders.
        image_size: ``(height, width)`` to resize every image to; None keeps the size the
            images share.
    """
    if not folder.is_dir():
        raise DataError(folder, "no such folder (an image folder holds one sub-folder of images per class).")
    pooled = not ((folder / "train").is_dir() and (folder / "test").is_dir())
    root = folder if pooled else folder / split.file_split.value
    # The utility lists the files when called and decodes only when iterated: this first
    # dataset gives the file list, whose headers then tell the size and colour mode.
    listing = _image_dataset(root, image_size or (1, 1), "rgb")
    paths = [pathlib.Path(path) for path in listing.file_paths]
    class_folders = [path.relative_to(root).parts[0] for path in paths]
    labels = np.array([listing.class_names.index(name) for name in class_folders], np.int64)
    height, width, channels = _common_shape(paths, image_size)
    color_mode = "grayscale" if channels == 1 else "rgb"
    dataset = _image_dataset(root, (height, width), color_mode)

    def stream() -> tf.data.Dataset:
        # The Keras utility yields float32 0..255 after its resize (identity without image_size).
        return dataset.map(lambda image, label: (to_uint8(image), label), num_parallel_calls=tf.data.AUTOTUNE)

    return SourceData(
        name=folder.name,
        origin=str(root),
        labels=labels,
        stream=stream,
        image_shape=(height, width, channels),
        class_names=tuple(listing.class_names),
        pooled=pooled,
    )


def _image_dataset(root: pathlib.Path, image_size: tuple[int, int], color_mode: str) -> tf.data.Dataset:
    try:
        return keras.utils.image_dataset_from_directory(
            root,
            labels="inferred",
            label_mode="int",
            color_mode=color_mode,
            batch_size=None,
            image_size=image_size,
            shuffle=False,
            verbose=False,
        )
    except ValueError as error:
        raise DataError(root, f"is an empty split or not a folder of class folders: {error}") from error


def _common_shape(paths: list[pathlib.Path], image_size: tuple[int, int] | None) -> tuple[int, int, int]:
    """``(height, width, channels)`` from the headers; sizes must agree without ``image_size``."""
    first_size, first_path, channels = None, None, 1
    for path in paths:
        try:
            with Image.open(path) as image:
                size, mode = image.size, image.mode
                image.verify()  # reads the whole file: finds truncated PNGs before training
        except (UnidentifiedImageError, OSError, SyntaxError) as error:
            raise DataError(path, f"is not a readable image (truncated or corrupt?): {error}") from error
        if mode not in _GRAYSCALE_MODES:
            channels = 3  # colour wins: grayscale images are converted to RGB
        if first_size is None:
            first_size, first_path = size, path
        elif image_size is None and size != first_size:
            raise DataError(
                path,
                f"mixed image shapes: this image is {size[1]}x{size[0]} (height x width) but "
                f"{first_path.parent.name}/{first_path.name} is {first_size[1]}x{first_size[0]}; "
                "pass image_size=(height, width) to resize them all.",
            )
    height, width = image_size or (first_size[1], first_size[0])
    return height, width, channels
