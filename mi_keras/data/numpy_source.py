"""NumPy files: one ``.npz`` archive, or the official MIAT code's ``.npy`` pairs."""

from __future__ import annotations

import pathlib
import zipfile

import numpy as np

from mi_keras.data.data_error import DataError
from mi_keras.data.dataset_split import DatasetSplit
from mi_keras.data.source_data import SourceData

_READ_ERRORS = (OSError, EOFError, ValueError, zipfile.BadZipFile)
_CLASS_NAME_KEYS = ("class_names", "classes")


def read_npz(path: pathlib.Path, split: DatasetSplit, split_file: bool = False) -> SourceData:
    """Reads an ``.npz`` archive holding one split of the files, or a pool of examples.

    The archive holds either ``x_train``, ``y_train``, ``x_test``, ``y_test`` (the
    `keras.datasets` layout), or ``x`` and ``y``: a pool that `load_dataset` divides into
    train, validation and test, or, with ``split_file``, exactly the examples of ``split``'s
    file (``cifar10_train.npz`` beside ``cifar10_test.npz``). An optional ``classes`` (or
    ``class_names``) array of strings names the classes. Arrays are loaded without pickle.
    """
    if not path.is_file():
        raise DataError(path, "no such file.")
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = set(archive.files)
            split_keys = (f"x_{split.file_split.value}", f"y_{split.file_split.value}")
            if set(split_keys) <= keys:
                image_key, label_key, pooled = *split_keys, False
            elif {"x", "y"} <= keys:
                image_key, label_key, pooled = "x", "y", not split_file
            else:
                raise DataError(
                    path,
                    f"has arrays {sorted(keys)}; expected x and y, or x_train, y_train, x_test and "
                    f"y_test (no {split_keys[0]}/{split_keys[1]} for the "
                    f"{split.file_split.value} split).",
                )
            images = _load_array(archive, image_key, path)
            labels = _load_array(archive, label_key, path)
            names_key = next((key for key in _CLASS_NAME_KEYS if key in keys), None)
            class_names = _class_names(_load_array(archive, names_key, path), path) if names_key else None
    except DataError:
        raise  # already names the file and the problem
    except _READ_ERRORS as error:
        raise DataError(path, f"is not a readable .npz archive (truncated or corrupt?): {error}") from error
    return SourceData(
        name=path.stem,
        origin=str(path),
        labels=labels,
        images=images,
        class_names=class_names,
        pooled=pooled,
    )


def read_npy_folder(folder: pathlib.Path, split: DatasetSplit) -> SourceData:
    """Reads ``<split>_images.npy`` (N x H x W x C) and ``<split>_labels.npy`` from a folder.

    This is the layout the official MIAT code expects in ``./data`` (CIFAR-10 as uint8 HWC
    images and integer labels).
    """
    if not folder.is_dir():
        raise DataError(folder, "no such folder (an npy folder holds train_images.npy, train_labels.npy, ...).")
    stem = split.file_split.value
    images_path = folder / f"{stem}_images.npy"
    labels_path = folder / f"{stem}_labels.npy"
    images = _load_npy(images_path)
    labels = _load_npy(labels_path)
    return SourceData.from_files(folder, images_path, images, labels_path, labels)


def _load_npy(path: pathlib.Path) -> np.ndarray:
    if not path.is_file():
        raise DataError(path, "missing file.")
    try:
        return np.load(path, allow_pickle=False)
    except _READ_ERRORS as error:
        raise DataError(
            path, f"is not a readable .npy file (truncated, corrupt or an object array?): {error}"
        ) from error


def _load_array(archive, key: str, path: pathlib.Path) -> np.ndarray:
    try:
        return archive[key]
    except _READ_ERRORS as error:
        raise DataError(
            path,
            f"array {key!r} cannot be read (truncated, corrupt, or an object array of mixed shapes?): {error}",
        ) from error


def _class_names(names: np.ndarray, path: pathlib.Path) -> tuple[str, ...]:
    if names.ndim != 1 or names.dtype.kind not in "US":
        raise DataError(
            path,
            f"class names must be a 1-D array of strings; got {names.dtype} of shape {names.shape}.",
        )
    return tuple(name.decode() if isinstance(name, bytes) else str(name) for name in names.tolist())
