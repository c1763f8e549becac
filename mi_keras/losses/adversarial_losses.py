"""Per-sample base losses of adversarial training: standard AT, TRADES and MART."""

from __future__ import annotations

import tensorflow as tf

from mi_keras.enums import BaseLoss
from mi_keras.objectives import cross_entropy, kl_divergence


def trades_loss(clean_logits, adversarial_logits, labels, beta: float) -> tf.Tensor:
    """TRADES (Zhang et al., 2019): ``CE(h(x), y) + beta * KL(h(x) || h(x_adv))`` per sample."""
    clean_probabilities = tf.nn.softmax(clean_logits)
    return cross_entropy(clean_logits, labels) + beta * kl_divergence(adversarial_logits, clean_probabilities)


def mart_loss(clean_logits, adversarial_logits, labels, beta: float) -> tf.Tensor:
    """MART (Wang et al., 2020): boosted CE on x_adv + beta * (1 - p_y(x)) * KL, per sample."""
    adversarial_probabilities = tf.nn.softmax(adversarial_logits)
    one_hot = tf.one_hot(labels, tf.shape(adversarial_logits)[-1])
    best_wrong = tf.reduce_max(adversarial_probabilities - one_hot * 2.0, axis=-1)
    boosted_ce = cross_entropy(adversarial_logits, labels) - tf.math.log(1.0001 - best_wrong)
    clean_probabilities = tf.nn.softmax(clean_logits)
    true_probability = tf.reduce_sum(clean_probabilities * one_hot, axis=-1)
    kl = kl_divergence(adversarial_logits, clean_probabilities)
    return boosted_ce + beta * kl * (1.0 - true_probability)


def base_loss(kind: BaseLoss, clean_logits, adversarial_logits, labels, beta: float) -> tf.Tensor:
    """The per-sample loss that MIAT's MI term is added to (Eq. 9's L_adv)."""
    if kind == BaseLoss.CE:
        return cross_entropy(adversarial_logits, labels)
    if kind == BaseLoss.TRADES:
        return trades_loss(clean_logits, adversarial_logits, labels, beta)
    if kind == BaseLoss.MART:
        return mart_loss(clean_logits, adversarial_logits, labels, beta)
    raise ValueError(f"Unknown base loss {kind!r}.")
