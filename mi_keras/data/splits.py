"""Seeded, stratified carving of one split out of another, and seeded subsets."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def resolve_size(size: int | float, total: int, argument: str) -> int:
    """A count from ``size``: an int count, or a float fraction of ``total`` in [0, 1)."""
    if isinstance(size, bool) or not isinstance(size, (int, float, np.integer, np.floating)):
        raise ValueError(f"`{argument}` must be an int count or a float fraction in [0, 1); got {size!r}.")
    if isinstance(size, (float, np.floating)):
        if not 0.0 <= size < 1.0:
            raise ValueError(f"`{argument}` as a fraction must be in [0, 1); got {size}.")
        count = int(round(size * total))
    else:
        count = int(size)
    if not 0 <= count < total:
        raise ValueError(f"`{argument}`={size} asks for {count} of {total} examples; it must leave some behind.")
    return count


def stratified_split(labels: np.ndarray, count: int, seed: int | Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Splits ``range(len(labels))`` into (kept, carved) with ``count`` carved examples.

    Every class gives its share of ``count`` (largest-remainder rounding, so the total is
    exact), drawn at random under ``seed``. Both index arrays come back sorted, so the
    examples keep their file order and only the later shuffle reorders them.

    Example:
    ```python
    import numpy as np
    from mi_keras.data.splits import stratified_split

    kept, carved = stratified_split(np.array([0, 0, 0, 0, 1, 1]), count=3, seed=0)
    # carved holds two examples of class 0 and one of class 1
    ```
    """
    classes, counts = np.unique(labels, return_counts=True)
    quotas = counts * count / len(labels)
    shares = np.floor(quotas).astype(np.int64)
    # Give the examples lost to rounding to the classes with the largest remainders; a
    # stable sort breaks ties by class order, so the result depends on the seed only.
    leftover = count - int(shares.sum())
    shares[np.argsort(-(quotas - shares), kind="stable")[:leftover]] += 1
    rng = np.random.default_rng(seed)
    carved = [
        rng.permutation(np.flatnonzero(labels == label))[:share] for label, share in zip(classes, shares, strict=True)
    ]
    carved = np.sort(np.concatenate(carved)) if carved else np.zeros([0], np.int64)
    kept = np.setdiff1d(np.arange(len(labels)), carved, assume_unique=True)
    return kept, carved


def random_subset(indices: np.ndarray, count: int, seed: int | Sequence[int]) -> np.ndarray:
    """``count`` of ``indices`` drawn at random under ``seed``, in their original order.

    Random rather than the first ``count``: files grouped by class (the CIFAR-10 test
    file we used is) would otherwise give a subset of a single class.
    """
    if count >= len(indices):
        return indices
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(indices, size=count, replace=False))
