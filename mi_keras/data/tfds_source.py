"""tensorflow_datasets image-classification datasets, read offline unless told to download."""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from mi_keras.data.data_error import DataError
from mi_keras.data.dataset_split import DatasetSplit
from mi_keras.data.source_data import SourceData

_LABEL_SCAN_BATCH = 8192


def read_tfds(
    name: str,
    split: DatasetSplit,
    data_dir: str | os.PathLike | None = None,
    download: bool = False,
) -> SourceData:
    """Reads one split of a prepared tensorflow_datasets dataset, such as ``"cifar10"``.

    Nothing is downloaded unless ``download=True``: offline, `tfds.load` retries for
    minutes before failing, so a dataset that is not prepared under ``data_dir`` fails at
    once with a message saying how to place it there.

    Args:
        name: the tfds name, optionally with a version (``"mnist:3.0.1"``).
        split: ``TRAIN`` or ``TEST`` (validation is carved from train by `load_dataset`).
        data_dir: the tfds data folder; tfds' default (``~/tensorflow_datasets`` or
            ``$TFDS_DATA_DIR``) when None.
        download: whether to download and prepare a dataset that is not prepared yet.
    """
    import tensorflow_datasets as tfds  # deferred: only this source needs it

    try:
        builder = tfds.builder(name, data_dir=os.fspath(data_dir) if data_dir is not None else None)
    except tfds.core.registered.DatasetNotFoundError as error:
        first_line = str(error).splitlines()[0]
        raise DataError(name, f"is not a tensorflow_datasets dataset ({first_line}).") from error
    if not builder.is_prepared():
        if not download:
            raise DataError(builder.data_dir, _not_prepared_message(builder.name, str(builder.version)))
        builder.download_and_prepare()
    image_key, label_key = _image_and_label_keys(builder)
    image_feature = builder.info.features[image_key]
    if np.dtype(image_feature.np_dtype) != np.uint8:
        raise DataError(builder.name, f"images have dtype {image_feature.np_dtype}; only uint8 images are read.")
    split_name = split.file_split.value
    known_splits = list(builder.info.splits.keys())
    if known_splits and split_name not in known_splits:
        raise DataError(builder.data_dir, f"has no {split_name!r} split; its splits are {known_splits}.")

    def stream() -> tf.data.Dataset:
        examples = builder.as_dataset(split=split_name, shuffle_files=False)
        return examples.map(lambda example: (example[image_key], example[label_key]))

    return SourceData(
        name=builder.name,
        origin=builder.data_dir,
        labels=_scan_labels(builder, split_name, image_key, label_key),
        stream=stream,
        image_shape=tuple(image_feature.shape),
        class_names=tuple(builder.info.features[label_key].names),
    )


def _not_prepared_message(name: str, version: str) -> str:
    return (
        f"tensorflow_datasets dataset {name!r} (version {version}) is not prepared here, and "
        "nothing is downloaded unless load_dataset(..., download=True) is passed (offline, "
        "tfds would retry for minutes). To place it: on a machine with internet run "
        f"`tfds build {name} --data_dir=DIR` (or tfds.load({name!r}, data_dir='DIR')), then copy "
        f"DIR/{name}/{version} to this folder, or pass data_dir=DIR where it already is. Offline "
        "alternatives: the 'idx:', 'npz:', 'npy:', 'folder:' and 'digits' sources."
    )


def _image_and_label_keys(builder) -> tuple[str, str]:
    """The image and label features: the supervised keys, else the only Image and ClassLabel."""
    import tensorflow_datasets as tfds

    features = builder.info.features
    keys = builder.info.supervised_keys
    if not keys:
        images = [key for key, feature in features.items() if isinstance(feature, tfds.features.Image)]
        labels = [key for key, feature in features.items() if isinstance(feature, tfds.features.ClassLabel)]
        keys = (images[0], labels[0]) if len(images) == 1 and len(labels) == 1 else None
    if (
        not keys
        or len(keys) != 2
        or not isinstance(features[keys[0]], tfds.features.Image)
        or not isinstance(features[keys[1]], tfds.features.ClassLabel)
    ):
        raise DataError(
            builder.name,
            f"is not an image-classification dataset (supervised keys "
            f"{builder.info.supervised_keys}, features {list(features)}).",
        )
    return keys[0], keys[1]


def _scan_labels(builder, split_name: str, image_key: str, label_key: str) -> np.ndarray:
    """All labels of a split, in file order, without decoding a single image."""
    import tensorflow_datasets as tfds

    examples = builder.as_dataset(
        split=split_name,
        shuffle_files=False,
        decoders={image_key: tfds.decode.SkipDecoding()},
    )
    batches = examples.map(lambda example: example[label_key]).batch(_LABEL_SCAN_BATCH)
    return np.concatenate([batch.numpy() for batch in batches] or [np.zeros([0], np.int64)])
