"""Stage-1 objectives for the two MI estimators (docs/method.md, section "Stage 1").

Both are written on ``D = -I`` (the official ``compute_loss`` output) so that the weights
and signs read exactly like the code; minimising ``D`` maximises the MI estimate.
"""

from __future__ import annotations

import tensorflow as tf

from mi_keras.distribution import global_sum
from mi_keras.enums import EstimatorObjective
from mi_keras.losses.batch_statistics import batch_cosine, masked_count, masked_mean
from mi_keras.mi.mi_terms import MITerms

# The official code's weights (train_MI_estimator.py); the paper never states them.
COSINE_WEIGHT = 5.0
ROBUST_COSINE_WEIGHT = 8.0
ROBUST_MINIMISATION_WEIGHT = 0.1
FOOLED_WEIGHT = 1.0
ROBUST_WEIGHT = 0.5


def _mean_or_fallback(values, mask, fallback):
    """``masked_mean(values, mask)``, or the batch mean of ``fallback`` when the mask is empty."""
    batch = global_sum(tf.cast(tf.shape(fallback)[0], tf.float32))
    return tf.where(masked_count(mask) > 0, masked_mean(values, mask), global_sum(tf.reduce_sum(fallback)) / batch)


def _if_any(mask, value):
    return tf.where(masked_count(mask) > 0, value, tf.zeros_like(value))


def contrastive_objectives(mi: MITerms, masks: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
    """The code's Eq. 5 reading: ``(natural_loss, adversarial_loss)``, from the four terms ``mi``."""
    d_n_clean, d_n_adv = -mi.natural_mi_natural, -mi.natural_mi_adversarial
    d_a_adv, d_a_clean = -mi.adversarial_mi_adversarial, -mi.adversarial_mi_natural
    correct, robust, fooled = masks["natural_correct"], masks["robust"], masks["fooled"]
    correct_count = masked_count(correct)

    def per_correct(values, mask):
        return tf.math.divide_no_nan(global_sum(tf.reduce_sum(values * mask)), correct_count)

    natural_robust = _if_any(
        robust,
        COSINE_WEIGHT * tf.abs(1.0 - batch_cosine(d_n_clean * robust, d_n_adv * robust))
        + per_correct(d_n_clean, robust),
    )
    natural_fooled = _if_any(
        fooled,
        COSINE_WEIGHT * tf.abs(batch_cosine(d_n_clean * fooled, d_n_adv * fooled)) + per_correct(d_n_clean, fooled),
    )
    adversarial_fooled = _if_any(
        fooled,
        COSINE_WEIGHT * tf.abs(batch_cosine(d_a_adv * fooled, d_a_clean * fooled)) + masked_mean(d_a_adv, fooled),
    )
    adversarial_robust = _if_any(
        robust,
        ROBUST_COSINE_WEIGHT * tf.abs(1.0 - batch_cosine(d_a_clean * robust, d_a_adv * robust))
        - ROBUST_MINIMISATION_WEIGHT * masked_mean(d_a_adv, robust),
    )
    any_correct = correct_count > 0
    batch = global_sum(tf.cast(tf.shape(d_n_clean)[0], tf.float32))
    natural = tf.where(
        any_correct,
        FOOLED_WEIGHT * natural_fooled + ROBUST_WEIGHT * natural_robust,
        global_sum(tf.reduce_sum(d_n_clean)) / batch,
    )
    adversarial = tf.where(
        any_correct,
        FOOLED_WEIGHT * adversarial_fooled + ROBUST_WEIGHT * adversarial_robust,
        global_sum(tf.reduce_sum(d_a_adv)) / batch,
    )
    return natural, adversarial


def mim_objectives(mi: MITerms, masks: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
    """Eq. 4 with selection: maximise I_N(x; h(x)) on correct x and I_A(n; h(x_adv)) on wrong x_adv."""
    d_n_clean, d_a_adv = -mi.natural_mi_natural, -mi.adversarial_mi_adversarial
    natural = _mean_or_fallback(d_n_clean, masks["natural_correct"], d_n_clean)
    adversarial = _mean_or_fallback(d_a_adv, 1.0 - masks["adversarial_correct"], d_a_adv)
    return natural, adversarial


def estimator_objectives(objective: EstimatorObjective, mi: MITerms, masks: dict[str, tf.Tensor]):
    """``(natural_loss, adversarial_loss)`` of stage 1; ``masks`` from `selection_masks`."""
    if objective == EstimatorObjective.CONTRASTIVE:
        return contrastive_objectives(mi, masks)
    if objective == EstimatorObjective.MIM:
        return mim_objectives(mi, masks)
    raise ValueError(f"Unknown estimator objective {objective!r}.")
