"""The training models' guards: float images in [0, 1], finite updates, finite saved weights.

Checks inside a compiled step can only fail as a TensorFlow ``InvalidArgumentError`` with a
graph trace. Each check here carries a marker; `translated_step_errors` turns an error with
the marker into a one-line Python error that says what to do.
"""

from __future__ import annotations

import contextlib
import math
import re

import keras
import numpy as np
import tensorflow as tf

from mi_keras.distribution import global_sum
from mi_keras.models.non_finite_loss_error import NonFiniteLossError

_NON_FINITE_MARKER = "mi_keras:non_finite_update"
_RANGE_MARKER = "mi_keras:image_range"
_NUMBER = r"(-?(?:nan|inf|[0-9.e+-]+))"

IMAGES_HELP = "mi_keras trains on float32 images in [0, 1]: convert 0..255 pixels with `x.astype('float32') / 255`."
NON_FINITE_HELP = (
    "lower the learning rate, alpha or lam (lam=0 is the released recipe), "
    "or attach mi_keras.callbacks.MIHealthMonitor to see what led there"
)


def checked_images(images) -> tf.Tensor:
    """``images`` as float32, after checking that they are floats in [0, 1] (in the graph).

    Integer images (uint8 0..255) fail at once: cast silently, an eps of 8/255 would perturb
    them by a negligible amount and the robustness result would mean nothing.
    """
    images = tf.convert_to_tensor(images)
    if not images.dtype.is_floating:
        raise ValueError(f"The training images are {images.dtype.name}; {IMAGES_HELP}")
    images = tf.cast(images, tf.float32)
    in_range = tf.reduce_all((images >= 0.0) & (images <= 1.0))  # False for NaN
    tf.debugging.Assert(in_range, [_RANGE_MARKER, tf.reduce_min(images), tf.reduce_max(images)], summarize=3)
    return images


def apply_if_finite(optimizer, gradients: list, variables: list, loss: tf.Tensor, enabled: bool = True) -> None:
    """``optimizer.apply(gradients, variables)``, run only if ``loss`` and every gradient are finite.

    The check fails the step with an assertion, and every op of the update (the variable
    updates and the step count) waits for it: when it fails, none of them runs and the
    weights stay those of the last good step. The optimizer is built first, outside that
    dependency, so that its variables can be lifted out of the step (XLA needs it). Every
    replica sees the same verdict (a global sum), so none waits on a collective that a
    failed peer left. XLA drops assertions: under ``jit_compile`` the after-batch check of
    `StepGuard.fit` stops training instead, one update too late.
    """
    if not enabled:
        optimizer.apply(gradients, variables)
        return
    if not optimizer.built:
        optimizer.build(variables)
    finite = [tf.reduce_all(tf.math.is_finite(loss))]
    finite += [tf.reduce_all(tf.math.is_finite(gradient)) for gradient in gradients if gradient is not None]
    failures = global_sum(1.0 - tf.cast(tf.reduce_all(tf.stack(finite)), tf.float32))
    check = tf.debugging.Assert(tf.equal(failures, 0.0), [_NON_FINITE_MARKER, loss])
    with tf.control_dependencies([check] if check is not None else []):
        optimizer.apply(gradients, variables)


def non_finite_error(model: keras.Model, value) -> NonFiniteLossError:
    """The `NonFiniteLossError` of ``model``'s failed step, with the loss ``value``."""
    step = int(model.optimizer.iterations.numpy()) + 1 if model.optimizer is not None else None
    text = str(value).lower()
    what = f"the loss became {text}" if text in ("nan", "inf", "-inf") else "a gradient became NaN or infinite"
    where = f" at training step {step}" if step is not None else ""
    return NonFiniteLossError(
        f"{type(model).__name__}: {what}{where}; training stopped before applying it, so the model keeps "
        f"the last good weights. To continue, {NON_FINITE_HELP}.",
        step=step,
        value=text,
    )


@contextlib.contextmanager
def translated_step_errors(model: keras.Model):
    """Re-raises the step guards' graph errors as one-line Python errors."""
    try:
        yield
    except tf.errors.InvalidArgumentError as error:
        message = str(error)
        found = re.search(re.escape(_NON_FINITE_MARKER) + r"\]?\s*\[?" + _NUMBER, message)
        if found or _NON_FINITE_MARKER in message:
            raise non_finite_error(model, found.group(1) if found else "nan") from None
        found = re.search(re.escape(_RANGE_MARKER) + r"\]?\s*\[?" + _NUMBER + r"\]?\s*\[?" + _NUMBER, message)
        if found or _RANGE_MARKER in message:
            values = f" (got min {found.group(1)}, max {found.group(2)})" if found else ""
            raise ValueError(f"The training images are outside [0, 1]{values}; {IMAGES_HELP}") from None
        raise


class _StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Raises `NonFiniteLossError` after a batch whose logged loss is not finite.

    The in-step check (`apply_if_finite`) normally fires first and keeps the weights;
    this covers the steps it cannot guard (XLA drops assertions).
    """

    def on_train_batch_end(self, batch, logs=None):
        value = (logs or {}).get("loss")
        if value is not None and not math.isfinite(float(np.asarray(value))):
            raise non_finite_error(self.model, float(np.asarray(value)))


def refuse_non_finite_weights(model: keras.Model, action: str) -> None:
    """Raises ``ValueError`` naming the first weight of ``model`` that holds a NaN or infinity."""
    for weight in model.weights:
        if not np.all(np.isfinite(keras.ops.convert_to_numpy(weight.value))):
            raise ValueError(
                f"Refusing to {action}: weight {weight.path!r} of {model.name!r} holds NaN or infinite values "
                "(the training diverged). Save or export a good checkpoint instead, e.g. the best epoch's."
            )


class StepGuard:
    """Mixin of the training models (listed before `keras.Model` in the bases): the guards of
    ``fit``, ``evaluate``, ``train_on_batch``, ``test_on_batch`` and ``save``.

    The model's steps call `checked_images` and apply their update with `apply_if_finite`; these methods turn the checks' graph errors into one-line errors,
    stop ``fit`` after any batch whose loss is not finite, and refuse to save non-finite weights.
    """

    stop_on_non_finite: bool = True

    def _set_stop_on_non_finite(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise ValueError(f"`stop_on_non_finite` must be True or False; got {value!r}.")
        self.stop_on_non_finite = value

    def fit(self, *args, callbacks=None, **kwargs):
        callbacks = list(callbacks or [])
        if self.stop_on_non_finite:
            callbacks.insert(0, _StopOnNonFiniteLoss())
        with translated_step_errors(self):
            return super().fit(*args, callbacks=callbacks, **kwargs)

    def evaluate(self, *args, **kwargs):
        with translated_step_errors(self):
            return super().evaluate(*args, **kwargs)

    def train_on_batch(self, *args, **kwargs):
        with translated_step_errors(self):
            return super().train_on_batch(*args, **kwargs)

    def test_on_batch(self, *args, **kwargs):
        with translated_step_errors(self):
            return super().test_on_batch(*args, **kwargs)

    def save(self, filepath, *args, **kwargs):
        refuse_non_finite_weights(self, f"save {filepath}")
        return super().save(filepath, *args, **kwargs)
