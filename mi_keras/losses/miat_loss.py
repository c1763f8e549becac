"""MIAT's mutual-information loss (Zhou et al., ICML 2022, Eq. 8)."""

from __future__ import annotations

import tensorflow as tf

from mi_keras.distribution import global_sum
from mi_keras.enums import MIDifference
from mi_keras.losses.batch_statistics import batch_cosine, masked_count, masked_mean
from mi_keras.mi.mi_terms import MITerms


def miat_loss(
    terms: MITerms,
    selected: tf.Tensor,
    lam: float | tf.Tensor,
    difference: MIDifference = MIDifference.SELECTED_MEAN,
    min_selected: int = 1,
    weight_by_selected_share: bool = False,
    cosine_epsilon: float = 0.0,
) -> tf.Tensor:
    """``|1 - cos(a, b)| + |1 - cos(d, c)| + lam * mean_selected(I_A(n; h(x_adv)) - I_N(x; h(x_adv)))``.

    With ``a = I_N(x; h(x))``, ``b = I_N(x; h(x_adv))``, ``c = I_A(n; h(x_adv))`` and
    ``d = I_A(n; h(x))`` (the fields of ``terms``), each masked by ``selected``; the cosines
    run over the batch axis (the only workable reading of Eq. 8, docs/lambda.md). Zero when
    nothing is selected. ``lam = 0`` is the released code. ``difference`` chooses how the
    lambda term is reduced (`MIDifference`; the paper's selected mean by default,
    docs/lambda.md for the others). docs/method.md, section "Stage 2", has the derivation.

    Stabilisers (the defaults are the paper's loss; docs/stability.md measures them):
    ``min_selected`` > 1 makes the loss 0 until that many samples are selected (one selected
    sample gives cosines of +/-1 and no gradient, and carries the whole selected mean alone);
    ``weight_by_selected_share`` multiplies the cosine terms by k / B, the selected share of
    the batch, so that their gradient, which nothing divides by the batch, grows with the
    evidence; ``cosine_epsilon`` bounds the cosines' gradient (`batch_cosine`).
    """
    count = masked_count(selected)
    active = count >= max(1, min_selected)
    natural = tf.abs(
        1.0
        - batch_cosine(
            terms.natural_mi_natural * selected, terms.natural_mi_adversarial * selected, epsilon=cosine_epsilon
        )
    )
    adversarial = tf.abs(
        1.0
        - batch_cosine(
            terms.adversarial_mi_natural * selected, terms.adversarial_mi_adversarial * selected, epsilon=cosine_epsilon
        )
    )
    cosine_terms = natural + adversarial
    if weight_by_selected_share:
        cosine_terms *= count / global_sum(tf.cast(tf.size(selected), tf.float32))
    lambda_term = lam * mi_difference(
        terms.adversarial_mi_adversarial, terms.natural_mi_adversarial, selected, difference
    )
    return tf.where(active, cosine_terms + lambda_term, tf.zeros_like(cosine_terms))


def mi_difference(
    adversarial_mi: tf.Tensor, natural_mi: tf.Tensor, selected: tf.Tensor, reduction: MIDifference
) -> tf.Tensor:
    """The lambda term ``I_A(n; h(x_adv)) - I_N(x; h(x_adv))`` over the selected samples.

    ``SELECTED_MEAN`` divides by the number selected (the paper): early in training one or two
    samples then carry the whole term. ``BATCH_MEAN`` divides by the batch size instead, so the
    term grows with the selection. ``RELATIVE`` divides the selected mean by the gradient-free
    mean of ``|I_A| + |I_N|``, which makes it scale-free (within [-1, 1]).
    """
    difference = adversarial_mi - natural_mi
    if reduction == MIDifference.SELECTED_MEAN:
        return masked_mean(difference, selected)
    if reduction == MIDifference.BATCH_MEAN:
        return global_sum(tf.reduce_sum(difference * selected)) / global_sum(tf.cast(tf.size(difference), tf.float32))
    if reduction == MIDifference.RELATIVE:
        scale = tf.stop_gradient(masked_mean(tf.abs(adversarial_mi) + tf.abs(natural_mi), selected))
        return tf.math.divide_no_nan(masked_mean(difference, selected), scale)
    raise ValueError(f"Unknown MI difference reduction {reduction!r}.")
