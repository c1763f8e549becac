"""`mi_terms`: the fused scoring gives the loss and gradients of four separate estimator calls."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from mi_keras.enums import Bound
from mi_keras.losses import miat_loss, selection_masks
from mi_keras.mi import MIEstimator, MITerms, mi_terms, pattern_features

SHAPE, CLASSES, BATCH = (8, 8, 1), 4, 6


@pytest.fixture(scope="module")
def parts():
    keras.utils.set_random_seed(2)
    classifier = keras.Sequential(
        [
            keras.Input(SHAPE),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(CLASSES),
        ]
    )
    estimators = [MIEstimator.for_classifier(SHAPE, CLASSES, units=8) for _ in range(2)]
    rng = np.random.default_rng(3)
    x = rng.uniform(size=(BATCH, *SHAPE)).astype("float32")
    x_adv = np.clip(x + rng.uniform(-0.2, 0.2, size=x.shape), 0.0, 1.0).astype("float32")
    logits = classifier(x).numpy()
    y = np.argmax(logits, -1).astype("int32")  # every sample correct on x
    return classifier, estimators, x, x_adv, y


def plain_terms(natural, adversarial, features, clean_logits, adversarial_logits, training, **options) -> MITerms:
    """The four terms as four separate `MIEstimator.score` calls (the formulation before fusing)."""
    natural_features, adversarial_features = features

    def score(estimator, local, logits):
        return estimator.score(local, logits, training=training, **options)

    return MITerms(
        natural_mi_natural=score(natural, natural_features, clean_logits),
        natural_mi_adversarial=score(natural, natural_features, adversarial_logits),
        adversarial_mi_natural=score(adversarial, adversarial_features, clean_logits),
        adversarial_mi_adversarial=score(adversarial, adversarial_features, adversarial_logits),
    )


def loss_and_gradients(compute, parts, training=False):
    classifier, (natural, adversarial), x, x_adv, y = parts
    features = [tf.stop_gradient(f) for f in pattern_features(natural, adversarial, x, x_adv, training=False)]
    with tf.GradientTape() as tape:
        clean_logits, adversarial_logits = classifier(x, training=True), classifier(x_adv, training=True)
        terms = compute(natural, adversarial, features, clean_logits, adversarial_logits, training)
        # Every sample selected, so that all four terms reach the loss.
        loss = miat_loss(terms, tf.ones([BATCH]), lam=0.5)
    gradients = tape.gradient(loss, classifier.trainable_variables)
    return terms, loss, gradients


@pytest.mark.parametrize(
    "options",
    [{}, {"bound": Bound.INFONCE}, {"bound": Bound.JSD}, {"positive_index": tf.range(BATCH)[::-1]}],
    ids=["dv", "infonce", "jsd", "permuted_positives"],
)
def test_fused_terms_match_separate_calls(parts, options):
    def fused(natural, adversarial, features, clean, adv, training):
        return mi_terms(natural, adversarial, *features, clean, adv, training=training, **options)

    def plain(natural, adversarial, features, clean, adv, training):
        return plain_terms(natural, adversarial, features, clean, adv, training, **options)

    fused_terms, fused_loss, fused_gradients = loss_and_gradients(fused, parts)
    plain_terms_, plain_loss, plain_gradients = loss_and_gradients(plain, parts)
    for name in MITerms._fields:
        np.testing.assert_allclose(
            getattr(fused_terms, name), getattr(plain_terms_, name), rtol=1e-5, atol=1e-5, err_msg=name
        )
    assert abs(float(plain_loss)) > 1e-3  # the loss is not trivially 0
    np.testing.assert_allclose(float(fused_loss), float(plain_loss), rtol=1e-5, atol=1e-5)
    for fused_gradient, plain_gradient in zip(fused_gradients, plain_gradients):
        assert np.abs(plain_gradient.numpy()).max() > 0
        np.testing.assert_allclose(fused_gradient, plain_gradient, rtol=1e-5, atol=1e-5)


def test_terms_are_not_interchangeable(parts):
    """Swapping the estimators or the logits changes the values the names promise."""
    classifier, (natural, adversarial), x, x_adv, y = parts
    features = pattern_features(natural, adversarial, x, x_adv, training=False)
    clean, adv = classifier(x), classifier(x_adv)
    terms = mi_terms(natural, adversarial, *features, clean, adv, training=False)
    np.testing.assert_allclose(
        terms.natural_mi_adversarial, natural.score(features[0], adv, training=False), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        terms.adversarial_mi_natural, adversarial.score(features[1], clean, training=False), rtol=1e-5, atol=1e-6
    )
    assert not np.allclose(terms.natural_mi_natural, terms.natural_mi_adversarial, atol=1e-4)
    assert not np.allclose(terms.adversarial_mi_natural, terms.adversarial_mi_adversarial, atol=1e-4)


def test_training_mode_keeps_each_call_its_own_batch_statistics(parts):
    """With BatchNorm in training mode, stacking the logits would change the statistics."""
    classifier, (natural, adversarial), x, x_adv, y = parts
    features = pattern_features(natural, adversarial, x, x_adv, training=False)
    clean, adv = classifier(x), classifier(x_adv)
    moving = [w.numpy().copy() for w in natural.global_network.norm.non_trainable_weights]
    terms = mi_terms(natural, adversarial, *features, clean, adv, training=True)
    expected = natural.score(features[0], adv, training=True)
    np.testing.assert_allclose(terms.natural_mi_adversarial, expected, rtol=1e-5, atol=1e-5)
    stacked = natural.score(features[0], tf.concat([clean, adv], 0), training=True)[BATCH:]
    assert not np.allclose(stacked, expected, atol=1e-4)
    for weight, value in zip(natural.global_network.norm.non_trainable_weights, moving):
        weight.assign(value)


def test_selection_masks_hold_both_correctness_masks(parts):
    classifier, _, x, x_adv, y = parts
    masks = selection_masks(classifier(x), classifier(x_adv), y, "logits")
    np.testing.assert_array_equal(masks["robust"], masks["natural_correct"] * masks["adversarial_correct"])
    np.testing.assert_array_equal(masks["fooled"], masks["natural_correct"] * (1 - masks["adversarial_correct"]))
