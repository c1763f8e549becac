"""ResNet-18, the CIFAR variant (He et al., 2016; kuangliu/pytorch-cifar)."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from mi_keras.models.architectures.building_blocks import (
    batch_norm,
    batch_norm_relu,
    conv2d,
    image_input,
    logits_head,
    validate_num_classes,
)

STAGE_FILTERS = (64, 128, 256, 512)
STAGE_STRIDES = (1, 2, 2, 2)
BLOCKS_PER_STAGE = 2


def resnet18(input_shape: Sequence[int], num_classes: int, *, name: str = "resnet18") -> keras.Model:
    """Builds the CIFAR ResNet-18 classifier; it returns logits.

    The stem is a 3x3 stride-1 convolution with 64 filters, BatchNorm and ReLU, with no
    max-pool; four stages of two BasicBlocks (64, 128, 256, 512 filters, stride 2 from the
    second stage on, a 1x1 convolution + BatchNorm shortcut where the shape changes); global
    average pooling and a linear layer. Convolutions have no bias. This is kuangliu's
    ``ResNet18()`` (11,173,962 trainable parameters for 10 classes), the network MIAT trains;
    the official MIAT code's ``resnet_new`` differs only by an unpadded stem (32 -> 30 pixels).

    Any input size works (global pooling); 32x32 reproduces the reference exactly. Inputs
    are images in [0, 1] with no normalisation layer.

    Reference: He et al., "Deep Residual Learning for Image Recognition", CVPR 2016.

    Example:
    ```python
    import numpy as np
    from mi_keras.models.architectures import resnet18

    images = np.zeros((2, 32, 32, 3), "float32")
    model = resnet18(input_shape=(32, 32, 3), num_classes=10)
    logits = model(images)  # [batch, 10]
    ```

    Args:
        input_shape: ``(height, width, channels)``.
        num_classes: number of logits (>= 2).
        name: the model's name.
    """
    num_classes = validate_num_classes(num_classes)
    inputs = image_input(input_shape)
    x = conv2d(inputs, STAGE_FILTERS[0], 3, name="stem_conv")
    x = batch_norm_relu(x, "stem")
    for stage, (filters, stride) in enumerate(zip(STAGE_FILTERS, STAGE_STRIDES), start=1):
        for block in range(1, BLOCKS_PER_STAGE + 1):
            x = _basic_block(x, filters, stride if block == 1 else 1, name=f"stage{stage}_block{block}")
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return keras.Model(inputs, logits_head(x, num_classes), name=name)


def _basic_block(x, filters: int, strides: int, name: str):
    """conv-BN-ReLU-conv-BN plus the shortcut, then ReLU (the post-activation block)."""
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = conv2d(x, filters, 1, name=f"{name}_shortcut_conv", strides=strides)
        shortcut = batch_norm(shortcut, f"{name}_shortcut_bn")
    residual = conv2d(x, filters, 3, name=f"{name}_conv1", strides=strides)
    residual = batch_norm_relu(residual, f"{name}_1")
    residual = conv2d(residual, filters, 3, name=f"{name}_conv2")
    residual = batch_norm(residual, f"{name}_2_bn")
    x = keras.layers.Add(name=f"{name}_add")([residual, shortcut])
    return keras.layers.ReLU(name=f"{name}_out")(x)
