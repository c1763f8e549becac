"""The evaluated examples as NumPy arrays, with a description that identifies them exactly."""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from mi_keras.data.split_hash import SplitHash


class DataSlice:
    """Images ``x`` (float32 [0, 1], NHWC) and labels ``y`` (int32) evaluated together.

    Every attack runs on the same arrays, so per-sample results can be combined (the
    ensemble) and compared (the gradient-masking checks). The SHA-256 of the arrays in the
    report tells two evaluations on the "same" data apart when they are not.

    Example:
    ```python
    import numpy as np
    from mi_keras.data import load_dataset
    from mi_keras.models import build_classifier

    test, info = load_dataset("digits", "test", batch_size=None, take=32)  # tiny: a smoke run
    x, y = (np.stack(part) for part in zip(*test.as_numpy_iterator()))
    model = build_classifier("small_cnn", info.image_shape, info.num_classes, padding="same")
    from mi_keras.evaluation import DataSlice

    data = DataSlice.from_source((x, y), n_examples=16, description="digits test")
    data = DataSlice.from_source(test.batch(8), n_examples=16)  # batches of (image, label)
    ```

    Args:
        x: images, float32 in [0, 1], shape ``[n, H, W, C]``.
        y: integer labels, shape ``[n]``.
        description: free text naming the source and the slice.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, description: str):
        x = np.asarray(x, np.float32)
        y = np.asarray(y).reshape(-1)
        if x.ndim != 4:
            raise ValueError(f"Images must have shape [n, H, W, C]; got shape {x.shape}.")
        if len(x) != len(y) or len(x) == 0:
            raise ValueError(f"Need as many labels as images, at least one; got {len(x)} images and {len(y)} labels.")
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"Labels must be integers; got dtype {y.dtype}.")
        if not np.isfinite(x).all() or x.min() < 0.0 or x.max() > 1.0:
            raise ValueError(f"Images must be finite and in [0, 1]; got range [{np.nanmin(x)}, {np.nanmax(x)}].")
        self.x = x
        self.y = y.astype(np.int32)
        self.description = description

    @classmethod
    def from_source(
        cls,
        source,
        n_examples: int | None = None,
        description: str | None = None,
        minimum_examples: int = 1,
    ) -> DataSlice:
        """Reads the first ``n_examples`` of a ``(x, y)`` pair, a `tf.data.Dataset` or a slice.

        Args:
            source: a ``(x, y)`` tuple of arrays, a dataset yielding ``(image, label)``
                elements or batches, or a `DataSlice` (returned as it is when neither
                ``n_examples`` nor ``description`` asks for a change).
            n_examples: how many examples to keep (all when None).
            description: what the data is; a generic one (or the slice's) when None.
            minimum_examples: fewer examples than this raise a ValueError (the MI probes
                need 2: their bounds take negatives from the batch).
        """
        data = cls._read(source, n_examples, description)
        if len(data) < minimum_examples:
            raise ValueError(f"This evaluation needs at least {minimum_examples} examples; got {len(data)}.")
        return data

    @classmethod
    def _read(cls, source, n_examples: int | None, description: str | None) -> DataSlice:
        if n_examples is not None and (not isinstance(n_examples, int) or n_examples < 1):
            raise ValueError(f"`n_examples` must be a positive integer or None; got {n_examples!r}.")
        if isinstance(source, DataSlice):
            if n_examples is None and description is None:
                return source
            x, y = source.x, source.y
            description = description or source.description
            kind = "slice"
        elif isinstance(source, tf.data.Dataset):
            x, y = _read_dataset(source, n_examples)
            kind = "tf.data.Dataset"
        elif isinstance(source, (tuple, list)) and len(source) == 2:
            x, y = np.asarray(source[0]), np.asarray(source[1])
            kind = "arrays"
        else:
            raise ValueError(
                "The data must be an `(x, y)` pair of arrays or a `tf.data.Dataset` of "
                f"(image, label); got {type(source).__name__}."
            )
        x, y = x[:n_examples], y[:n_examples]
        description = description or f"{kind}, first {len(x)} examples"
        return cls(x, y, description)

    def __len__(self) -> int:
        return len(self.x)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    def sha256(self) -> str:
        """`SplitHash`: the ingest stage's definition, so equal splits show equal digests."""
        return SplitHash.of(self.x, self.y)

    def describe(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "n_examples": len(self),
            "input_shape": list(self.input_shape),
            "label_counts": np.bincount(self.y).tolist(),
            "sha256": self.sha256(),
        }


def _read_dataset(dataset: tf.data.Dataset, n_examples: int | None):
    images_spec = dataset.element_spec[0]
    if images_spec.shape.rank == 3:
        dataset = dataset.batch(256)
    xs, ys, count = [], [], 0
    for images, labels in dataset:
        xs.append(images.numpy())
        ys.append(labels.numpy().reshape(-1))
        count += len(xs[-1])
        if n_examples is not None and count >= n_examples:
            break
    if not xs:
        raise ValueError("The dataset is empty.")
    return np.concatenate(xs), np.concatenate(ys)
