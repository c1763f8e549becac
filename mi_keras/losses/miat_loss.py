"""MIAT's mutual-information loss (Zhou et al., ICML 2022, Eq. 8)."""

from __future__ import annotations

import tensorflow as tf

from mi_keras.losses.batch_statistics import batch_cosine, masked_count, masked_mean


def miat_loss(
    natural_mi_clean: tf.Tensor,
    natural_mi_adversarial: tf.Tensor,
    adversarial_mi_adversarial: tf.Tensor,
    adversarial_mi_clean: tf.Tensor,
    selected: tf.Tensor,
    lam: float,
) -> tf.Tensor:
    """``|1 - cos(a, b)| + |1 - cos(d, c)| + lam * mean_selected(I_A(n; h(x_adv)) - I_N(x; h(x_adv)))``.

    With ``a = I_N(x; h(x))``, ``b = I_N(x; h(x_adv))``, ``c = I_A(n; h(x_adv))`` and
    ``d = I_A(n; h(x))``, each masked by ``selected``; the cosines run over the batch axis
    (the only workable reading of Eq. 8, miat-reference.md 4.2). Zero when nothing is
    selected. ``lam = 0`` is the released code.
    """
    any_selected = masked_count(selected) > 0
    cosine_terms = tf.abs(1.0 - batch_cosine(natural_mi_clean * selected, natural_mi_adversarial * selected))
    cosine_terms += tf.abs(1.0 - batch_cosine(adversarial_mi_clean * selected, adversarial_mi_adversarial * selected))
    cosine_terms = tf.where(any_selected, cosine_terms, tf.zeros_like(cosine_terms))
    difference = masked_mean(adversarial_mi_adversarial - natural_mi_adversarial, selected)
    return cosine_terms + lam * difference
