"""The model zoo: Keras functional classifiers that map images in [0, 1] to logits.

Each builder is ``builder(input_shape, num_classes, **options) -> keras.Model`` and matches the
trainable-parameter count of its PyTorch reference; `build_classifier` picks one by name.
"""

from mi_keras.models.architectures.architecture import Architecture, build_classifier
from mi_keras.models.architectures.preact_resnet18 import preact_resnet18
from mi_keras.models.architectures.resnet18 import resnet18
from mi_keras.models.architectures.small_cnn import small_cnn
from mi_keras.models.architectures.vgg19 import vgg19
from mi_keras.models.architectures.wide_resnet import wide_resnet

__all__ = [
    "Architecture",
    "build_classifier",
    "preact_resnet18",
    "resnet18",
    "small_cnn",
    "vgg19",
    "wide_resnet",
]
