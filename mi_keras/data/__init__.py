"""Data sources for mi-keras: one `load_dataset` call for every source, the same contract.

Every dataset yields ``(image float32 in [0, 1], NHWC; label int32)``. Sources:
tensorflow_datasets names, MNIST-format IDX folders, ``.npz`` archives, the official MIAT
code's ``.npy`` pairs, image folders and scikit-learn's bundled 8x8 digits (no file needed).
"""

from mi_keras.data.augment_policy import AugmentPolicy
from mi_keras.data.data_error import DataError
from mi_keras.data.dataset_info import DatasetInfo
from mi_keras.data.dataset_source import DatasetSource
from mi_keras.data.dataset_spec import DatasetSpec
from mi_keras.data.dataset_split import DatasetSplit
from mi_keras.data.image_augmentation import ImageAugmentation
from mi_keras.data.load_dataset import load_dataset

__all__ = [
    "AugmentPolicy",
    "DataError",
    "DatasetInfo",
    "DatasetSource",
    "DatasetSpec",
    "DatasetSplit",
    "ImageAugmentation",
    "load_dataset",
]
