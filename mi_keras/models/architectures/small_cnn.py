"""The small MNIST convolutional network of TRADES (Zhang et al., 2019)."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from mi_keras.models.architectures.building_blocks import (
    dense,
    he_normal_fan_in,
    image_input,
    logits_head,
    validate_num_classes,
)

# Two stages of two 3x3 convolutions, each stage followed by a 2x2 max-pool.
SMALL_CNN_STAGES = ((32, 32), (64, 64))
HIDDEN_UNITS = 200
# The smallest image side that leaves at least one pixel after both conv/pool stages.
MIN_IMAGE_SIZE = {"valid": 16, "same": 4}


def small_cnn(
    input_shape: Sequence[int],
    num_classes: int,
    *,
    padding: str = "valid",
    dropout_rate: float = 0.5,
    name: str = "small_cnn",
) -> keras.Model:
    """Builds the TRADES SmallCNN; it returns logits.

    Four 3x3 convolutions with bias and ReLU (32, 32, max-pool, 64, 64, max-pool), then three
    linear layers (200, ReLU, dropout, 200, ReLU, ``num_classes``). Initialisation follows
    TRADES: convolutions He-normal (fan-in) with zero bias, and the logits layer all zeros,
    so an untrained model outputs zero logits and its input gradients are zero until the
    first update.

    With ``padding="valid"`` (the reference) a 28x28x1 input gives a 4x4x64 map and 312,202
    trainable parameters for 10 classes, like TRADES' ``SmallCNN()``: convolutions
    320 + 9,248 + 18,496 + 36,928, linear 205,000 + 40,200 + 2,010. Valid padding needs
    inputs of at least 16x16; ``padding="same"`` keeps the map size through the
    convolutions, so small images work: 8x8 digits give a 2x2x64 map (fc1 256 -> 200).
    The flatten is NHWC-ordered; PyTorch flattens CHW.

    Reference: Zhang et al., "Theoretically Principled Trade-off between Robustness and
    Accuracy" (TRADES), ICML 2019.

    Example:
    ```python
    from mi_keras.models.architectures import small_cnn

    mnist_model = small_cnn(input_shape=(28, 28, 1), num_classes=10)
    digits_model = small_cnn(input_shape=(8, 8, 1), num_classes=10, padding="same")
    ```

    Args:
        input_shape: ``(height, width, channels)``.
        num_classes: number of logits (>= 2).
        padding: ``"valid"`` (TRADES) or ``"same"`` for the convolutions.
        dropout_rate: dropout after the first linear layer, in [0, 1); TRADES uses 0.5.
        name: the model's name.
    """
    num_classes = validate_num_classes(num_classes)
    if padding not in MIN_IMAGE_SIZE:
        raise ValueError(f"`padding` must be one of {tuple(MIN_IMAGE_SIZE)}; got {padding!r}.")
    if not 0.0 <= dropout_rate < 1.0:
        raise ValueError(f"`dropout_rate` must be in [0, 1); got {dropout_rate!r}.")
    inputs = image_input(input_shape)
    if min(inputs.shape[1:3]) < MIN_IMAGE_SIZE[padding]:
        hint = "; pass padding='same' for small images" if padding == "valid" else ""
        raise ValueError(
            f"small_cnn with padding={padding!r} needs images of at least "
            f"{MIN_IMAGE_SIZE[padding]}x{MIN_IMAGE_SIZE[padding]}; got `input_shape` "
            f"{tuple(input_shape)}{hint}."
        )
    x = inputs
    for stage, stage_filters in enumerate(SMALL_CNN_STAGES, start=1):
        for index, filters in enumerate(stage_filters, start=1):
            x = keras.layers.Conv2D(
                filters,
                3,
                padding=padding,
                activation="relu",
                kernel_initializer=he_normal_fan_in(),
                name=f"stage{stage}_conv{index}",
            )(x)
        x = keras.layers.MaxPooling2D(2, name=f"stage{stage}_pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = dense(x, HIDDEN_UNITS, name="dense1", activation="relu")
    if dropout_rate > 0:
        x = keras.layers.Dropout(dropout_rate, name="dropout")(x)
    x = dense(x, HIDDEN_UNITS, name="dense2", activation="relu")
    outputs = logits_head(x, num_classes, kernel_initializer="zeros", bias_initializer="zeros")
    return keras.Model(inputs, outputs, name=name)
