"""Where a dataset comes from: the prefix of a dataset spec such as ``"idx:/data/mnist"``."""

from __future__ import annotations

from mi_keras.enums import ParsableEnum


class DatasetSource(ParsableEnum):
    """The kinds of data `mi_keras.data.load_dataset` reads.

    ``DatasetSource.parse`` accepts the value or the member name in any case, so both
    ``"folder"`` and ``"image_folder"`` give `IMAGE_FOLDER`.
    """

    TFDS = "tfds"  # a tensorflow_datasets name, prepared under `data_dir`
    IDX = "idx"  # a folder of MNIST-format IDX files (gzipped or not)
    NPZ = "npz"  # one .npz file: x/y, or x_train/y_train/x_test/y_test
    NPY = "npy"  # a folder of {train,test}_{images,labels}.npy (the official MIAT layout)
    IMAGE_FOLDER = "folder"  # one sub-folder per class (optionally under train/ and test/)
    TINY_IMAGENET = "tiny_imagenet"  # train/<wnid>/images/, val/ with val_annotations.txt
    DIGITS = "digits"  # scikit-learn's bundled 8x8 digits: needs no file

    @property
    def reads_files(self) -> bool:
        """Whether the spec names a path (resolved against ``data_dir`` when relative)."""
        return self not in (DatasetSource.TFDS, DatasetSource.DIGITS)
