"""Layer helpers shared by the architectures, keeping the PyTorch references' conventions.

The zoo reproduces PyTorch reference networks, so that parameter counts, receptive fields and
(ported) weights mean the same thing on both sides:

- A strided 3x3 convolution pads one pixel on every side, as PyTorch's ``padding=1`` does.
  Keras' ``"same"`` pads only bottom/right when the input size is even, which shifts the
  sampling grid by one pixel.
- BatchNorm uses PyTorch's defaults: momentum 0.1 (Keras ``momentum=0.9``) and epsilon 1e-5.
- Fully connected layers default to PyTorch's ``nn.Linear`` initialisation,
  U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the kernel and the bias.
- The logits layer computes in float32 under any mixed-precision policy (the Keras mixed
  precision guide's advice), so losses and attacks always see float32 logits.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import keras

BATCH_NORM_MOMENTUM = 0.9  # PyTorch momentum 0.1: running = 0.9 * running + 0.1 * batch
BATCH_NORM_EPSILON = 1e-5


def he_normal_fan_out() -> keras.initializers.Initializer:
    """N(0, 2 / (k * k * out_channels)): the WideResNet and torchvision convolution init."""
    return keras.initializers.VarianceScaling(scale=2.0, mode="fan_out", distribution="untruncated_normal")


def he_normal_fan_in() -> keras.initializers.Initializer:
    """N(0, 2 / (k * k * in_channels)): PyTorch's ``kaiming_normal_`` default (TRADES)."""
    return keras.initializers.VarianceScaling(scale=2.0, mode="fan_in", distribution="untruncated_normal")


def image_input(input_shape: Sequence[int]) -> keras.KerasTensor:
    """A validated ``keras.Input`` for images of shape ``(height, width, channels)``."""
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Sequence):
        raise ValueError(f"`input_shape` must be a sequence (height, width, channels); got {input_shape!r}.")
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(is_integer(size, minimum=1) for size in shape):
        raise ValueError(
            "`input_shape` must be (height, width, channels) with positive integers "
            f"(NHWC images without the batch axis); got {input_shape!r}."
        )
    return keras.Input(shape=tuple(int(size) for size in shape), name="images")


def is_integer(value, minimum: int) -> bool:
    """True for Python or NumPy integers (not booleans) of at least ``minimum``."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= minimum


def validate_num_classes(num_classes: int) -> int:
    if not is_integer(num_classes, minimum=2):
        raise ValueError(f"`num_classes` must be an integer >= 2; got {num_classes!r}.")
    return int(num_classes)


def conv2d(
    x: keras.KerasTensor,
    filters: int,
    kernel_size: int,
    name: str,
    strides: int = 1,
) -> keras.KerasTensor:
    """A bias-free PyTorch-aligned convolution (``padding=kernel_size // 2``), He-normal fan-out."""
    padding = "same"
    if strides > 1:
        if kernel_size > 1:
            x = keras.layers.ZeroPadding2D(kernel_size // 2, name=f"{name}_pad")(x)
        padding = "valid"
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=False,
        kernel_initializer=he_normal_fan_out(),
        name=name,
    )(x)


def batch_norm(x: keras.KerasTensor, name: str) -> keras.KerasTensor:
    return keras.layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, epsilon=BATCH_NORM_EPSILON, name=name)(x)


def batch_norm_relu(x: keras.KerasTensor, name: str) -> keras.KerasTensor:
    return keras.layers.ReLU(name=f"{name}_relu")(batch_norm(x, f"{name}_bn"))


def dense(
    x: keras.KerasTensor,
    units: int,
    name: str,
    activation: str | None = None,
    kernel_initializer: str | keras.initializers.Initializer | None = None,
    bias_initializer: str | keras.initializers.Initializer | None = None,
    dtype: str | None = None,
) -> keras.KerasTensor:
    """A fully connected layer initialised like PyTorch's ``nn.Linear`` unless told otherwise."""
    bound = 1.0 / math.sqrt(x.shape[-1])
    # VarianceScaling(1/3, fan_in, uniform) draws from U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    torch_kernel = keras.initializers.VarianceScaling(scale=1.0 / 3.0, mode="fan_in", distribution="uniform")
    return keras.layers.Dense(
        units,
        activation=activation,
        kernel_initializer=kernel_initializer or torch_kernel,
        bias_initializer=bias_initializer or keras.initializers.RandomUniform(-bound, bound),
        dtype=dtype,
        name=name,
    )(x)


def logits_head(
    x: keras.KerasTensor,
    num_classes: int,
    kernel_initializer: str | keras.initializers.Initializer | None = None,
    bias_initializer: str | keras.initializers.Initializer | None = None,
) -> keras.KerasTensor:
    """The final linear layer, named ``logits``: no softmax, float32 under mixed precision."""
    return dense(
        x,
        num_classes,
        name="logits",
        kernel_initializer=kernel_initializer,
        bias_initializer=bias_initializer,
        dtype="float32",
    )
