"""Pre-activation ResNet-18, the CIFAR variant (He et al., 2016b; kuangliu/pytorch-cifar)."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from mi_keras.models.architectures.building_blocks import (
    batch_norm_relu,
    conv2d,
    image_input,
    logits_head,
    validate_num_classes,
)
from mi_keras.models.architectures.resnet18 import (
    BLOCKS_PER_STAGE,
    STAGE_FILTERS,
    STAGE_STRIDES,
)


def preact_resnet18(
    input_shape: Sequence[int],
    num_classes: int,
    *,
    final_activation: bool = False,
    name: str = "preact_resnet18",
) -> keras.Model:
    """Builds the CIFAR pre-activation ResNet-18 classifier; it returns logits.

    A 3x3 stride-1 stem convolution (64 filters, no BatchNorm), then four stages of two
    PreActBlocks (BN-ReLU-conv-BN-ReLU-conv plus the shortcut; where the shape changes the
    shortcut is a bias-free 1x1 convolution of the pre-activated input), global average
    pooling and a linear layer. With the default ``final_activation=False`` this is
    kuangliu's ``PreActResNet18()``: 11,171,146 trainable parameters for 10 classes.
    ``final_activation=True`` adds the BN-ReLU before pooling used by the PreActResNet-18 of
    Wong et al. (2020) and Rice et al. (2020): 11,172,170 parameters.

    Reference: He et al., "Identity Mappings in Deep Residual Networks", ECCV 2016.

    Example:
    ```python
    import numpy as np
    from mi_keras.models.architectures import preact_resnet18

    images = np.zeros((2, 32, 32, 3), "float32")
    model = preact_resnet18(input_shape=(32, 32, 3), num_classes=10)
    logits = model(images)  # [batch, 10]
    ```

    Args:
        input_shape: ``(height, width, channels)``.
        num_classes: number of logits (>= 2).
        final_activation: add BatchNorm + ReLU after the last stage.
        name: the model's name.
    """
    num_classes = validate_num_classes(num_classes)
    inputs = image_input(input_shape)
    x = conv2d(inputs, STAGE_FILTERS[0], 3, name="stem_conv")
    for stage, (filters, stride) in enumerate(zip(STAGE_FILTERS, STAGE_STRIDES), start=1):
        for block in range(1, BLOCKS_PER_STAGE + 1):
            x = _preact_block(x, filters, stride if block == 1 else 1, name=f"stage{stage}_block{block}")
    if final_activation:
        x = batch_norm_relu(x, "final")
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return keras.Model(inputs, logits_head(x, num_classes), name=name)


def _preact_block(x, filters: int, strides: int, name: str):
    preactivated = batch_norm_relu(x, f"{name}_1")
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = conv2d(preactivated, filters, 1, name=f"{name}_shortcut_conv", strides=strides)
    residual = conv2d(preactivated, filters, 3, name=f"{name}_conv1", strides=strides)
    residual = batch_norm_relu(residual, f"{name}_2")
    residual = conv2d(residual, filters, 3, name=f"{name}_conv2")
    return keras.layers.Add(name=f"{name}_add")([residual, shortcut])
