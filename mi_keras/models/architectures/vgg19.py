"""VGG-19 with BatchNorm, CIFAR variant (Simonyan and Zisserman, 2015; kuangliu/pytorch-cifar)."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from mi_keras.models.architectures.building_blocks import (
    batch_norm_relu,
    he_normal_fan_out,
    image_input,
    logits_head,
    validate_num_classes,
)

# Configuration "E" of the VGG paper: the filters of each convolution, one tuple per stage;
# every stage ends with a 2x2 max-pool.
VGG19_STAGES = ((64, 64), (128, 128), (256,) * 4, (512,) * 4, (512,) * 4)


def vgg19(input_shape: Sequence[int], num_classes: int, *, name: str = "vgg19") -> keras.Model:
    """Builds the CIFAR VGG-19 with BatchNorm; it returns logits.

    Sixteen 3x3 convolutions (configuration "E", with bias) each followed by BatchNorm and
    ReLU, a 2x2 max-pool after each of the five stages, then a single linear layer on the 512
    features. This is kuangliu's ``VGG('VGG19')`` (20,040,522 trainable parameters for 10
    classes), the network the official MIAT code imports as ``VGGNet19`` and that the paper
    trains with standard adversarial training as its black-box surrogate.

    Two choices make it work on any input size while staying identical on 32x32 inputs (the
    feature map is 1x1 there): max-pools use ``"same"`` padding (a 1x1 map stays 1x1; on even
    sizes this equals PyTorch's floor pooling), and the 512 features come from global average
    pooling rather than a flatten.

    Reference: Simonyan and Zisserman, "Very Deep Convolutional Networks for Large-Scale
    Image Recognition", ICLR 2015.

    Example:
    ```python
    import numpy as np
    from mi_keras.models.architectures import vgg19

    images = np.zeros((2, 32, 32, 3), "float32")
    model = vgg19(input_shape=(32, 32, 3), num_classes=10)
    logits = model(images)  # [batch, 10]
    ```

    Args:
        input_shape: ``(height, width, channels)``.
        num_classes: number of logits (>= 2).
        name: the model's name.
    """
    num_classes = validate_num_classes(num_classes)
    inputs = image_input(input_shape)
    x = inputs
    for stage, stage_filters in enumerate(VGG19_STAGES, start=1):
        for index, filters in enumerate(stage_filters, start=1):
            layer_name = f"stage{stage}_conv{index}"
            x = keras.layers.Conv2D(
                filters,
                3,
                padding="same",
                kernel_initializer=he_normal_fan_out(),
                name=layer_name,
            )(x)
            x = batch_norm_relu(x, layer_name)
        x = keras.layers.MaxPooling2D(2, padding="same", name=f"stage{stage}_pool")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return keras.Model(inputs, logits_head(x, num_classes), name=name)
