"""The local (pattern) encoder of the MI estimators (docs/method.md, section 2)."""

from __future__ import annotations

import keras
import tensorflow as tf

from mi_keras.mi.initializers import IdentityUniform


@keras.saving.register_keras_serializable(package="mi_keras")
class LocalEncoder(keras.layers.Layer):
    """Encodes a pattern (the image ``x`` or the noise ``x_adv - x``) into local features.

    conv(64, 4, s2) -> BN -> ReLU -> conv(128, 4, s2) -> BN -> ReLU, then a 1x1 residual block
    to ``units`` channels and a LayerNorm over channels at each position. The map shrinks by
    4: 8x8 positions for 32x32 inputs, 7x7 for 28x28, 2x2 for 8x8. This is the local-DIM
    encoder used by MIAT (Zhou et al., ICML 2022) via Zhu et al. (2020).

    Example:
    ```python
    import numpy as np
    from mi_keras.mi import LocalEncoder

    images = np.random.default_rng(0).random((4, 8, 8, 1), dtype=np.float32)
    encoder = LocalEncoder(units=64)  # the paper: 2048
    features = encoder(images)  # [batch, positions, 64]
    ```

    Args:
        units: feature width (2048 in the paper).
        **kwargs: forwarded to `keras.layers.Layer`.
    """

    def __init__(self, units: int = 2048, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, int) or units < 1:
            raise ValueError(f"`units` must be a positive integer; got {units!r}.")
        self.units = units
        self.conv_0 = keras.layers.Conv2D(64, 4, strides=2, padding="same", use_bias=False, name="conv_0")
        self.norm_0 = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name="norm_0")
        self.conv_1 = keras.layers.Conv2D(128, 4, strides=2, padding="same", use_bias=False, name="conv_1")
        self.norm_1 = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name="norm_1")
        self.block_conv_0 = keras.layers.Conv2D(units, 1, use_bias=False, name="block_conv_0")
        self.block_norm = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name="block_norm")
        self.block_conv_1 = keras.layers.Conv2D(units, 1, name="block_conv_1")
        self.shortcut = keras.layers.Conv2D(
            units, 1, use_bias=False, kernel_initializer=IdentityUniform(), name="shortcut"
        )
        self.layer_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="layer_norm")

    def build(self, input_shape):
        shape = tuple(input_shape)
        self.conv_0.build(shape)
        shape = self.conv_0.compute_output_shape(shape)
        self.norm_0.build(shape)
        self.conv_1.build(shape)
        shape = self.conv_1.compute_output_shape(shape)
        self.norm_1.build(shape)
        self.block_conv_0.build(shape)
        self.shortcut.build(shape)
        wide = self.block_conv_0.compute_output_shape(shape)
        self.block_norm.build(wide)
        self.block_conv_1.build(wide)
        self.layer_norm.build(wide)

    def call(self, pattern, training=None):
        hidden = keras.ops.relu(self.norm_0(self.conv_0(pattern), training=training))
        hidden = keras.ops.relu(self.norm_1(self.conv_1(hidden), training=training))
        block = keras.ops.relu(self.block_norm(self.block_conv_0(hidden), training=training))
        features = self.layer_norm(self.block_conv_1(block) + self.shortcut(hidden))
        return tf.reshape(features, [tf.shape(features)[0], -1, self.units])

    def compute_output_shape(self, input_shape):
        height, width = input_shape[1], input_shape[2]
        positions = None if height is None or width is None else -(-height // 4) * -(-width // 4)
        return (input_shape[0], positions, self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units}
