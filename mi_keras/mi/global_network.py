"""The global (logits) network of the MI estimators (docs/method.md, section 2)."""

from __future__ import annotations

import keras

from mi_keras.mi.initializers import IdentityUniform


@keras.saving.register_keras_serializable(package="mi_keras")
class GlobalNetwork(keras.layers.Layer):
    """Maps the classifier's logits to a global feature of width ``units``.

    The official code applies 1x1 convolutions to logits reshaped to ``[B, K, 1, 1]``, which
    is exactly a dense residual block: Dense(units, no bias) -> BN -> ReLU -> Dense(units),
    plus an identity-initialised linear shortcut, then LayerNorm (Zhou et al., ICML 2022).

    Example:
    ```python
    import numpy as np
    from mi_keras.mi import GlobalNetwork

    logits = np.random.default_rng(0).normal(size=(4, 10)).astype("float32")
    network = GlobalNetwork(units=64)  # the paper: 2048
    features = network(logits)  # [batch, 64]
    ```

    Args:
        units: feature width; must equal the paired `LocalEncoder`'s.
        **kwargs: forwarded to `keras.layers.Layer`.
    """

    def __init__(self, units: int = 2048, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, int) or units < 1:
            raise ValueError(f"`units` must be a positive integer; got {units!r}.")
        self.units = units
        self.dense_0 = keras.layers.Dense(units, use_bias=False, name="dense_0")
        self.norm = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name="norm")
        self.dense_1 = keras.layers.Dense(units, name="dense_1")
        self.shortcut = keras.layers.Dense(units, use_bias=False, kernel_initializer=IdentityUniform(), name="shortcut")
        self.layer_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="layer_norm")

    def build(self, input_shape):
        shape = tuple(input_shape)
        self.dense_0.build(shape)
        self.shortcut.build(shape)
        wide = (shape[0], self.units)
        self.norm.build(wide)
        self.dense_1.build(wide)
        self.layer_norm.build(wide)

    @property
    def num_classes(self) -> int | None:
        """The logits width this network was built for (None before it is built)."""
        return self.dense_0.kernel.shape[0] if self.dense_0.built else None

    def call(self, logits, training=None):
        hidden = keras.ops.relu(self.norm(self.dense_0(logits), training=training))
        return self.layer_norm(self.dense_1(hidden) + self.shortcut(logits))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units}
