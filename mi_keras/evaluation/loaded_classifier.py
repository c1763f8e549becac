"""Any classifier the suite can attack: a Keras model, a ``.keras`` file or a SavedModel."""

from __future__ import annotations

import os
from typing import Any

import keras
import tensorflow as tf

from mi_keras.enums import ParsableEnum


class ModelKind(ParsableEnum):
    """Where a classifier came from."""

    KERAS = "keras"  # an in-memory Keras model or any callable returning logits
    KERAS_FILE = "keras_file"  # a `.keras` archive
    SAVED_MODEL = "saved_model"  # a SavedModel directory (ours or anyone's)


class LoadedClassifier:
    """A differentiable callable ``classifier(x, training=False) -> logits`` plus its origin.

    SavedModels are called through a signature (``serving_default`` unless told otherwise),
    which stays differentiable after `tf.saved_model.load`, so white-box attacks work on
    exported models with no project code. The signature must return logits (not
    probabilities): the cross-entropy and margin losses of the attacks assume logits.

    Example:
    ```python
    import numpy as np
    from mi_keras.data import load_dataset
    from mi_keras.models import build_classifier

    test, info = load_dataset("digits", "test", batch_size=None, take=32)  # tiny: a smoke run
    x, y = (np.stack(part) for part in zip(*test.as_numpy_iterator()))
    model = build_classifier("small_cnn", info.image_shape, info.num_classes, padding="same")
    from mi_keras.export import export_classifier, next_version_dir

    export_dir = export_classifier(model, next_version_dir("saved_models/digits"))  # saved_models/digits/1
    from mi_keras.evaluation import LoadedClassifier

    classifier = LoadedClassifier.load(export_dir)  # output "logits"
    logits = classifier(x)
    # A SavedModel from elsewhere: LoadedClassifier.load("their_model/", output_key="dense_3")
    ```

    Args:
        model: the callable returning logits.
        kind: a `ModelKind`.
        source: the path it was loaded from, or a description of an in-memory model.
        input_key: the signature input name (SavedModels only).
        output_key: the signature output name (SavedModels only).
    """

    def __init__(
        self,
        model,
        kind: ModelKind,
        source: str,
        input_key: str | None = None,
        output_key: str | None = None,
    ):
        self.model = model
        self.kind = ModelKind.parse(kind, "kind")
        self.source = source
        self.input_key = input_key
        self.output_key = output_key

    @classmethod
    def load(
        cls,
        model_or_path,
        output_key: str | None = None,
        input_key: str | None = None,
        signature: str = "serving_default",
    ) -> LoadedClassifier:
        """Wraps a model, or loads a ``.keras`` file or a SavedModel directory.

        Args:
            model_or_path: a Keras model (or `LoadedClassifier`, returned as is), a path to
                a ``.keras`` file, or a SavedModel directory.
            output_key: the signature output holding the logits. Defaults to the only
                output, else ``"logits"`` (the key of mi-keras exports).
            input_key: the signature input holding the images; defaults to the only input.
            signature: the SavedModel signature to call.
        """
        if isinstance(model_or_path, LoadedClassifier):
            return model_or_path
        if not isinstance(model_or_path, (str, os.PathLike)):
            if not callable(model_or_path):
                raise ValueError(
                    "`model_or_path` must be a Keras model, a `.keras` path or a SavedModel "
                    f"directory; got {type(model_or_path).__name__}."
                )
            name = getattr(model_or_path, "name", type(model_or_path).__name__)
            return cls(model_or_path, ModelKind.KERAS, f"in-memory model {name!r}")
        path = os.fspath(model_or_path)
        if os.path.isdir(path):
            return cls._load_saved_model(path, output_key, input_key, signature)
        if path.endswith(".keras") and os.path.isfile(path):
            return cls(keras.models.load_model(path), ModelKind.KERAS_FILE, path)
        raise ValueError(f"`model_or_path` must be an existing `.keras` file or SavedModel directory; got {path!r}.")

    @classmethod
    def _load_saved_model(cls, path, output_key, input_key, signature_name):
        loaded = tf.saved_model.load(path)
        if signature_name not in loaded.signatures:
            available = ", ".join(sorted(loaded.signatures)) or "none"
            raise ValueError(f"SavedModel {path!r} has no signature {signature_name!r}; available: {available}.")
        signature = loaded.signatures[signature_name]
        inputs = sorted(signature.structured_input_signature[1])
        outputs = sorted(signature.structured_outputs)
        input_key = _pick_key("input_key", input_key, inputs, default=None, path=path)
        output_key = _pick_key("output_key", output_key, outputs, default="logits", path=path)

        def call(images, training=False):
            return signature(**{input_key: tf.convert_to_tensor(images, tf.float32)})[output_key]

        classifier = cls(call, ModelKind.SAVED_MODEL, path, input_key, output_key)
        # Keep the loaded object alive: the signature's variables belong to it.
        classifier.saved_model = loaded
        return classifier

    def __call__(self, x, training=False) -> tf.Tensor:
        if self.kind == ModelKind.SAVED_MODEL:
            return self.model(x)
        return self.model(x, training=training)

    @property
    def name(self) -> str:
        if self.kind == ModelKind.KERAS:
            return getattr(self.model, "name", type(self.model).__name__)
        path = os.path.normpath(self.source)
        name = os.path.basename(path)
        if name.isdigit():  # a TF Serving version folder: saved_models/<name>/<version>
            return f"{os.path.basename(os.path.dirname(path))}/{name}"
        return name

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "kind": self.kind.value,
            "name": self.name,
            "input_key": self.input_key,
            "output_key": self.output_key,
        }


def _pick_key(argument, value, available, default, path):
    if value is not None:
        if value not in available:
            raise ValueError(
                f"`{argument}` {value!r} is not in the signature of {path!r}; available: {', '.join(available)}."
            )
        return value
    if len(available) == 1:
        return available[0]
    if default in available:
        return default
    raise ValueError(
        f"The signature of {path!r} has several entries ({', '.join(available)}); "
        f"name the one to use with `{argument}`."
    )
