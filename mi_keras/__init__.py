"""mi-keras: MIAT adversarial training (Zhou et al., ICML 2022) for Keras 3 / TensorFlow."""

__version__ = "0.1.0"
