"""Small helpers shared by the training models' ``__init__`` and ``train_step``."""

from __future__ import annotations

import numbers
import random

import keras
import tensorflow as tf

from mi_keras.attacks.attack import Attack
from mi_keras.attacks.geometry import fold_seed
from mi_keras.mi.mi_estimator import MIEstimator
from mi_keras.models.step_guard import checked_images
from mi_keras.serialization import deserialize_if_config


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


def freeze(layer: keras.layers.Layer) -> None:
    """Makes ``layer``, its sub-layers and their weights non-trainable.

    Keras' TensorFlow backend skips ``layer.trainable = False`` when ``layer.trainable`` is
    already False, as it is for a layer deserialized from a config that says so, whose
    sub-layers were created trainable: setting True first makes the setter reach them.
    """
    layer.trainable = True
    layer.trainable = False


def images_and_labels(data) -> tuple[tf.Tensor, tf.Tensor]:
    """The batch's images (checked: float, in [0, 1]) and its labels as int32 ``[batch]``."""
    x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
    if y is None:
        raise ValueError("Adversarial training needs labels: the dataset must yield (images, labels).")
    return checked_images(x), tf.cast(tf.reshape(y, [-1]), tf.int32)


def check_estimator_classes(num_classes: int | None, **estimators: MIEstimator) -> None:
    """Raises ``ValueError`` when an estimator was built for another logit count than the
    classifier's ``num_classes`` (unknown counts are checked later, at build)."""
    for name, estimator in estimators.items():
        expected = estimator.num_classes
        if None not in (num_classes, expected) and num_classes != expected:
            raise ValueError(
                f"`{name}` was built for {expected} logits but the classifier returns {num_classes}; "
                f"build it with MIEstimator.for_classifier(..., num_classes={num_classes})."
            )


def check_estimator_pair(model, num_classes: int | None) -> None:
    """`check_estimator_classes` for a model's ``natural_estimator`` and ``adversarial_estimator``."""
    check_estimator_classes(
        num_classes, natural_estimator=model.natural_estimator, adversarial_estimator=model.adversarial_estimator
    )


def classifier_classes(classifier: keras.Model) -> int | None:
    """The classifier's logit count when its outputs are known (functional models), else None."""
    outputs = getattr(classifier, "outputs", None)
    return int(outputs[0].shape[-1]) if outputs else None


def update_means(trackers: dict[str, keras.metrics.Mean], values: dict) -> None:
    """Updates each tracker with its value, or with ``(value, weight)``: a weighted mean.

    A masked mean is tracked with its mask count as weight, so the epoch figure is the mean
    over every selected sample of the epoch, and a step that selected nothing counts for
    nothing (not as a zero).
    """
    for name, value in values.items():
        if isinstance(value, tuple):
            trackers[name].update_state(value[0], sample_weight=value[1])
        else:
            trackers[name].update_state(value)


def training_seed(seed: int | None, attack: Attack) -> int:
    """The int that every training step's randomness derives from.

    ``seed`` if given, else the attack's, else a new one drawn from Python's `random` (which
    `keras.utils.set_random_seed` fixes). The model records it in its config, so a loaded
    model continues the random stream of the run that was saved.
    """
    if seed is None:
        seed = attack.seed if attack.seed is not None else random.randrange(2**31)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"`seed` must be an int or None; got {seed!r}.")
    return int(seed)


def step_seeds(seed: int, optimizer) -> tuple[tf.Tensor, tf.Tensor]:
    """Two independent stateless seeds of shape ``[2]`` for this step: (attack, random layers).

    They are a function of ``(seed, optimizer.iterations)``; the step count is saved with the
    optimizer (in `.keras` files and by `keras.callbacks.BackupAndRestore`), so a resumed run
    draws what the uninterrupted run drew.
    """
    step = tf.stack([tf.constant(seed, tf.int64), tf.cast(optimizer.iterations, tf.int64)])
    attack_seed, layers_seed = tf.unstack(tf.random.experimental.stateless_split(step, num=2))
    return attack_seed, layers_seed


def reseed_random_layers(model: keras.layers.Layer, seed: tf.Tensor) -> None:
    """Writes a state derived from ``seed`` into every `keras.random.SeedGenerator` of ``model``.

    Dropout and Keras' other random layers draw from seed-generator states that neither
    `.keras` files nor ``save_weights`` hold. Setting them from the step's seed before the
    step runs makes the step's draws a function of ``(seed, step)``: nothing to save.
    """
    weights = {id(weight) for weight in model.weights}
    # Keras' `Layer.variables` is `weights` plus the seed generators' states (no metrics).
    states = [variable for variable in model.variables if id(variable) not in weights]
    for index, state in enumerate(states):
        state.assign(tf.cast(fold_seed(seed, index), state.dtype))


def adversarial_batch(model, data) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """``(x, y, x_adv)`` of a training step of ``model`` (it has ``seed``, ``attack``,
    ``classifier`` and ``optimizer``): the random layers are reseeded and the attack run
    from seeds derived from ``(model.seed, step)``."""
    x, y = images_and_labels(data)
    attack_seed, layers_seed = step_seeds(model.seed, model.optimizer)
    reseed_random_layers(model, layers_seed)
    return x, y, model.attack(model.classifier, x, y, seed=attack_seed)


def build_from_classifier(model) -> None:
    """Builds ``model`` now when its classifier knows its input shape, so save/export work before fit."""
    inputs = getattr(model.classifier, "inputs", None)
    if inputs:
        model.build(tuple(inputs[0].shape))
