"""The checks every serializable mi_keras class gets, in one place (keras-hub's
``run_serialization_test`` / ``run_model_saving_test`` are the model).

- `check_config_round_trip`: ``cls.from_config(obj.get_config())`` rebuilds the same config,
  and so does the registered name through JSON (what a `.keras` file stores).
- `check_saved_outputs`: a layer or model saved as `.keras` (an attack or initializer: its
  JSON config) loads as the same class with the same config, weights and outputs.
- `FreshProcessLoads`: many saved objects loaded in ONE new process that imports only
  keras and mi_keras (a process pays TensorFlow's import once), outputs compared.

Call arguments are a list whose items are arrays, Keras models (saved beside the object for
the fresh process) or plain JSON values (an initializer's shape).
"""

from __future__ import annotations

import copy
import json
import os
import pathlib
import subprocess
import sys
import textwrap
from collections.abc import Sequence

import keras
import numpy as np

ENVIRONMENT = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def as_stored(config: dict) -> dict:
    """``config`` as a `.keras` file stores it: JSON, so tuples read back as lists."""
    return json.loads(json.dumps(config))


def check_config_round_trip(obj):
    """Asserts both routes from a config rebuild ``obj``'s config; returns the JSON-route copy."""
    config = obj.get_config()
    # A copy: Keras' functional from_config pops keys from the dict it is given.
    assert type(obj).from_config(copy.deepcopy(config)).get_config() == config
    restored = keras.saving.deserialize_keras_object(as_stored(keras.saving.serialize_keras_object(obj)))
    assert type(restored) is type(obj)
    assert as_stored(restored.get_config()) == as_stored(config)
    return restored


def outputs_of(obj, args: Sequence, kwargs: dict | None = None) -> np.ndarray:
    return keras.ops.convert_to_numpy(obj(*args, **(kwargs or {})))


def save(obj, path: pathlib.Path) -> pathlib.Path:
    """``obj`` as a `.keras` file (layers and models) or a `.json` config (anything else)."""
    if isinstance(obj, keras.layers.Layer):
        path = path.with_suffix(".keras")
        keras.saving.save_model(obj, path)
    else:
        path = path.with_suffix(".json")
        path.write_text(json.dumps(keras.saving.serialize_keras_object(obj)))
    return path


def load(path: pathlib.Path):
    if path.suffix == ".keras":
        return keras.saving.load_model(path)
    return keras.saving.deserialize_keras_object(json.loads(path.read_text()))


def check_saved_outputs(obj, args: Sequence, path: pathlib.Path, kwargs: dict | None = None):
    """Saves ``obj`` at ``path`` (suffix set by `save`), loads it and asserts the same class,
    config and outputs on ``args``; returns the loaded object."""
    loaded = load(save(obj, path))
    assert type(loaded) is type(obj)
    assert as_stored(loaded.get_config()) == as_stored(obj.get_config())
    for saved, restored in zip(getattr(obj, "weights", []), getattr(loaded, "weights", []), strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(restored), keras.ops.convert_to_numpy(saved))
    np.testing.assert_array_equal(outputs_of(loaded, args, kwargs), outputs_of(obj, args, kwargs))
    return loaded


class FreshProcessLoads:
    """Saves objects under ``folder``, then loads them all in one new process.

    Example:
    ```python
    loads = FreshProcessLoads(tmp_path)
    loads.add("estimator", estimator, [patterns, logits])
    results = loads.run()  # {"estimator": (type name, outputs)}
    ```
    """

    def __init__(self, folder: pathlib.Path):
        self.folder = pathlib.Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.manifest: dict[str, dict] = {}

    def add(self, name: str, obj, args: Sequence, kwargs: dict | None = None) -> None:
        path = save(obj, self.folder / name)
        self.manifest[name] = {
            "path": str(path),
            "args": [self._argument(f"{name}_arg{index}", value) for index, value in enumerate(args)],
            "kwargs": {key: self._argument(f"{name}_{key}", value) for key, value in (kwargs or {}).items()},
            "outputs": str(self.folder / f"{name}_outputs.npy"),
        }

    def _argument(self, stem: str, value) -> dict:
        if isinstance(value, keras.Model):
            return {"path": str(save(value, self.folder / stem))}
        if isinstance(value, np.ndarray):
            np.save(self.folder / f"{stem}.npy", value)
            return {"array": str(self.folder / f"{stem}.npy")}
        return {"value": value}

    def run(self) -> dict[str, tuple[str, np.ndarray]]:
        """``{name: (class name, outputs)}`` as the fresh process loaded and called them."""
        manifest_path = self.folder / "manifest.json"
        manifest_path.write_text(json.dumps(self.manifest))
        process = subprocess.run(
            [sys.executable, "-c", _FRESH_PROCESS_SCRIPT, str(manifest_path)],
            capture_output=True,
            text=True,
            timeout=600,
            env=ENVIRONMENT,
        )
        assert process.returncode == 0, process.stderr[-3000:]
        types = json.loads(process.stdout.splitlines()[-1])
        return {name: (types[name], np.load(entry["outputs"])) for name, entry in self.manifest.items()}


_FRESH_PROCESS_SCRIPT = textwrap.dedent(
    """
    import json, pathlib, sys

    import keras
    import numpy as np

    import mi_keras  # the only import of the package: it must register every class

    def load(path):
        path = pathlib.Path(path)
        if path.suffix == ".keras":
            return keras.saving.load_model(path)
        return keras.saving.deserialize_keras_object(json.loads(path.read_text()))

    def argument(spec):
        if "path" in spec:
            return load(spec["path"])
        if "array" in spec:
            return np.load(spec["array"])
        return spec["value"]

    types = {}
    for name, entry in json.loads(pathlib.Path(sys.argv[1]).read_text()).items():
        obj = load(entry["path"])
        args = [argument(spec) for spec in entry["args"]]
        kwargs = {key: argument(spec) for key, spec in entry["kwargs"].items()}
        np.save(entry["outputs"], keras.ops.convert_to_numpy(obj(*args, **kwargs)))
        types[name] = type(obj).__name__
    print(json.dumps(types))
    """
)
