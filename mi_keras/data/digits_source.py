"""scikit-learn's bundled 8x8 handwritten digits: the data that needs no file."""

from __future__ import annotations

import numpy as np

from mi_keras.data.source_data import SourceData

# load_digits() pixels are counts of set pixels in 4x4 blocks of a 32x32 bitmap: 0..16.
_DIGITS_MAX_VALUE = 16.0


def read_digits() -> SourceData:
    """1,797 images of shape (8, 8, 1), float32 in [0, 1], labels 0..9, as one pool.

    The data ships inside scikit-learn (UCI "Optical Recognition of Handwritten Digits"),
    so it works offline with no download; `load_dataset` carves train, validation and
    test from the pool.
    """
    from sklearn.datasets import load_digits  # deferred: scikit-learn is slow to import

    digits = load_digits()
    images = (digits.images / _DIGITS_MAX_VALUE).astype(np.float32)[..., np.newaxis]
    return SourceData(
        name="digits",
        origin="sklearn.datasets.load_digits()",
        labels=digits.target,
        images=images,
        class_names=tuple(str(name) for name in digits.target_names),
        pooled=True,
    )
