"""The four MI terms of MIAT, computed in one place for training and for the MI probe.

With ``n = x_adv - x`` (the adversarial pattern), the natural estimator ``I_N`` and the
adversarial estimator ``I_A`` (docs/method.md, section "The four MI terms"):

- ``natural_mi_natural`` = ``I_N(x; h(x))``,
- ``natural_mi_adversarial`` = ``I_N(x; h(x_adv))``,
- ``adversarial_mi_natural`` = ``I_A(n; h(x))``,
- ``adversarial_mi_adversarial`` = ``I_A(n; h(x_adv))``.

`MIDefenseModel`, `MIEstimatorTrainer`, `MIProbe` and the pipeline's summaries all use
these names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import tensorflow as tf

from mi_keras.enums import Bound
from mi_keras.mi.mi_estimator import MIEstimator


class MITerms(NamedTuple):
    """Per-sample MI estimates, float32 ``[rows]`` each (see the module docstring)."""

    natural_mi_natural: tf.Tensor
    natural_mi_adversarial: tf.Tensor
    adversarial_mi_natural: tf.Tensor
    adversarial_mi_adversarial: tf.Tensor


LABELS = {
    "natural_mi_natural": "I_N(x; h(x))",
    "natural_mi_adversarial": "I_N(x; h(x_adv))",
    "adversarial_mi_natural": "I_A(n; h(x))",
    "adversarial_mi_adversarial": "I_A(n; h(x_adv))",
}


def pattern_features(
    natural_estimator: MIEstimator,
    adversarial_estimator: MIEstimator,
    x: tf.Tensor,
    x_adv: tf.Tensor,
    training=None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """The local features of ``x`` (natural estimator) and of ``n = x_adv - x`` (adversarial)."""
    return (
        natural_estimator.encode(x, training=training),
        adversarial_estimator.encode(x_adv - x, training=training),
    )


def score_against(
    estimator: MIEstimator,
    local_features: tf.Tensor,
    logits: Sequence[tf.Tensor],
    training=None,
    positive_index: tf.Tensor | None = None,
    bound: Bound | None = None,
) -> list[tf.Tensor]:
    """``estimator.score(local_features, l, ...)`` for each ``l`` in ``logits``, same rows each.

    In inference mode the logits are stacked and scored in one call: the global network
    runs once on ``[k * rows, K]`` and the critic is one ``[k * rows, D] x [columns, P, D]``
    product, which gives the separate calls' values and gradients (docs/method.md, section
    "Cost of a step"). In training mode the calls stay separate, because the global
    network's BatchNorm then normalises each call with its own batch statistics; so do they
    for ``training=None``, which inside a training-mode Keras call means training.
    """
    if training is not False or len(logits) == 1:
        return [
            estimator.score(local_features, each, training=training, positive_index=positive_index, bound=bound)
            for each in logits
        ]
    rows = tf.shape(logits[0])[0]
    index = tf.range(rows) if positive_index is None else positive_index
    values = estimator.score(
        local_features,
        tf.concat(logits, axis=0),
        training=training,
        positive_index=tf.tile(index, [len(logits)]),
        bound=bound,
    )
    return tf.split(values, len(logits), axis=0)


def mi_terms(
    natural_estimator: MIEstimator,
    adversarial_estimator: MIEstimator,
    natural_features: tf.Tensor,
    adversarial_features: tf.Tensor,
    clean_logits: tf.Tensor,
    adversarial_logits: tf.Tensor,
    training=None,
    positive_index: tf.Tensor | None = None,
    bound: Bound | None = None,
) -> MITerms:
    """The four MI terms from the local features of ``x`` and ``n`` and the logits ``h(x)``, ``h(x_adv)``.

    Args:
        natural_estimator: the `MIEstimator` of ``I(x; h(.))``.
        adversarial_estimator: the `MIEstimator` of ``I(x_adv - x; h(.))``.
        natural_features: ``natural_estimator.encode(x)``, ``[columns, P, D]``.
        adversarial_features: ``adversarial_estimator.encode(x_adv - x)``, ``[columns, P, D]``.
        clean_logits: ``h(x)``, ``[rows, K]``.
        adversarial_logits: ``h(x_adv)``, ``[rows, K]``.
        training: the estimators' mode (their BatchNorm layers).
        positive_index: the column of each row's positive (see `bounds.per_sample_mi`);
            under ``tf.distribute`` the rows are a replica's and the columns every replica's.
        bound: score with this `Bound` instead of the estimators' own (None).

    Example:
    ```python
    import numpy as np
    from mi_keras.attacks import PGD
    from mi_keras.mi import MIEstimator
    from mi_keras.mi.mi_terms import mi_terms, pattern_features
    from mi_keras.models import build_classifier

    rng = np.random.default_rng(0)
    x, y = rng.random((4, 8, 8, 1), dtype=np.float32), np.arange(4)
    classifier = build_classifier("small_cnn", (8, 8, 1), 10, padding="same")
    natural, adversarial = (MIEstimator.for_classifier((8, 8, 1), 10, units=16) for _ in range(2))
    x_adv = PGD(0.1, steps=2)(classifier, x, y)
    features = pattern_features(natural, adversarial, x, x_adv, training=False)
    terms = mi_terms(natural, adversarial, *features, classifier(x), classifier(x_adv))
    terms.natural_mi_adversarial  # I_N(x; h(x_adv)), [batch]
    ```
    """
    options = {"training": training, "positive_index": positive_index, "bound": bound}
    natural_mi_natural, natural_mi_adversarial = score_against(
        natural_estimator, natural_features, [clean_logits, adversarial_logits], **options
    )
    adversarial_mi_natural, adversarial_mi_adversarial = score_against(
        adversarial_estimator, adversarial_features, [clean_logits, adversarial_logits], **options
    )
    return MITerms(natural_mi_natural, natural_mi_adversarial, adversarial_mi_natural, adversarial_mi_adversarial)
