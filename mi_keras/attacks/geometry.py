"""Norm-ball geometry shared by every attack: steps, projections and random starts."""

from __future__ import annotations

import tensorflow as tf

from mi_keras.enums import RandomStart, ThreatModel

_TINY = 1e-12


def per_sample_l2_norm(values: tf.Tensor) -> tf.Tensor:
    """L2 norm of each sample, shaped ``[batch, 1, ..., 1]`` to broadcast against ``values``."""
    axes = list(range(1, len(values.shape)))
    return tf.sqrt(tf.reduce_sum(tf.square(values), axis=axes, keepdims=True))


def steepest_ascent(gradient: tf.Tensor, threat_model: ThreatModel) -> tf.Tensor:
    """The unit-norm steepest-ascent direction: sign for L-inf, normalised gradient for L2."""
    if threat_model == ThreatModel.LINF:
        return tf.sign(gradient)
    return gradient / tf.maximum(per_sample_l2_norm(gradient), _TINY)


def project(x_adv: tf.Tensor, x: tf.Tensor, eps: float, threat_model: ThreatModel) -> tf.Tensor:
    """Projects ``x_adv`` onto the eps ball around ``x`` intersected with the [0, 1] box."""
    delta = x_adv - x
    if threat_model == ThreatModel.LINF:
        delta = tf.clip_by_value(delta, -eps, eps)
    else:
        delta = delta * tf.minimum(1.0, eps / tf.maximum(per_sample_l2_norm(delta), _TINY))
    return tf.clip_by_value(x + delta, 0.0, 1.0)


def random_normal(shape, seed=None, stddev: float = 1.0) -> tf.Tensor:
    """Gaussian noise, stateless when ``seed`` (int tensor ``[2]``) is given."""
    if seed is None:
        return tf.random.normal(shape, stddev=stddev)
    return tf.random.stateless_normal(shape, seed=seed, stddev=stddev)


def random_uniform(shape, seed=None, minval: float = 0.0, maxval: float = 1.0) -> tf.Tensor:
    """Uniform noise, stateless when ``seed`` (int tensor ``[2]``) is given."""
    if seed is None:
        return tf.random.uniform(shape, minval=minval, maxval=maxval)
    return tf.random.stateless_uniform(shape, seed=seed, minval=minval, maxval=maxval)


def fold_seed(seed, index) -> tf.Tensor | None:
    """A new stateless seed derived from ``seed`` and an integer ``index`` (None stays None)."""
    if seed is None:
        return None
    return tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), tf.cast(index, tf.int64))


def random_start(x: tf.Tensor, eps: float, threat_model: ThreatModel, mode: RandomStart, seed=None) -> tf.Tensor:
    """The first iterate of an iterative attack, already inside the ball and the box."""
    if mode == RandomStart.NONE:
        return x
    shape = tf.shape(x)
    if mode == RandomStart.NORMAL:
        # The official code does not clip this start; we do, so that x_adv is always valid.
        return tf.clip_by_value(x + random_normal(shape, seed, stddev=0.001), 0.0, 1.0)
    if threat_model == ThreatModel.LINF:
        delta = random_uniform(shape, seed, -eps, eps)
    else:
        # Uniform in the L2 ball: a Gaussian direction scaled by radius eps * U^(1/d).
        direction = random_normal(shape, seed)
        direction /= tf.maximum(per_sample_l2_norm(direction), _TINY)
        dims = tf.cast(tf.reduce_prod(shape[1:]), tf.float32)
        radius = random_uniform(tf.concat([shape[:1], tf.ones_like(shape[1:])], 0), fold_seed(seed, 1))
        delta = eps * direction * tf.pow(radius, 1.0 / dims)
    return project(x + delta, x, eps, threat_model)


def per_sample_linf_norm(values: tf.Tensor) -> tf.Tensor:
    """L-inf norm of each sample, shaped ``[batch, 1, ..., 1]`` to broadcast against ``values``."""
    axes = list(range(1, len(values.shape)))
    return tf.reduce_max(tf.abs(values), axis=axes, keepdims=True)


def perturbation_norm(delta: tf.Tensor, threat_model: ThreatModel) -> tf.Tensor:
    """The threat-model norm of each sample of ``delta``, shape ``[batch]``."""
    if threat_model == ThreatModel.LINF:
        return tf.reshape(per_sample_linf_norm(delta), [-1])
    return tf.reshape(per_sample_l2_norm(delta), [-1])


def where_samples(condition: tf.Tensor, if_true: tf.Tensor, if_false: tf.Tensor) -> tf.Tensor:
    """Per-sample ``tf.where``: a ``[batch]`` condition picks whole samples of ``[batch, ...]``."""
    mask = tf.reshape(condition, [-1] + [1] * (len(if_true.shape) - 1))
    return tf.where(mask, if_true, if_false)


def keep_samples(state: dict[str, tf.Tensor], keep: tf.Tensor) -> dict[str, tf.Tensor]:
    """The per-sample tensors of ``state`` (all ``[batch, ...]``) at the samples where ``keep`` holds.

    Attacks drop the samples whose outcome is settled this way, so that later iterations do not
    compute on them; the count is dynamic, which one trace serves for every batch size.
    """
    return {key: tf.boolean_mask(value, keep) for key, value in state.items()}


def random_unit_direction(shape, threat_model: ThreatModel, seed=None) -> tf.Tensor:
    """A random direction of unit threat-model norm per sample (AutoAttack's starting points).

    L-inf: uniform noise in [-1, 1] divided by its largest entry; L2: a normalised Gaussian.
    """
    if threat_model == ThreatModel.LINF:
        noise = random_uniform(shape, seed, -1.0, 1.0)
        return noise / tf.maximum(per_sample_linf_norm(noise), _TINY)
    noise = random_normal(shape, seed)
    return noise / tf.maximum(per_sample_l2_norm(noise), _TINY)
