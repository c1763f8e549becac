"""Per-sample mutual-information lower bounds with in-batch negatives.

The critic is ``T(i, j, k) = <g_i, L_{j,k}>``: the global feature of sample ``i`` (from the
classifier's logits) against the local feature of sample ``j`` at position ``k`` (from the
pattern). For row ``i`` the positive is ``j = positive_index[i]`` (the same sample) and every
other column is a negative. Each bound returns one value per row, averaged over positions,
as in MIAT's ``donsker_varadhan_loss`` (docs/method.md, section "The bounds").

Rows and columns are separate so that, under ``tf.distribute``, a replica scores its own rows
against the columns gathered from every replica and gets exactly the single-device values.
"""

from __future__ import annotations

import math

import tensorflow as tf

from mi_keras.enums import Bound, DVVariant


def scoring_batch_size(batch_size) -> int:
    """``batch_size`` checked for scoring in batches: an int >= 2 (in-batch negatives)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
        raise ValueError(
            f"`batch_size` must be an integer >= 2 (the MI bounds need in-batch negatives); got {batch_size!r}."
        )
    return batch_size


def batch_bounds(count: int, batch_size: int) -> list[tuple[int, int]]:
    """``[begin, end)`` of each batch of ``count`` samples, none of a single sample.

    The bounds take their negatives from the batch, so a last batch of one sample joins the
    batch before it. Every evaluation that scores in batches (the MI probes, the pipeline's
    validation splits) batches this way.
    """
    bounds = [(begin, min(begin + batch_size, count)) for begin in range(0, count, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], count)]
    return bounds


def pairwise_scores(global_features: tf.Tensor, local_features: tf.Tensor) -> tf.Tensor:
    """Critic values ``[rows, columns, positions]`` from ``[rows, D]`` and ``[columns, positions, D]``."""
    return tf.einsum("rd,cpd->rcp", global_features, local_features)


def bound_from_scores(scores: tf.Tensor, positive_index: tf.Tensor, bound: Bound, dv_variant: DVVariant) -> tf.Tensor:
    """The per-row MI estimate ``[rows]`` from critic values ``[rows, columns, positions]``."""
    columns = tf.shape(scores)[1]
    positive_mask = tf.one_hot(positive_index, columns, dtype=scores.dtype)[:, :, None]
    positive = tf.reduce_sum(scores * positive_mask, axis=1)  # [rows, positions]
    negatives = tf.cast(columns - 1, scores.dtype)
    if bound == Bound.DV:
        if dv_variant == DVVariant.EXACT:
            masked = tf.where(positive_mask > 0, tf.constant(-math.inf, scores.dtype), scores)
        else:  # the official code multiplies the diagonal by 0: a spurious exp(0) stays
            masked = scores * (1.0 - positive_mask)
        negative = tf.reduce_logsumexp(masked, axis=1) - tf.math.log(negatives)
        return tf.reduce_mean(positive - negative, axis=-1)
    if bound == Bound.JSD:
        negative = tf.reduce_sum(tf.nn.softplus(scores) * (1.0 - positive_mask), axis=1) / negatives
        return tf.reduce_mean(-tf.nn.softplus(-positive) - negative, axis=-1)
    if bound == Bound.INFONCE:
        log_columns = tf.math.log(tf.cast(columns, scores.dtype))
        return tf.reduce_mean(positive - tf.reduce_logsumexp(scores, axis=1), axis=-1) + log_columns
    raise ValueError(f"Unknown bound {bound!r}.")


def per_sample_mi(
    global_features: tf.Tensor,
    local_features: tf.Tensor,
    bound: Bound = Bound.DV,
    dv_variant: DVVariant = DVVariant.EXACT,
    positive_index: tf.Tensor | None = None,
    chunk_size: int | None = None,
) -> tf.Tensor:
    """Per-sample MI estimate, in float32.

    Args:
        global_features: ``[rows, D]`` features of the logits.
        local_features: ``[columns, positions, D]`` features of the patterns, ``columns >= 2``.
        bound: `Bound.DV`, `Bound.JSD` or `Bound.INFONCE`.
        dv_variant: `DVVariant.EXACT` (default) or `DVVariant.REFERENCE` (the official code).
        positive_index: column of each row's positive; defaults to ``range(rows)``.
        chunk_size: if set, rows are scored ``chunk_size`` at a time, so the
            ``[rows, columns, positions]`` tensor never exists whole (for large batches).
    """
    global_features = tf.cast(global_features, tf.float32)
    local_features = tf.cast(local_features, tf.float32)
    columns = local_features.shape[0]
    if columns is not None and columns < 2:
        raise ValueError(
            f"The {bound.value} bound needs at least 2 samples per batch (in-batch negatives); "
            f"got a batch of {columns}."
        )
    tf.debugging.assert_greater_equal(
        tf.shape(local_features)[0], 2, message=f"The {bound.value} bound needs batches of at least 2 samples."
    )
    rows = tf.shape(global_features)[0]
    if positive_index is None:
        positive_index = tf.range(rows)
    if chunk_size is None:
        return bound_from_scores(pairwise_scores(global_features, local_features), positive_index, bound, dv_variant)
    return _chunked(global_features, local_features, positive_index, bound, dv_variant, chunk_size)


def _chunked(global_features, local_features, positive_index, bound, dv_variant, chunk_size):
    rows = tf.shape(global_features)[0]
    chunks = (rows + chunk_size - 1) // chunk_size
    padding = chunks * chunk_size - rows
    features = tf.pad(global_features, [[0, padding], [0, 0]])
    index = tf.pad(positive_index, [[0, padding]])
    features = tf.reshape(features, [chunks, chunk_size, global_features.shape[-1]])
    index = tf.reshape(index, [chunks, chunk_size])

    def score_chunk(chunk):
        chunk_features, chunk_index = chunk
        scores = pairwise_scores(chunk_features, local_features)
        return bound_from_scores(scores, chunk_index, bound, dv_variant)

    values = tf.map_fn(score_chunk, (features, index), fn_output_signature=tf.float32)
    return tf.reshape(values, [-1])[:rows]
