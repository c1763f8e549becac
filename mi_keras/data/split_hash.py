"""The SHA-256 of a split's content: one definition for the ingest record and the reports."""

from __future__ import annotations

import hashlib

import numpy as np


class SplitHash:
    """SHA-256 of every image (float32) and then every label (int32), in order.

    The same examples give the same digest however they are batched: images stream into
    the hash, labels (small) are kept and hashed at the end.

    Example:
    ```python
    import numpy as np
    from mi_keras.data import load_dataset
    from mi_keras.data.split_hash import SplitHash

    dataset, _ = load_dataset("digits", "test", batch_size=100)
    content = SplitHash()
    for images, labels in dataset:
        content.update(images.numpy(), labels.numpy())
    x, y = (np.concatenate(parts) for parts in zip(*dataset.as_numpy_iterator()))
    assert content.hexdigest() == SplitHash.of(x, y)  # the whole split as arrays
    ```
    """

    def __init__(self):
        self._images = hashlib.sha256()
        self._labels: list[np.ndarray] = []
        self.count = 0

    def update(self, images: np.ndarray, labels: np.ndarray) -> None:
        self._images.update(np.ascontiguousarray(images, np.float32).tobytes())
        self._labels.append(np.ascontiguousarray(labels, np.int32).reshape(-1))
        self.count += len(self._labels[-1])

    def hexdigest(self) -> str:
        digest = self._images.copy()
        for labels in self._labels:
            digest.update(labels.tobytes())
        return digest.hexdigest()

    @classmethod
    def of(cls, images: np.ndarray, labels: np.ndarray) -> str:
        content = cls()
        content.update(images, labels)
        return content.hexdigest()
