"""Tiny-ImageNet in its standard folder layout (the ``tiny-imagenet-200`` archive).

```
tiny-imagenet-200/
    wnids.txt                          # the 200 class ids, one a line (optional)
    train/<wnid>/images/<wnid>_<k>.JPEG
    val/images/val_<k>.JPEG
    val/val_annotations.txt            # file name <TAB> wnid <TAB> bounding box ...
```

The training images are the train split of the files and the labelled ``val`` images the
test split (the archive's ``test`` images carry no labels), which is how robustness papers,
MIAT's included, report Tiny-ImageNet. Images are 64 x 64; the few grayscale JPEGs are
decoded to RGB.
"""

from __future__ import annotations

import pathlib

import numpy as np
import tensorflow as tf
from PIL import Image, UnidentifiedImageError

from mi_keras.data.data_error import DataError
from mi_keras.data.dataset_split import DatasetSplit
from mi_keras.data.source_data import SourceData

ANNOTATIONS_FILE = "val_annotations.txt"
_EXTENSIONS = (".jpeg", ".jpg", ".png")


def read_tiny_imagenet(folder: pathlib.Path, split: DatasetSplit) -> SourceData:
    """Lists one split of a Tiny-ImageNet folder; the images are decoded as they stream.

    Args:
        folder: the ``tiny-imagenet-200`` folder.
        split: ``TRAIN`` (and validation, carved from it) reads ``train/``; ``TEST`` reads
            the labelled ``val/``.
    """
    if not (folder / "train").is_dir():
        raise DataError(folder, "is not a Tiny-ImageNet folder: it has no train/ sub-folder.")
    class_ids = _class_ids(folder)
    if split.file_split is DatasetSplit.TRAIN:
        paths, labels = _train_files(folder, class_ids)
        origin = folder / "train"
    else:
        paths, labels = _val_files(folder, class_ids)
        origin = folder / "val"
    if not paths:
        raise DataError(origin, "holds no image of a known class.")
    _check_sizes(paths)

    def stream() -> tf.data.Dataset:
        files = tf.data.Dataset.from_tensor_slices(([str(path) for path in paths], labels))
        return files.map(_decode, num_parallel_calls=tf.data.AUTOTUNE)

    return SourceData(
        name="tiny_imagenet",
        origin=str(origin),
        labels=labels,
        stream=stream,
        image_shape=(64, 64, 3),
        class_names=tuple(class_ids),
    )


def _decode(path, label):
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    return tf.ensure_shape(image, [64, 64, 3]), label


def _class_ids(folder: pathlib.Path) -> list[str]:
    listed = folder / "wnids.txt"
    if listed.is_file():
        ids = [line.strip() for line in listed.read_text().splitlines() if line.strip()]
    else:
        ids = sorted(path.name for path in (folder / "train").iterdir() if path.is_dir())
    if not ids:
        raise DataError(folder, "names no class (wnids.txt is empty and train/ has no folder).")
    return ids


def _images_in(directory: pathlib.Path) -> list[pathlib.Path]:
    return sorted(path for path in directory.iterdir() if path.suffix.lower() in _EXTENSIONS)


def _train_files(folder: pathlib.Path, class_ids: list[str]):
    paths, labels = [], []
    for label, class_id in enumerate(class_ids):
        images = folder / "train" / class_id / "images"
        if not images.is_dir():
            raise DataError(images, f"is missing: every class of wnids.txt needs train/{class_id}/images/.")
        found = _images_in(images)
        paths += found
        labels += [label] * len(found)
    return paths, np.array(labels, np.int64)


def _val_files(folder: pathlib.Path, class_ids: list[str]):
    annotations = folder / "val" / ANNOTATIONS_FILE
    if not annotations.is_file():
        raise DataError(annotations, "is missing: the val/ images are labelled by this file.")
    index = {class_id: label for label, class_id in enumerate(class_ids)}
    paths, labels = [], []
    for number, line in enumerate(annotations.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2 or fields[1] not in index:
            raise DataError(
                annotations,
                f"line {number}: expected '<file>\\t<wnid>\\t...' with a wnid of the training "
                f"classes; got {line[:80]!r}.",
            )
        path = folder / "val" / "images" / fields[0]
        if not path.is_file():
            raise DataError(path, f"is listed on line {number} of {ANNOTATIONS_FILE} but missing.")
        paths.append(path)
        labels.append(index[fields[1]])
    return paths, np.array(labels, np.int64)


def _check_sizes(paths: list[pathlib.Path]) -> None:
    """Reads every header (not the pixels): a wrong size fails here, not mid-training."""
    for path in paths:
        try:
            with Image.open(path) as image:
                size = image.size
        except (UnidentifiedImageError, OSError) as error:
            raise DataError(path, f"is not a readable image: {error}") from error
        if size != (64, 64):
            raise DataError(path, f"is {size[1]}x{size[0]}; Tiny-ImageNet images are 64x64.")
