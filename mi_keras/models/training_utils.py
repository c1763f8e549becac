"""Small helpers shared by the training models' ``__init__`` and ``train_step``."""

from __future__ import annotations

import keras
import tensorflow as tf

from mi_keras.attacks.attack import Attack
from mi_keras.mi.mi_estimator import MIEstimator


def deserialize_if_config(value):
    """A Keras object from its serialized config (as `from_config` passes it), else unchanged."""
    return keras.saving.deserialize_keras_object(value) if isinstance(value, dict) else value


def as_attack(value, argument: str) -> Attack:
    attack = deserialize_if_config(value)
    if not isinstance(attack, Attack):
        raise ValueError(f"`{argument}` must be an mi_keras.attacks.Attack (e.g. PGD(eps=8/255)); got {attack!r}.")
    return attack


def as_estimator(value, argument: str) -> MIEstimator:
    estimator = deserialize_if_config(value)
    if not isinstance(estimator, MIEstimator):
        raise ValueError(f"`{argument}` must be an mi_keras.mi.MIEstimator; got {type(estimator).__name__}.")
    return estimator


def images_and_labels(data) -> tuple[tf.Tensor, tf.Tensor]:
    x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
    if y is None:
        raise ValueError("Adversarial training needs labels: the dataset must yield (images, labels).")
    return tf.cast(x, tf.float32), tf.cast(tf.reshape(y, [-1]), tf.int32)


def float_logits(classifier, images, training: bool) -> tf.Tensor:
    """Logits as float32 whatever the precision policy: losses and masks need full precision."""
    return tf.cast(classifier(images, training=training), tf.float32)


def step_seed(seed: int | None, attack: Attack, optimizer) -> tf.Tensor | None:
    """A stateless seed ``(seed, step)`` for this step's attack, or None when nothing is seeded."""
    base = seed if seed is not None else attack.seed
    if base is None:
        return None
    return tf.stack([tf.constant(base, tf.int64), tf.cast(optimizer.iterations, tf.int64)])


def build_from_classifier(model) -> None:
    """Builds ``model`` now when its classifier knows its input shape, so save/export work before fit."""
    inputs = getattr(model.classifier, "inputs", None)
    if inputs:
        model.build(tuple(inputs[0].shape))
