"""Models: adversarial training wrappers (standard AT, MIAT stage 1 and 2, WMIM) and the zoo."""

from mi_keras.models.adversarial_model import AdversarialModel
from mi_keras.models.architectures import (
    Architecture,
    build_classifier,
    preact_resnet18,
    resnet18,
    small_cnn,
    vgg19,
    wide_resnet,
)
from mi_keras.models.mi_defense_model import MIDefenseModel
from mi_keras.models.mi_estimator_trainer import MIEstimatorTrainer
from mi_keras.models.wmim_model import WMIMModel

__all__ = [
    "AdversarialModel",
    "Architecture",
    "build_classifier",
    "MIDefenseModel",
    "MIEstimatorTrainer",
    "preact_resnet18",
    "resnet18",
    "small_cnn",
    "vgg19",
    "wide_resnet",
    "WMIMModel",
]
