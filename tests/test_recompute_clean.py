"""``recompute_clean=True``: the memory-saving step gives the one-tape step's update exactly."""

from __future__ import annotations

import collections

import keras
import numpy as np
import pytest
import tensorflow as tf
from harness import check_config_round_trip

from mi_keras.attacks import PGD, Attack
from mi_keras.mi import MIEstimator
from mi_keras.models import AdversarialModel, MIDefenseModel

SHAPE = (8, 8, 1)
CALLS = collections.Counter()


class UniformNoise(Attack):
    """A seeded random perturbation: PGD's sign steps would turn the last-bit differences
    of multithreaded kernels into different examples, and this test compares updates."""

    def perturb(self, model, x, y, seed):
        return tf.clip_by_value(x + tf.random.stateless_uniform(tf.shape(x), seed, -self.eps, self.eps), 0.0, 1.0)


def make_classifier() -> keras.Model:
    """BatchNorm (statistics a second pass would move) and Dropout (a mask it would redraw)."""
    keras.utils.set_random_seed(1)
    return keras.Sequential(
        [
            keras.Input(SHAPE),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.BatchNormalization(),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(10),
        ]
    )


def make_estimator() -> MIEstimator:
    keras.utils.set_random_seed(2)
    return MIEstimator.for_classifier(SHAPE, 10, units=16)


def make_model(
    kind: str, recompute_clean: bool, classifier: keras.Model | None = None, attack: Attack | None = None
) -> AdversarialModel:
    classifier = classifier or make_classifier()
    options = {"attack": attack or UniformNoise(0.1), "seed": 5, "recompute_clean": recompute_clean}
    if kind == "miat":
        model = MIDefenseModel(classifier, make_estimator(), make_estimator(), lam=0.1, **options)
    else:
        model = AdversarialModel(classifier, base_loss=kind, **options)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    return model


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    return rng.random((16, *SHAPE), dtype=np.float32), rng.integers(0, 10, 16).astype(np.int32)


@pytest.mark.parametrize("kind", ["trades", "mart", "miat"])
def test_same_weights_statistics_and_metrics_as_the_one_tape_step(batch, kind):
    x, y = batch
    runs = []
    # Three recomputing runs: an ordering race in the step shows in about one run in three.
    for recompute_clean in (False, True, True, True):
        model = make_model(kind, recompute_clean)
        metrics = [model.train_on_batch(x, y, return_dict=True) for _ in range(3)]
        runs.append(([np.array(v) for v in model.classifier.variables], metrics))
    (plain_variables, plain_metrics), *recomputed_runs = runs
    for recomputed_variables, recomputed_metrics in recomputed_runs:
        assert len(plain_variables) == len(recomputed_variables)
        for plain, recomputed in zip(plain_variables, recomputed_variables):
            np.testing.assert_allclose(recomputed, plain, rtol=1e-5, atol=1e-6)
        for plain, recomputed in zip(plain_metrics, recomputed_metrics):
            for name in plain:
                np.testing.assert_allclose(recomputed[name], plain[name], rtol=1e-5, atol=1e-6, err_msg=name)


class CountingClassifier(keras.Model):
    def __init__(self, inner, **kwargs):
        super().__init__(**kwargs)
        self.inner = inner

    def call(self, inputs, training=False):
        CALLS[bool(training)] += 1
        return self.inner(inputs, training=training)


@pytest.mark.parametrize("kind, training_calls", [("trades", 3), ("ce", 1)])
def test_the_clean_pass_runs_twice_only_when_there_is_one(batch, kind, training_calls):
    x, y = batch
    model = make_model(kind, True, classifier=CountingClassifier(make_classifier()), attack=PGD(0.1, steps=2))
    model.compile(optimizer=keras.optimizers.SGD(0.1), run_eagerly=True)
    model.train_on_batch(x, y)
    CALLS.clear()
    model.train_on_batch(x, y)
    assert CALLS[True] == training_calls


def test_config_round_trip_and_bad_value():
    model = make_model("trades", True, attack=PGD(0.1, steps=2))
    assert check_config_round_trip(model).recompute_clean is True
    with pytest.raises(ValueError, match="recompute_clean"):
        AdversarialModel(make_classifier(), attack=PGD(0.1), recompute_clean="yes")


def test_same_update_under_xla(batch):
    x, y = batch
    runs = []
    for recompute_clean in (False, True):
        model = make_model("miat", recompute_clean)
        model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), jit_compile=True)
        for _ in range(2):
            model.train_on_batch(x, y)
        runs.append([np.array(v) for v in model.classifier.variables])
    for plain, recomputed in zip(*runs):
        np.testing.assert_allclose(recomputed, plain, rtol=1e-5, atol=1e-6)
