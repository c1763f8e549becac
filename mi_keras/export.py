"""Exports a classifier as a TensorFlow Serving SavedModel that needs no mi_keras to run.

Layout: ``<base>/<name>/<integer version>/`` with ``saved_model.pb``, ``variables/`` and
``assets/metadata.json``. Signatures:

* ``serving_default``: ``images`` float32 ``[batch, H, W, C]`` in [0, 1] ->
  ``logits``, ``probabilities`` (float32 ``[batch, classes]``) and ``class_ids`` (int64 ``[batch]``).
* ``serving_encoded``: ``image_bytes`` string ``[batch]`` (PNG or JPEG, as TF Serving's REST
  API sends base64 ``{"b64": ...}``) -> the same outputs; images are resized to ``H x W``.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import tempfile
from typing import Any

import keras
import tensorflow as tf

METADATA_FILE = "metadata.json"


def next_version_dir(model_dir: str | os.PathLike) -> pathlib.Path:
    """``model_dir/<n+1>`` where ``n`` is the largest integer version already there (0 if none)."""
    model_dir = pathlib.Path(model_dir)
    versions = [int(path.name) for path in model_dir.glob("*") if path.is_dir() and path.name.isdigit()]
    return model_dir / str(max(versions, default=0) + 1)


def export_classifier(
    classifier: keras.Model,
    path: str | os.PathLike,
    metadata: dict[str, Any] | None = None,
    class_names: list[str] | None = None,
) -> pathlib.Path:
    """Writes ``classifier`` as a SavedModel at ``path`` (atomically) and returns the path.

    Example:
    ```python
    export_classifier(model.classifier, next_version_dir("saved_models/cifar10"),
                      metadata={"eps": 8 / 255}, class_names=info.class_names)
    ```

    Args:
        classifier: a built Keras model mapping [0, 1] images to logits.
        path: the version directory to create; it must not exist.
        metadata: JSON-serialisable facts stored in ``assets/metadata.json``.
        class_names: optional names, stored in the metadata.
    """
    path = pathlib.Path(path)
    if path.exists():
        raise ValueError(f"Export path {path} already exists; SavedModel versions are immutable.")
    inputs = getattr(classifier, "inputs", None)
    if not inputs:
        raise ValueError("`classifier` must be a built model with a known input shape (call it once or build it).")
    height, width, channels = (int(size) for size in inputs[0].shape[1:])
    archive = keras.export.ExportArchive()
    archive.track(classifier)

    def predict(images):
        logits = tf.cast(classifier(images, training=False), tf.float32)
        return {
            "logits": logits,
            "probabilities": tf.nn.softmax(logits),
            "class_ids": tf.argmax(logits, axis=-1),
        }

    def decode(image_bytes):
        image = tf.io.decode_image(image_bytes, channels=channels, expand_animations=False)
        image = tf.image.convert_image_dtype(image, tf.float32)
        return tf.image.resize(image, [height, width])

    def predict_encoded(image_bytes):
        images = tf.map_fn(decode, image_bytes, fn_output_signature=tf.TensorSpec([height, width, channels], tf.float32))
        return predict(images)

    archive.add_endpoint("serving_default", predict, [tf.TensorSpec([None, height, width, channels], tf.float32, name="images")])
    archive.add_endpoint("serving_encoded", predict_encoded, [tf.TensorSpec([None], tf.string, name="image_bytes")])
    full_metadata = {
        "input_shape": [height, width, channels],
        "num_classes": int(classifier.outputs[0].shape[-1]),
        "class_names": list(class_names) if class_names is not None else None,
        **(metadata or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
        archive.write_out(str(staging / "model"), verbose=False)
        assets = staging / "model" / "assets"
        assets.mkdir(exist_ok=True)
        (assets / METADATA_FILE).write_text(json.dumps(full_metadata, indent=2, sort_keys=True, default=str))
        os.replace(staging / "model", path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The ``assets/metadata.json`` of an exported model."""
    return json.loads((pathlib.Path(path) / "assets" / METADATA_FILE).read_text())
