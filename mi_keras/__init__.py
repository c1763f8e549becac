"""mi-keras: MIAT adversarial training (Zhou et al., ICML 2022) for Keras 3 / TensorFlow."""

__version__ = "0.1.0"

# Importing the package registers every serializable class (attacks, the augmentation layer,
# the MI estimator and its parts, the models) with Keras, so `keras.models.load_model` reads
# any .keras file mi_keras wrote after a plain `import mi_keras`.
from mi_keras import attacks, callbacks, data, mi, models  # noqa: E402,F401
