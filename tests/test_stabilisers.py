"""The MIAT stabilisers, each off by default, each checked for the property it promises."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits
from toy_models import trained_digits_classifier

from mi_keras.attacks import PGD
from mi_keras.callbacks import EstimatorRefit, MIHealthMonitor
from mi_keras.losses.batch_statistics import batch_cosine
from mi_keras.losses.miat_loss import miat_loss
from mi_keras.mi import MIEstimator
from mi_keras.mi.mi_terms import MITerms
from mi_keras.models import MIDefenseModel

RNG = np.random.default_rng(0)
TERMS = MITerms(*(tf.constant(RNG.normal(size=16), tf.float32) for _ in range(4)))


def selection(*indices: int) -> tf.Tensor:
    return tf.constant(np.isin(np.arange(16), indices), tf.float32)


def loss_and_gradient(selected: tf.Tensor, **options) -> tuple[float, float]:
    with tf.GradientTape() as tape:
        tape.watch(TERMS)
        loss = miat_loss(TERMS, selected, 0.1, **options)
    gradient = tape.gradient(loss, TERMS)
    return float(loss), float(tf.linalg.global_norm([g for g in gradient if g is not None]))


def test_min_selected_silences_the_loss_below_the_count_and_only_there():
    loss, gradient = loss_and_gradient(selection(3))
    assert loss != 0 and gradient > 0  # the paper: one sample carries the whole lambda term
    assert loss_and_gradient(selection(3), min_selected=2) == (0.0, 0.0)
    assert loss_and_gradient(selection(3, 5), min_selected=2) == loss_and_gradient(selection(3, 5))


def test_weighting_by_the_selected_share_scales_the_cosine_terms_by_k_over_b():
    selected = selection(1, 4, 9, 12)
    plain = float(miat_loss(TERMS, selected, 0.0))
    weighted = float(miat_loss(TERMS, selected, 0.0, weight_by_selected_share=True))
    assert weighted == pytest.approx(plain * 4 / 16, rel=1e-6) and plain > 0


@pytest.mark.parametrize("scale", [1.0, 1e-3, 1e-6])
def test_the_cosine_epsilon_bounds_the_gradient_however_small_the_vectors(scale):
    u = tf.constant(RNG.normal(size=8) * scale, tf.float32)
    v = tf.constant(RNG.normal(size=8) * scale, tf.float32)

    def gradient_norm(epsilon: float) -> float:
        with tf.GradientTape() as tape:
            tape.watch(u)
            cosine = batch_cosine(u, v, epsilon=epsilon)
        return float(tf.norm(tape.gradient(cosine, u)))

    assert gradient_norm(0.1) <= 1 / 0.1
    if scale <= 1e-3:
        assert gradient_norm(0.0) > 1 / 0.1  # without it the gradient grows as 1 / |u|
    assert float(batch_cosine(u, v, epsilon=0.0)) == pytest.approx(
        float(tf.reduce_sum(u * v) / (tf.norm(u) * tf.norm(v))), rel=1e-5
    )


@pytest.mark.parametrize("normalization, shift, scale", [("center", 7.0, 1.0), ("standardize", -3.0, 4.0)])
def test_normalized_logits_make_the_estimator_blind_to_shifts_it_should_ignore(normalization, shift, scale):
    images = tf.constant(RNG.random((8, 8, 8, 1)), tf.float32)
    logits = tf.constant(RNG.normal(size=(8, 10)), tf.float32)
    raw = MIEstimator.for_classifier((8, 8, 1), 10, units=16)
    normalized = MIEstimator.from_config({**raw.get_config(), "logit_normalization": normalization})
    normalized.build((None, 8, 8, 1), (None, 10))
    normalized.set_weights(raw.get_weights())
    moved = logits * scale + shift
    np.testing.assert_allclose(normalized(images, moved), normalized(images, logits), atol=2e-4)
    assert not np.allclose(raw(images, moved), raw(images, logits), atol=1e-2)
    assert MIEstimator.from_config(normalized.get_config()).logit_normalization.value == normalization


def test_stabiliser_options_round_trip_and_are_checked():
    classifier, _, _ = trained_digits_classifier()
    estimators = [MIEstimator.for_classifier((8, 8, 1), 10, units=16) for _ in range(2)]
    options = {"min_selected": 3, "weight_by_selected_share": True, "cosine_epsilon": 0.5}
    model = MIDefenseModel(classifier, *estimators, attack=PGD(0.1), **options)
    config = model.get_config()
    assert {key: config[key] for key in options} == options
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
    assert {key: revived.get_config()[key] for key in options} == options
    for bad in ({"min_selected": 0}, {"cosine_epsilon": -1.0}, {"weight_by_selected_share": "yes"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            MIDefenseModel(classifier, *estimators, attack=PGD(0.1), **bad)


def test_refitting_makes_blind_estimators_read_the_classifier_and_leaves_it_alone():
    trained, test_images, test_labels = trained_digits_classifier()
    classifier = keras.models.clone_model(trained)
    classifier.set_weights(trained.get_weights())
    digits = load_digits()
    images, labels = (digits.images / 16.0).astype("float32")[..., None], digits.target.astype("int32")
    estimators = [MIEstimator.for_classifier((8, 8, 1), 10, units=32) for _ in range(2)]  # untrained
    model = MIDefenseModel(classifier, *estimators, attack=PGD(0.1, steps=3, seed=0), lam=0.0, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.0))  # the classifier must not move at all
    monitor = MIHealthMonitor((test_images, test_labels), batch_size=64)
    train = tf.data.Dataset.from_tensor_slices((images[:1024], labels[:1024])).batch(64, drop_remainder=True)
    refit = EstimatorRefit(
        tf.data.Dataset.from_tensor_slices((images[:1024], labels[:1024])).batch(64), every=1, epochs=2
    )
    classifier_before = [w.numpy().copy() for w in classifier.weights]
    history = model.fit(train, epochs=2, steps_per_epoch=1, callbacks=[refit, monitor], verbose=0)
    assert refit.refits == 2 and "estimator_refit_loss" in history.history
    assert history.history["health_natural_mi"][-1] > 0.5
    assert all(np.array_equal(b, w.numpy()) for b, w in zip(classifier_before, classifier.weights))
    assert {id(v) for v in model.trainable_variables} == {id(v) for v in classifier.trainable_variables}


@pytest.mark.parametrize("shared, expected", [(True, "none"), (False, "many")])
def test_a_shared_dropout_mask_keeps_dropout_noise_out_of_the_selection(shared, expected):
    """x_adv within 1e-5 of x: only differing dropout masks can make a sample look fooled."""
    inputs = keras.Input((8, 8, 1))
    hidden = keras.layers.Dropout(0.5)(keras.layers.Dense(64)(keras.layers.Flatten()(inputs)))
    classifier = keras.Model(inputs, keras.layers.Dense(10)(hidden))
    images = tf.constant(RNG.random((64, 8, 8, 1)), tf.float32)
    labels = np.argmax(classifier(images, training=False), -1).astype("int32")  # all correct without dropout
    estimators = [MIEstimator.for_classifier((8, 8, 1), 10, units=16) for _ in range(2)]
    attack = PGD(1e-5, steps=1, random_start="none")
    model = MIDefenseModel(classifier, *estimators, attack=attack, lam=0.0, seed=0, shared_dropout_mask=shared)
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    fraction = model.train_on_batch(images, labels, return_dict=True)["selected_fraction"]
    assert fraction < 0.02 if expected == "none" else fraction > 0.1
