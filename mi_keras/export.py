"""Exports a classifier as a TensorFlow Serving SavedModel that needs no mi_keras to run.

Layout: ``<base>/<name>/<integer version>/`` with ``saved_model.pb``, ``variables/`` and
``assets/metadata.json``. Signatures, all with the outputs ``logits``, ``probabilities``
(float32 ``[batch, classes]``) and ``class_ids`` (int64 ``[batch]``):

* ``serving_default``: ``images`` float32 ``[batch, H, W, C]`` in [0, 1].
* ``serving_uint8``: ``images`` uint8 ``[batch, H, W, C]`` in 0..255 (divided by 255).
* ``serving_encoded``: ``image_bytes`` string ``[batch]`` (PNG or JPEG, as TF Serving's REST
  API sends base64 ``{"b64": ...}``); images are resized to ``H x W``.

Each input is declared with its shape (``[None, H, W, C]``, ``[None]`` for bytes), as TF
Serving's ``/metadata`` reports it to clients. A malformed request (another rank, height,
width or channel count, or float values outside [0, 1]) fails with an ``InvalidArgument``
error naming what was expected and what came, checked inside the graph before the classifier
runs: TensorFlow does not enforce a signature's declared shape when it runs the graph, and a
wrong rank would otherwise reach a convolution kernel that aborts the whole process (and a TF
Serving server with it).
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import tempfile
from typing import Any

import keras
import tensorflow as tf

from mi_keras.models.step_guard import refuse_non_finite_weights

METADATA_FILE = "metadata.json"
# `export_classifier` writes a version in ``.<version>-<pid>-<random>`` and renames it when complete.
_STAGING_NAME = re.compile(r"^\.\d+-(\d+)-")


def next_version_dir(model_dir: str | os.PathLike) -> pathlib.Path:
    """``model_dir/<n+1>`` where ``n`` is the largest integer version already there (0 if none)."""
    model_dir = pathlib.Path(model_dir)
    versions = [int(path.name) for path in model_dir.glob("*") if path.is_dir() and path.name.isdigit()]
    return model_dir / str(max(versions, default=0) + 1)


def staging_dirs(model_dir: str | os.PathLike) -> list[tuple[pathlib.Path, int]]:
    """The unfinished exports under ``model_dir``, each with the id of the process writing it.

    A folder whose process is gone (killed mid-export) will never become a version; it is
    safe to remove. The version glob of TF Serving and `next_version_dir` ignore it either way.
    """
    model_dir = pathlib.Path(model_dir)
    found = []
    for path in sorted(model_dir.glob(".*")) if model_dir.is_dir() else []:
        match = _STAGING_NAME.match(path.name)
        if match and path.is_dir():
            found.append((path, int(match.group(1))))
    return found


def export_classifier(
    classifier: keras.Model,
    path: str | os.PathLike,
    metadata: dict[str, Any] | None = None,
    class_names: list[str] | None = None,
) -> pathlib.Path:
    """Writes ``classifier`` as a SavedModel at ``path`` (atomically) and returns the path.

    Example:
    ```python
    from mi_keras.data import load_dataset
    from mi_keras.export import export_classifier, next_version_dir
    from mi_keras.models import build_classifier

    _, info = load_dataset("digits", "test")
    model = build_classifier("small_cnn", info.image_shape, info.num_classes, padding="same")  # a trained classifier
    export_classifier(model, next_version_dir("saved_models/digits"),
                      metadata={"eps": 8 / 255}, class_names=info.class_names)
    ```

    Args:
        classifier: a built Keras model mapping [0, 1] images to logits.
        path: the version directory to create; it must not exist.
            A classifier with a NaN or infinite weight (a diverged run) is refused.
        metadata: JSON-serialisable facts stored in ``assets/metadata.json``.
        class_names: optional names, stored in the metadata.
    """
    path = pathlib.Path(path)
    if path.exists():
        raise ValueError(f"Export path {path} already exists; SavedModel versions are immutable.")
    inputs = getattr(classifier, "inputs", None)
    if not inputs:
        raise ValueError("`classifier` must be a built model with a known input shape (call it once or build it).")
    refuse_non_finite_weights(classifier, f"export {path}")
    height, width, channels = (int(size) for size in inputs[0].shape[1:])
    input_shape = (height, width, channels)
    archive = keras.export.ExportArchive()
    archive.track(classifier)

    def predict(images):
        logits = tf.cast(classifier(images, training=False), tf.float32)
        return {
            "logits": logits,
            "probabilities": tf.nn.softmax(logits),
            "class_ids": tf.argmax(logits, axis=-1),
        }

    def predict_float(images):
        return predict(_checked_images(images, input_shape, check_range=True))

    def predict_uint8(images):
        images = _checked_images(images, input_shape, check_range=False)
        return predict(tf.image.convert_image_dtype(images, tf.float32))  # as PNG pixels: x / 255

    def decode(image_bytes):
        image = tf.io.decode_image(image_bytes, channels=channels, expand_animations=False)
        image = tf.image.convert_image_dtype(image, tf.float32)
        return tf.image.resize(image, [height, width])

    def predict_encoded(image_bytes):
        image_bytes = tf.ensure_shape(image_bytes, [None], name="image_bytes")
        images = tf.map_fn(decode, image_bytes, fn_output_signature=tf.TensorSpec(input_shape, tf.float32))
        return predict(images)

    # Inputs are declared with their shape, as TF Serving's /metadata and clients expect. A
    # declared shape is not enforced when the graph runs (a rank-3 batch used to reach the
    # convolution and abort the process), so each function checks its input again inside the
    # graph (`_checked_images`); tests/test_export_serving.py sends malformed requests to it.
    image_spec = [None, height, width, channels]
    archive.add_endpoint("serving_default", predict_float, [tf.TensorSpec(image_spec, tf.float32, name="images")])
    archive.add_endpoint("serving_uint8", predict_uint8, [tf.TensorSpec(image_spec, tf.uint8, name="images")])
    archive.add_endpoint("serving_encoded", predict_encoded, [tf.TensorSpec([None], tf.string, name="image_bytes")])
    full_metadata = {
        "input_shape": [height, width, channels],
        "num_classes": int(classifier.outputs[0].shape[-1]),
        "class_names": list(class_names) if class_names is not None else None,
        **(metadata or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{path.name}-{os.getpid()}-", dir=path.parent))
    try:
        archive.write_out(str(staging / "model"), verbose=False)
        assets = staging / "model" / "assets"
        assets.mkdir(exist_ok=True)
        (assets / METADATA_FILE).write_text(json.dumps(full_metadata, indent=2, sort_keys=True, default=str))
        os.replace(staging / "model", path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def _checked_images(images: tf.Tensor, input_shape: tuple[int, int, int], check_range: bool) -> tf.Tensor:
    """``images`` once the graph has checked their shape and (``check_range``) their [0, 1] range.

    The shape check is ``EnsureShape``, whose error names the tensor ``images``, the shape
    that came and the one expected. Everything downstream, the range check included, reads
    its output: a data dependency, which graph rewrites cannot reorder (an assertion ordered
    by a control dependency only was overtaken by a shape-dependent op when tried).
    """
    images = tf.ensure_shape(images, [None, *input_shape], name="images")
    if not check_range:
        return images
    in_range = tf.reduce_all((images >= 0.0) & (images <= 1.0))  # False for NaN
    message = "serving_default: `images` must be float pixels in [0, 1] (0..255 pixels go to serving_uint8); got min"
    with tf.control_dependencies(
        [tf.debugging.Assert(in_range, [message, tf.reduce_min(images), "max", tf.reduce_max(images)])]
    ):
        return tf.identity(images)


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The ``assets/metadata.json`` of an exported model."""
    return json.loads((pathlib.Path(path) / "assets" / METADATA_FILE).read_text())
