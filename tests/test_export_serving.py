"""The exported SavedModel's signatures: malformed requests fail cleanly, never abort the server.

Every request runs in a subprocess that never imports mi_keras (as TF Serving would load the
model): a TensorFlow CHECK failure aborts that process, which fails the test instead of
killing pytest.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from mi_keras.export import export_classifier, read_metadata

# Each case: a name, the signature, the Python expression of its input, and what the error must say.
MALFORMED = [
    (
        "rank 3",
        "serving_default",
        "np.zeros((2, 8, 8), np.float32)",
        "Shape of tensor images [2,8,8] is not compatible with expected shape [?,8,8,1]",
    ),
    (
        "rank 5",
        "serving_default",
        "np.zeros((2, 8, 8, 1, 1), np.float32)",
        "Shape of tensor images [2,8,8,1,1] is not compatible with expected shape [?,8,8,1]",
    ),
    (
        "height",
        "serving_default",
        "np.zeros((2, 9, 8, 1), np.float32)",
        "Shape of tensor images [2,9,8,1] is not compatible with expected shape [?,8,8,1]",
    ),
    (
        "width",
        "serving_default",
        "np.zeros((2, 8, 6, 1), np.float32)",
        "Shape of tensor images [2,8,6,1] is not compatible with expected shape [?,8,8,1]",
    ),
    (
        "channels",
        "serving_default",
        "np.zeros((2, 8, 8, 3), np.float32)",
        "Shape of tensor images [2,8,8,3] is not compatible with expected shape [?,8,8,1]",
    ),
    (
        "0..255 floats",
        "serving_default",
        "np.full((2, 8, 8, 1), 255, np.float32)",
        "serving_default: `images` must be float pixels in [0, 1] (0..255 pixels go to serving_uint8); got min] [255]",
    ),
    (
        "negative",
        "serving_default",
        "np.full((2, 8, 8, 1), -0.5, np.float32)",
        "serving_default: `images` must be float pixels in [0, 1] (0..255 pixels go to serving_uint8); got min] [-0.5]",
    ),
    (
        "NaN",
        "serving_default",
        "np.full((2, 8, 8, 1), np.nan, np.float32)",
        "serving_default: `images` must be float pixels in [0, 1] (0..255 pixels go to serving_uint8); got min] [nan]",
    ),
    (
        "uint8 rank 3",
        "serving_uint8",
        "np.zeros((2, 8, 8), np.uint8)",
        "Shape of tensor images [2,8,8] is not compatible with expected shape [?,8,8,1]",
    ),
    (
        "uint8 channels",
        "serving_uint8",
        "np.zeros((1, 8, 8, 4), np.uint8)",
        "Shape of tensor images [1,8,8,4] is not compatible with expected shape [?,8,8,1]",
    ),
    (
        "bytes rank 2",
        "serving_encoded",
        "np.array([[b'x']])",
        "Shape of tensor image_bytes [1,1] is not compatible with expected shape [?]",
    ),
    ("bytes not an image", "serving_encoded", "np.array([b'x'])", "Unknown image file format"),
]

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np, tensorflow as tf
    model = tf.saved_model.load(sys.argv[1])
    cases = json.loads(sys.argv[2])
    for name, signature, expression in cases:
        function = model.signatures[signature]
        (key,) = function.structured_input_signature[1]
        try:
            outputs = function(**{key: tf.constant(eval(expression))})
            result = {"case": name, "error": None, "class_ids": outputs["class_ids"].numpy().tolist(),
                      "logits": outputs["logits"].numpy().tolist()}
        except Exception as error:
            result = {"case": name, "error": type(error).__name__, "message": str(error)}
        print(json.dumps(result), flush=True)  # a line per case, so an abort shows which one
    assert not any(name.split(".")[0] == "mi_keras" for name in sys.modules), "mi_keras was imported"
    """
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    hidden = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)  # a wrong rank aborted here
    classifier = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(hidden)))
    path = export_classifier(classifier, tmp_path_factory.mktemp("serving") / "tiny" / "1")
    return classifier, path


def serve(path, cases: list[tuple[str, str, str]]) -> dict[str, dict]:
    process = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(path), json.dumps(cases)], capture_output=True, text=True, timeout=300
    )
    results = {row["case"]: row for row in map(json.loads, process.stdout.splitlines())}
    assert process.returncode == 0, (
        f"the serving process ended with status {process.returncode} after cases {list(results)}:\n{process.stderr[-3000:]}"
    )
    return results


def test_malformed_requests_fail_with_invalid_argument_naming_expected_and_received(exported):
    _, path = exported
    results = serve(path, [case[:3] for case in MALFORMED])
    for name, _, _, expected in MALFORMED:
        assert results[name]["error"] == "InvalidArgumentError", (name, results[name])
        assert expected in results[name]["message"], (name, results[name]["message"])


def test_uint8_signature_takes_0_to_255_pixels_like_the_float_one_takes_0_to_1(exported, tmp_path):
    classifier, path = exported
    pixels = np.random.default_rng(0).integers(0, 256, (6, 8, 8, 1), dtype=np.uint8)
    np.save(tmp_path / "pixels.npy", pixels)
    load = f"np.load({str(tmp_path / 'pixels.npy')!r})"
    results = serve(
        path,
        [("uint8", "serving_uint8", load), ("float", "serving_default", f"{load}.astype(np.float32) / 255")],
    )
    expected = classifier.predict(pixels.astype(np.float32) / 255, verbose=0)
    assert np.ptp(expected, axis=0).max() > 1e-3, "the comparison needs logits that depend on the image"
    np.testing.assert_allclose(results["uint8"]["logits"], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(results["float"]["logits"], results["uint8"]["logits"], rtol=1e-6, atol=1e-6)
    assert read_metadata(path)["input_shape"] == [8, 8, 1]


def test_signatures_declare_their_input_shapes_as_tf_serving_metadata_reports_them(exported):
    import tensorflow as tf

    _, path = exported
    loaded = tf.saved_model.load(str(path))
    declared = {
        name: {
            key: (spec.shape.as_list(), spec.dtype.name) for key, spec in function.structured_input_signature[1].items()
        }
        for name, function in loaded.signatures.items()
    }
    assert declared == {
        "serving_default": {"images": ([None, 8, 8, 1], "float32")},
        "serving_uint8": {"images": ([None, 8, 8, 1], "uint8")},
        "serving_encoded": {"image_bytes": ([None], "string")},
    }
