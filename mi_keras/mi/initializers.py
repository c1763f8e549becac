"""The shortcut initializer of the DIM estimators (Hjelm et al., 2018; Zhu et al., 2020)."""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="mi_keras")
class IdentityUniform(keras.initializers.Initializer):
    """Uniform(-limit, limit) weights with ones on the input->output diagonal.

    The official estimators initialise their linear shortcut this way, so that at the start
    each of the first ``min(in, out)`` output channels copies one input channel.

    Example:
    ```python
    import keras
    from mi_keras.mi.initializers import IdentityUniform

    layer = keras.layers.Dense(2048, use_bias=False, kernel_initializer=IdentityUniform())
    ```
    """

    def __init__(self, limit: float = 0.01, seed: int | None = None):
        self.limit = limit
        self.seed = seed

    def __call__(self, shape, dtype=None):
        dtype = dtype or "float32"
        fan_in, fan_out = shape[-2], shape[-1]
        noise = keras.random.uniform(shape, -self.limit, self.limit, dtype=dtype, seed=self.seed)
        identity = tf.reshape(tf.eye(fan_in, fan_out, dtype=dtype), shape)
        return tf.where(identity > 0, identity, noise)

    def get_config(self):
        return {"limit": self.limit, "seed": self.seed}
