"""WideResNet as used by TRADES, MART and the official MIAT code (Zagoruyko and Komodakis, 2016)."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from mi_keras.models.architectures.building_blocks import (
    batch_norm_relu,
    conv2d,
    image_input,
    is_integer,
    logits_head,
    validate_num_classes,
)

GROUP_BASE_FILTERS = (16, 32, 64)
GROUP_STRIDES = (1, 2, 2)
STEM_FILTERS = 16


def wide_resnet(
    input_shape: Sequence[int],
    num_classes: int,
    *,
    depth: int = 34,
    widen_factor: int = 10,
    dropout_rate: float = 0.0,
    name: str | None = None,
) -> keras.Model:
    """Builds a WRN-``depth``-``widen_factor`` classifier; it returns logits.

    A 3x3 stem convolution with 16 filters, three groups of ``(depth - 4) / 6`` pre-activation
    BasicBlocks with ``16k, 32k, 64k`` filters (k = ``widen_factor``; strides 1, 2, 2), a final
    BN-ReLU, global average pooling and a linear layer. As in the TRADES ``WideResNet``: a
    block whose width changes pre-activates its input once and feeds it to both its first
    convolution and its 1x1 shortcut convolution; other blocks keep the raw input as
    shortcut; dropout sits between the two convolutions; convolutions have no bias and are
    initialised N(0, 2 / (9 * out_channels)); the linear bias starts at zero.

    WRN-34-10 (the defaults) has 46,160,474 trainable parameters for 10 classes, like
    TRADES' and MART's ``WideResNet(34, 10, 10)`` without its unused ``sub_block1`` (the
    official MIAT ``wideresnet_new`` keeps that dead block and counts 48.26 M).

    Reference: Zagoruyko and Komodakis, "Wide Residual Networks", BMVC 2016.

    Example:
    ```python
    import numpy as np
    from mi_keras.models.architectures import wide_resnet

    images = np.zeros((2, 32, 32, 3), "float32")
    model = wide_resnet(input_shape=(32, 32, 3), num_classes=10, depth=10, widen_factor=1)  # paper: 34, 10
    logits = model(images)  # [batch, 10]
    ```

    Args:
        input_shape: ``(height, width, channels)``.
        num_classes: number of logits (>= 2).
        depth: total depth; ``depth - 4`` must be a positive multiple of 6 (10, 16, 22, 28,
            34, 40, ...).
        widen_factor: width multiplier k (>= 1).
        dropout_rate: dropout between the two convolutions of each block, in [0, 1).
        name: the model's name; defaults to ``wide_resnet_{depth}_{widen_factor}``.
    """
    num_classes = validate_num_classes(num_classes)
    blocks_per_group = _blocks_per_group(depth)
    if not is_integer(widen_factor, minimum=1):
        raise ValueError(f"`widen_factor` must be an integer >= 1; got {widen_factor!r}.")
    if not 0.0 <= dropout_rate < 1.0:
        raise ValueError(f"`dropout_rate` must be in [0, 1); got {dropout_rate!r}.")
    inputs = image_input(input_shape)
    x = conv2d(inputs, STEM_FILTERS, 3, name="stem_conv")
    for group, (base, stride) in enumerate(zip(GROUP_BASE_FILTERS, GROUP_STRIDES), start=1):
        for block in range(1, blocks_per_group + 1):
            x = _wide_block(
                x,
                base * int(widen_factor),
                stride if block == 1 else 1,
                dropout_rate,
                name=f"group{group}_block{block}",
            )
    x = batch_norm_relu(x, "final")
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = logits_head(x, num_classes, bias_initializer="zeros")
    return keras.Model(inputs, outputs, name=name or f"wide_resnet_{depth}_{widen_factor}")


def _blocks_per_group(depth: int) -> int:
    if not is_integer(depth, minimum=10) or (depth - 4) % 6:
        raise ValueError(
            "`depth` must be an integer with depth - 4 a positive multiple of 6 "
            f"(10, 16, 22, 28, 34, ...); got {depth!r}."
        )
    return int(depth - 4) // 6


def _wide_block(x, filters: int, strides: int, dropout_rate: float, name: str):
    preactivated = batch_norm_relu(x, f"{name}_1")
    if x.shape[-1] == filters:
        shortcut = x
    else:
        shortcut = conv2d(preactivated, filters, 1, name=f"{name}_shortcut_conv", strides=strides)
    residual = conv2d(preactivated, filters, 3, name=f"{name}_conv1", strides=strides)
    residual = batch_norm_relu(residual, f"{name}_2")
    if dropout_rate > 0:
        residual = keras.layers.Dropout(dropout_rate, name=f"{name}_dropout")(residual)
    residual = conv2d(residual, filters, 3, name=f"{name}_conv2")
    return keras.layers.Add(name=f"{name}_add")([residual, shortcut])
