"""TI-DIM: the translation-invariant, diverse-input, momentum iterative attack (L-inf)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from mi_keras.attacks.attack import Attack, logits_of, positive_integer
from mi_keras.attacks.geometry import fold_seed, project, random_uniform
from mi_keras.enums import ThreatModel
from mi_keras.objectives import cross_entropy

# DIM's canvas: 299-pixel ImageNet inputs were resized into [299, 330) and padded to 330.
_DEFAULT_CANVAS_RATIO = 330 / 299


def gaussian_kernel(size: int, sigmas: float) -> np.ndarray:
    """The TI kernel: a Gaussian sampled at ``size`` points evenly spaced in [-sigmas, sigmas],
    outer product, normalised to sum 1 (``gkern`` of the TI and MIAT code)."""
    points = np.linspace(-sigmas, sigmas, size)
    profile = np.exp(-0.5 * points**2)
    kernel = np.outer(profile, profile)
    return (kernel / kernel.sum()).astype(np.float32)


@keras.saving.register_keras_serializable(package="mi_keras")
class TIDIM(Attack):
    """TI-DIM (Dong et al., CVPR 2019, on DIM by Xie et al., CVPR 2019, and MI-FGSM by Dong et
    al., CVPR 2018), bounded in L-inf.

    Each of ``steps`` iterations: with probability ``diversity_prob`` the whole batch is resized
    (bilinear, as the MIAT code; DIM used nearest neighbours) to a random side in [low, high],
    padded at a random offset to ``high x high`` and resized back to the input size (the model
    needs its input size; DIM fed the padded canvas to a network that accepts any size); the
    cross-entropy gradient is smoothed by a ``kernel_size x kernel_size`` Gaussian (translation
    invariance), divided by its mean absolute value, accumulated with ``momentum``, and its sign
    is stepped by ``step_size``, then projected onto the eps ball and [0, 1]. No random start.

    Defaults are the published ones: a 15 x 15 kernel spanning +-3 standard deviations (so the
    standard deviation is 7/3 pixels; ``gkern(15, 3)``), diversity probability 0.5, momentum
    1.0 (MI-FGSM), canvas ``high = round(size * 330 / 299)`` (DIM: 299 -> 330), ``low = size``.
    The official MIAT repository ran it with momentum 0.1 and ``low = high = 32`` on 32-pixel
    images, which disables input diversity; pass ``momentum=0.1, low=32, high=32`` (or
    ``diversity_prob=0``) to reproduce that. It used 40 steps of 0.007 at eps 8/255 (TI-DIM's
    paper: 10 steps of eps / 10); our defaults are 40 steps of eps / 4.

    Example:
    ```python
    from mi_keras.attacks import TIDIM
    from mi_keras.data import load_dataset
    from mi_keras.models import build_classifier

    test, info = load_dataset("digits", "test", batch_size=8)  # 8x8 digits: no download
    images, labels = next(iter(test))
    model = build_classifier("small_cnn", info.image_shape, info.num_classes, padding="same")
    x_adv = TIDIM(eps=8 / 255, steps=5, low=8, high=10, kernel_size=3, seed=0)(model, images, labels)
    ```

    Args:
        eps: L-inf ball radius.
        step_size: step length, in (0, eps]; defaults to ``eps / 4``.
        steps: iterations, >= 1.
        momentum: decay factor of the accumulated gradient, >= 0.
        diversity_prob: probability of the resize-and-pad transform per iteration, in [0, 1].
        low: smallest resize side in pixels (default: the image side).
        high: canvas side in pixels, >= low (default: ``round(side * 330 / 299)``).
        kernel_size: odd side of the Gaussian smoothing kernel (1 disables TI).
        kernel_sigmas: the kernel spans +-``kernel_sigmas`` standard deviations, > 0.
        seed: optional int for a reproducible diversity transform.
        name: optional display name.
    """

    fixed_threat_model = ThreatModel.LINF

    def __init__(
        self,
        eps: float,
        step_size: float | None = None,
        steps: int = 40,
        momentum: float = 1.0,
        diversity_prob: float = 0.5,
        low: int | None = None,
        high: int | None = None,
        kernel_size: int = 15,
        kernel_sigmas: float = 3.0,
        seed: int | None = None,
        name: str | None = None,
    ):
        super().__init__(eps=eps, threat_model=self.fixed_threat_model, seed=seed, name=name)
        self.step_size = float(step_size) if step_size is not None else self.eps / 4
        if self.step_size <= 0 or self.step_size > self.eps + 1e-12:
            raise ValueError(f"`step_size` must be in (0, eps] = (0, {self.eps}]; got {self.step_size}.")
        self.steps = positive_integer(steps, "steps")
        if momentum < 0:
            raise ValueError(f"`momentum` must be >= 0; got {momentum!r}.")
        if not 0.0 <= diversity_prob <= 1.0:
            raise ValueError(f"`diversity_prob` must be in [0, 1]; got {diversity_prob!r}.")
        self.low = None if low is None else positive_integer(low, "low")
        self.high = None if high is None else positive_integer(high, "high")
        if low is not None and high is not None and low > high:
            raise ValueError(f"`low` must be <= `high`; got low={low}, high={high}.")
        self.kernel_size = positive_integer(kernel_size, "kernel_size")
        if self.kernel_size % 2 == 0:
            raise ValueError(f"`kernel_size` must be an odd integer >= 1; got {kernel_size!r}.")
        if kernel_sigmas <= 0:
            raise ValueError(f"`kernel_sigmas` must be > 0; got {kernel_sigmas!r}.")
        self.momentum = float(momentum)
        self.diversity_prob = float(diversity_prob)
        self.kernel_sigmas = float(kernel_sigmas)

    def _canvas(self, side: int) -> tuple[int, int]:
        low = self.low if self.low is not None else side
        high = self.high if self.high is not None else max(round(side * _DEFAULT_CANVAS_RATIO), low)
        if low > high:
            raise ValueError(f"`low` ({low}) must be <= the canvas side `high` ({high}).")
        return low, high

    def _diverse(self, x_adv, low: int, high: int, seed):
        """DIM's transform: resize to a random side in [low, high], pad to high, resize back."""
        side = x_adv.shape[1]
        draws = random_uniform([4], seed)
        resized_side = low + tf.cast(tf.floor(draws[0] * (high - low + 1)), tf.int32)
        room = high - resized_side
        top = tf.cast(tf.floor(draws[1] * tf.cast(room + 1, tf.float32)), tf.int32)
        left = tf.cast(tf.floor(draws[2] * tf.cast(room + 1, tf.float32)), tf.int32)
        resized = tf.image.resize(x_adv, tf.stack([resized_side, resized_side]))
        padded = tf.pad(resized, [[0, 0], [top, room - top], [left, room - left], [0, 0]])
        transformed = tf.image.resize(padded, [side, side])
        return tf.cond(draws[3] < self.diversity_prob, lambda: transformed, lambda: x_adv)

    def perturb(self, model, x, y, seed):
        if len(x.shape) != 4 or None in x.shape[1:]:
            raise ValueError(f"TI-DIM needs images of static shape [batch, H, W, C]; got {x.shape}.")
        height, width, channels = x.shape[1:]
        if self.diversity_prob > 0 and height != width:
            raise ValueError(f"TI-DIM's input diversity needs square images; got {height} x {width}.")
        low, high = self._canvas(height)
        kernel = gaussian_kernel(self.kernel_size, self.kernel_sigmas)
        kernel = tf.constant(np.tile(kernel[:, :, None, None], [1, 1, channels, 1]))

        def body(i, x_adv, accumulated):
            with tf.GradientTape() as tape:
                tape.watch(x_adv)
                inputs = self._diverse(x_adv, low, high, fold_seed(seed, i))
                total = tf.reduce_sum(cross_entropy(logits_of(model, inputs), y))
            gradient = tape.gradient(total, x_adv, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            gradient = tf.nn.depthwise_conv2d(gradient, kernel, [1, 1, 1, 1], "SAME")
            scale = tf.reduce_mean(tf.abs(gradient), axis=[1, 2, 3], keepdims=True)
            accumulated = self.momentum * accumulated + gradient / tf.maximum(scale, 1e-12)
            moved = x_adv + self.step_size * tf.sign(accumulated)
            return i + 1, project(moved, x, self.eps, ThreatModel.LINF), accumulated

        _, x_adv, _ = tf.while_loop(lambda i, *_: i < self.steps, body, (tf.constant(0), x, tf.zeros_like(x)))
        return x_adv

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "step_size": self.step_size,
            "steps": self.steps,
            "momentum": self.momentum,
            "diversity_prob": self.diversity_prob,
            "low": self.low,
            "high": self.high,
            "kernel_size": self.kernel_size,
            "kernel_sigmas": self.kernel_sigmas,
        }
