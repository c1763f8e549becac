"""Small trained models shared by the attack and evaluation tests."""

from __future__ import annotations

import functools

import keras
import numpy as np
from sklearn.datasets import load_digits

LINF_EPS = 0.1  # on 8x8 digits in [0, 1]: PGD fools about half of the test samples
L2_EPS = 0.6


@functools.lru_cache(maxsize=1)
def trained_digits_classifier():
    """A small CNN trained for a few seconds on sklearn's 8x8 digits, and 200 test samples."""
    keras.utils.set_random_seed(0)
    digits = load_digits()
    images = (digits.images / 16.0).astype("float32")[..., None]
    labels = digits.target.astype("int32")
    inputs = keras.Input((8, 8, 1))
    hidden = keras.layers.Conv2D(16, 3, activation="relu", padding="same")(inputs)
    hidden = keras.layers.Flatten()(hidden)
    hidden = keras.layers.Dense(32, activation="relu")(hidden)
    model = keras.Model(inputs, keras.layers.Dense(10)(hidden))
    model.compile(
        keras.optimizers.Adam(3e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(images[:1500], labels[:1500], epochs=8, batch_size=64, verbose=0)
    return model, images[1500:1700], labels[1500:1700]


@functools.lru_cache(maxsize=1)
def trained_digits_estimators():
    """Natural and adversarial estimators trained (Eq. 4, ``mim``) against `trained_digits_classifier`."""
    from mi_keras.attacks import PGD
    from mi_keras.mi import MIEstimator
    from mi_keras.models import MIEstimatorTrainer

    classifier, _, _ = trained_digits_classifier()
    keras.utils.set_random_seed(0)
    digits = load_digits()
    images = (digits.images / 16.0).astype("float32")[..., None]
    estimators = [MIEstimator.for_classifier((8, 8, 1), 10, units=32) for _ in range(2)]
    trainer = MIEstimatorTrainer(classifier, *estimators, attack=PGD(0.1, steps=3, seed=0), objective="mim", seed=0)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3))
    trainer.fit(images[:1024], digits.target[:1024].astype("int32"), batch_size=64, epochs=3, verbose=0)
    return estimators


def accuracy(model, x, y) -> float:
    return float(np.mean(np.argmax(model(x, training=False), -1) == y))


def tiny_probe_classifier() -> keras.Model:
    """An untrained 8x8x1 -> 4-logit CNN, for the MI-probe tests (seed Keras first)."""
    inputs = keras.Input((8, 8, 1))
    hidden = keras.layers.Conv2D(8, 3, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(4)(keras.layers.Flatten()(hidden)))


@keras.saving.register_keras_serializable(package="tests")
class LossPoison(keras.layers.Layer):
    """Adds ``offset`` to the logits: 0 until a test arms it with NaN (a loss that turns NaN)."""

    def build(self, input_shape):
        self.offset = self.add_weight(shape=(), initializer="zeros", trainable=False, name="offset")

    def call(self, logits):
        return logits + self.offset
