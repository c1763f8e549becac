"""Local transport plans on images: the geometry of the Wasserstein ball (used by `FWA`).

A plan ``pi`` of shape ``[batch, H, W, C, k * k]`` says how much of the mass of pixel
``(h, w)`` in channel ``c`` moves to each pixel of the ``k x k`` window at offsets
``range(-(k // 2), k - k // 2)`` in both directions; mass never changes channel. The
ground cost of a move is the Euclidean distance between the two pixel positions; moves that
would leave the image are forbidden. The plan's row sums are the source image ``x`` and its
column sums are the transported image, so the transported image keeps ``x``'s total mass and
``transport_cost(pi)`` is an upper bound on the Wasserstein-1 distance between the two.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

_FORBIDDEN = -1e9  # the value a forbidden move gets before the simplex projection


def window_offsets(kernel_size: int) -> list[tuple[int, int]]:
    """The ``k * k`` (row, column) offsets of the transport window, row-major."""
    span = range(-(kernel_size // 2), kernel_size - kernel_size // 2)
    return [(row, column) for row in span for column in span]


def window_cost(height: int, width: int, kernel_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The ground cost ``[H, W, 1, k * k]`` of every move and whether it stays in the image."""
    offsets = window_offsets(kernel_size)
    rows = np.arange(height)[:, None, None]
    columns = np.arange(width)[None, :, None]
    row_offsets = np.array([row for row, _ in offsets])[None, None, :]
    column_offsets = np.array([column for _, column in offsets])[None, None, :]
    inside = (
        (rows + row_offsets >= 0)
        & (rows + row_offsets < height)
        & (columns + column_offsets >= 0)
        & (columns + column_offsets < width)
    )
    distance = np.sqrt(row_offsets**2 + column_offsets**2) * np.ones_like(inside, np.float64)
    cost = np.where(inside, distance, 0.0)
    return cost[:, :, None, :].astype(np.float32), inside[:, :, None, :]


def identity_plan(x: tf.Tensor, kernel_size: int) -> tf.Tensor:
    """The plan that moves nothing: all of each pixel's mass stays at offset (0, 0)."""
    centre = window_offsets(kernel_size).index((0, 0))
    return x[..., None] * tf.one_hot(centre, kernel_size**2, dtype=x.dtype)


def transported_image(plan: tf.Tensor, kernel_size: int) -> tf.Tensor:
    """The column sums of ``plan``: the image after every move, ``[batch, H, W, C]``.

    Moves that would leave the image carry no mass (the projection zeroes them), so the
    wrap-around of `tf.roll` never adds anything.
    """
    moved = [
        tf.roll(plan[..., index], shift=[row, column], axis=[1, 2])
        for index, (row, column) in enumerate(window_offsets(kernel_size))
    ]
    return tf.add_n(moved)


def transport_cost(plan: tf.Tensor, cost: tf.Tensor) -> tf.Tensor:
    """Total cost (distance x mass) of each sample's plan, ``[batch]``."""
    return tf.reduce_sum(plan * cost, axis=[1, 2, 3, 4])


def project_rows_on_simplex(values: tf.Tensor, mass: tf.Tensor) -> tf.Tensor:
    """Euclidean projection of each row of ``values`` (last axis) onto
    ``{p >= 0, sum(p) = mass}``, with ``mass >= 0`` shaped like ``values[..., 0]``.

    The sort-based algorithm of Held et al. (1974) / Duchi et al. (2008), with the threshold
    written as ``max_k (sum of the k largest - mass) / k`` (Condat, 2016), which needs no
    gather of the support size.
    """
    ordered = tf.sort(values, axis=-1, direction="DESCENDING")
    ranks = tf.range(1, values.shape[-1] + 1, dtype=values.dtype)
    excess = tf.cumsum(ordered, axis=-1) - mass[..., None]
    threshold = tf.reduce_max(excess / ranks, axis=-1, keepdims=True)
    return tf.maximum(values - threshold, 0.0)


def project_plan(
    target: tf.Tensor,
    x: tf.Tensor,
    cost: tf.Tensor,
    inside: tf.Tensor,
    budget: tf.Tensor,
    max_iterations: int,
    cost_tolerance: float,
    interval_tolerance: float,
) -> tf.Tensor:
    """Projects ``target`` onto the plans from ``x`` whose cost is at most ``budget``.

    The dual projection of Wu et al. (2020): for a multiplier ``lam >= 0`` of the cost
    constraint, each pixel's row of ``target - lam * cost`` is projected onto the simplex of
    its mass; ``lam`` is found per sample by bisection on the sign of the constraint, for at
    most ``max_iterations`` halvings or until every sample's constraint is within
    ``cost_tolerance`` of the budget or every interval is shorter than ``interval_tolerance``.
    The upper end of the interval is returned, so the plan is always within budget.

    Args:
        target: unconstrained plans, ``[batch, H, W, C, k * k]``.
        x: source images, ``[batch, H, W, C]``, non-negative.
        cost: ground cost from `window_cost`, ``[H, W, 1, k * k]``.
        inside: bool mask of the allowed moves, same shape as ``cost``.
        budget: the largest allowed cost of each sample, ``[batch]``.
    """
    batch_axes = [1, 2, 3, 4]
    # Forbidden moves get a value no multiplier can lift (their cost is 0), once for all.
    allowed = tf.where(inside, target, _FORBIDDEN)

    def recover(lam):
        return project_rows_on_simplex(allowed - lam[:, None, None, None, None] * cost, x)

    def slack(lam):
        return transport_cost(recover(lam), cost) - budget

    # Above this multiplier every row keeps all of its mass in place (cost 0 <= budget).
    upper = 2.0 * tf.reduce_max(tf.abs(target), axis=batch_axes) + tf.reduce_max(x, axis=[1, 2, 3])
    lower = tf.zeros_like(upper)

    def keep_going(iteration, lower, upper, largest_slack):
        return (
            (iteration < max_iterations)
            & (largest_slack >= cost_tolerance)
            & (tf.reduce_max(upper - lower) >= interval_tolerance)
        )

    def halve(iteration, lower, upper, _):
        middle = 0.5 * (lower + upper)
        constraint = slack(middle)
        over_budget = constraint > 0.0
        return (
            iteration + 1,
            tf.where(over_budget, middle, lower),
            tf.where(over_budget, upper, middle),
            tf.reduce_max(tf.abs(constraint)),
        )

    _, _, upper, _ = tf.while_loop(keep_going, halve, (tf.constant(0), lower, upper, tf.constant(np.inf, tf.float32)))
    return recover(upper)
