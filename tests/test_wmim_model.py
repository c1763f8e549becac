"""WMIM (AT + standard-MI maximisation on adversarial samples): the MI term, saving, errors."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from harness import check_config_round_trip, check_saved_outputs

from mi_keras.attacks import PGD
from mi_keras.mi import MIEstimator
from mi_keras.models import WMIMModel

SHAPE = (8, 8, 1)


def make_model(**kwargs) -> WMIMModel:
    keras.utils.set_random_seed(4)
    classifier = keras.Sequential(
        [
            keras.Input(SHAPE),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    )
    estimator = MIEstimator.for_classifier(SHAPE, 10, units=16)
    options = {"attack": PGD(0.1, steps=2, random_start="none"), "seed": 3, "train_estimator": True, **kwargs}
    model = WMIMModel(classifier, estimator, **options)
    model.compile(optimizer=keras.optimizers.SGD(0.05))
    return model


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(1)
    return rng.random((16, *SHAPE), dtype=np.float32), rng.integers(0, 10, 16).astype(np.int32)


def objective_gradients(model, x, y):
    """Gradients of one step's loss with respect to the classifier and the estimator."""
    x, y = tf.constant(x), tf.constant(y)
    x_adv = model.attack(model.classifier, x, y)
    with tf.GradientTape(persistent=True) as tape:
        logits = model.classifier(x_adv, training=True)
        share, values = model._objective(x, x_adv, y, None, logits, {})
    classifier = tape.gradient(share, model.classifier.trainable_variables)
    estimator = tape.gradient(share, model.estimator.trainable_variables, unconnected_gradients="zero")
    return classifier, estimator, values


def flat(gradients) -> np.ndarray:
    return np.concatenate([np.ravel(g.numpy()) for g in gradients])


def test_mi_term_changes_the_classifier_gradient_by_minus_alpha_times_the_mi_gradient(batch):
    x, y = batch
    model = make_model(alpha=0.0)
    without, _, _ = objective_gradients(model, x, y)
    model.alpha = 2.0
    with_mi, estimator_gradient, values = objective_gradients(model, x, y)
    difference = flat(with_mi) - flat(without)
    assert np.linalg.norm(difference) > 1e-3 * np.linalg.norm(flat(without))
    # The difference is exactly -alpha * d mean(I(x_adv; h(x_adv))) / d theta.
    x_adv = model.attack(model.classifier, tf.constant(x), tf.constant(y))
    with tf.GradientTape() as tape:
        logits = model.classifier(x_adv, training=True)
        mi = tf.reduce_mean(model.estimator(x_adv, logits, training=True))
    expected = -2.0 * flat(tape.gradient(mi, model.classifier.trainable_variables))
    np.testing.assert_allclose(difference, expected, rtol=1e-3, atol=1e-5)
    assert float(values["adversarial_mi"]) == pytest.approx(float(mi), abs=1e-5)
    assert np.linalg.norm(flat(estimator_gradient)) > 0.0  # the estimator ascends the bound too


def test_joint_training_raises_the_adversarial_mi_and_a_frozen_estimator_stays(batch):
    x, y = batch
    model = make_model(alpha=1.0)
    first = model.train_on_batch(x, y, return_dict=True)["adversarial_mi"]
    for _ in range(10):
        model.reset_metrics()
        last = model.train_on_batch(x, y, return_dict=True)["adversarial_mi"]
    assert last > first + 0.05

    frozen = make_model(alpha=1.0, train_estimator=False)
    before = [w.numpy().copy() for w in frozen.estimator.weights]
    frozen.train_on_batch(x, y)
    assert all(np.array_equal(a, b.numpy()) for a, b in zip(before, frozen.estimator.weights))
    assert not frozen.estimator.trainable_weights


def test_config_and_keras_file_round_trip(batch, tmp_path):
    x, y = batch
    model = make_model(alpha=0.5, base_loss="trades", train_estimator=False)
    model.train_on_batch(x, y)
    check_config_round_trip(model)
    loaded = check_saved_outputs(model, [x], tmp_path / "wmim")  # weights too: the estimator's
    assert (loaded.alpha, loaded.train_estimator, loaded.base_loss.value) == (0.5, False, "trades")


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="alpha"):
        make_model(alpha=-1.0)
    classifier = keras.Sequential([keras.Input(SHAPE), keras.layers.Flatten(), keras.layers.Dense(10)])
    with pytest.raises(ValueError, match="MIEstimator"):
        WMIMModel(classifier, "estimator", attack=PGD(0.1))


def test_the_pipeline_train_stage_builds_wmim_from_the_config(tmp_path):
    from pipeline.components.artifacts import EstimatorFiles
    from pipeline.components.builders import mi_defense_model
    from pipeline.settings import load_config, validate, with_overrides

    config = with_overrides(load_config("quickstart"), ["train.method=wmim", "train.alpha=0.3"])
    validate(config)
    natural = MIEstimator.for_classifier(SHAPE, 10, units=16)
    estimators = EstimatorFiles(tmp_path)
    for path in (estimators.natural, estimators.adversarial):
        keras.saving.save_model(natural, path)
    classifier = make_model().classifier
    model = mi_defense_model(config, classifier, estimators, steps_per_epoch=10)
    assert isinstance(model, WMIMModel) and model.alpha == 0.3 and not model.train_estimator
    logits = classifier(np.zeros((4, *SHAPE), np.float32))
    x = np.random.default_rng(0).random((4, *SHAPE), dtype=np.float32)
    # It scores with the stage-1 natural estimator.
    np.testing.assert_allclose(model.estimator(x, logits), natural(x, logits), atol=1e-6)
