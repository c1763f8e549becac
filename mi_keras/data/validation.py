"""Checks that reject bad data before training, naming the file and the problem."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mi_keras.data.data_error import DataError

_CHANNEL_COUNTS = (1, 3, 4)


def validate_images(images: np.ndarray, origin: str) -> np.ndarray:
    """Returns the images as ``[N, H, W, C]`` uint8 (0..255) or float32 (0..1).

    Args:
        images: ``[N, H, W]`` or ``[N, H, W, C]`` numbers: integers in 0..255 or floats
            in [0, 1].
        origin: the file they came from, for the error messages.

    Raises:
        DataError: for object arrays (mixed shapes), a wrong rank, channels-first data, an
            empty array, NaN, or values outside the range of their type.
    """
    images = np.asarray(images)
    if images.dtype == object:
        raise DataError(
            origin,
            "holds an object array: images of mixed shapes or types. Store one numeric array [N, H, W, C].",
        )
    if images.ndim == 3:
        images = images[..., np.newaxis]
    if images.ndim != 4:
        raise DataError(origin, f"images have shape {images.shape}; expected [N, H, W] or [N, H, W, C].")
    if len(images) == 0:
        raise DataError(origin, "is an empty split: it holds no images.")
    if images.shape[-1] not in _CHANNEL_COUNTS and images.shape[1] in _CHANNEL_COUNTS:
        raise DataError(
            origin,
            f"images have shape {images.shape}, which looks channels-first; store them NHWC.",
        )
    if images.dtype == np.uint8:
        return images
    if np.issubdtype(images.dtype, np.integer):
        _check_range(images, 0, 255, origin, "integer images must be in 0..255")
        return images.astype(np.uint8)
    if np.issubdtype(images.dtype, np.floating):
        _check_range(
            images,
            0.0,
            1.0,
            origin,
            "float images must be in [0, 1] (store uint8 0..255, or divide by 255)",
        )
        return images.astype(np.float32, copy=False)
    raise DataError(origin, f"images have dtype {images.dtype}; expected uint8, another integer type or float.")


def _check_range(images: np.ndarray, low: float, high: float, origin: str, rule: str) -> None:
    # min/max propagate NaN, so two reductions find NaN, infinities and out-of-range values
    # without allocating a boolean mask the size of the data.
    minimum, maximum = images.min(), images.max()
    if np.isnan(minimum) or np.isnan(maximum):
        first = int(np.flatnonzero(np.isnan(images.reshape(len(images), -1)).any(axis=1))[0])
        raise DataError(origin, f"images contain NaN (first in image {first}).")
    if minimum < low or maximum > high:
        raise DataError(origin, f"image values span [{minimum}, {maximum}]; {rule}.")


def validate_labels(labels: np.ndarray, num_images: int, origin: str) -> np.ndarray:
    """Returns the labels as a flat int64 array, one per image, all >= 0.

    Raises:
        DataError: for one-hot or multi-dimensional labels, non-integer values, a count
            that differs from the number of images, or negative labels.
    """
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise DataError(
            origin,
            f"labels have shape {labels.shape}; expected [N] integer class ids (not one-hot).",
        )
    if len(labels) != num_images:
        raise DataError(origin, f"image/label count mismatch: {num_images} images but {len(labels)} labels.")
    if np.issubdtype(labels.dtype, np.floating) and np.all(np.mod(labels, 1) == 0):
        labels = labels.astype(np.int64)
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(origin, f"labels have dtype {labels.dtype}; expected integer class ids.")
    labels = labels.astype(np.int64, copy=False)
    if len(labels) and labels.min() < 0:
        index = int(np.argmin(labels))
        raise DataError(
            origin,
            f"label {labels[index]} at index {index} is outside [0, classes): labels must be >= 0.",
        )
    return labels


def resolve_class_names(
    labels: np.ndarray,
    origin: str,
    declared: Sequence[str] | None = None,
    num_classes: int | None = None,
) -> tuple[str, ...]:
    """The class names, checked against the labels.

    The names come from ``declared`` (the caller's or the source's). With none, there are
    ``num_classes`` classes named "0", "1", ..., or, when that is None too, as many as the
    largest label + 1; inferred classes must all have examples, which catches a stray
    label that no declared class count could.

    Raises:
        DataError: for labels outside ``[0, classes)`` or, when inferred, classes without
            examples.
        ValueError: when ``declared`` and ``num_classes`` disagree.
    """
    if declared is not None:
        names = tuple(str(name) for name in declared)
        if num_classes is not None and num_classes != len(names):
            raise ValueError(f"`num_classes`={num_classes} disagrees with the {len(names)} class names {names}.")
    elif num_classes is not None:
        if num_classes < 1:
            raise ValueError(f"`num_classes` must be >= 1; got {num_classes}.")
        names = tuple(str(index) for index in range(num_classes))
    else:
        present = np.unique(labels)
        names = tuple(str(index) for index in range(int(present[-1]) + 1))
        missing = sorted(set(range(len(names))) - set(present.tolist()))
        if missing:
            raise DataError(
                origin,
                "labels outside [0, classes): with no class names given the classes are "
                f"0..{len(names) - 1} (up to the largest label), but classes {missing[:10]} have "
                "no examples, so some label is stray. Pass `class_names` or `num_classes` to "
                "declare the classes.",
            )
    if labels.max() >= len(names):
        index = int(np.argmax(labels))
        raise DataError(
            origin,
            f"label {labels[index]} at index {index} is outside [0, {len(names)}) ({len(names)} classes).",
        )
    return names
