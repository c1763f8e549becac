"""Loading models to evaluate (Keras, .keras, SavedModels) and the command line, end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from mi_keras.evaluation import (
    AttackSpec,
    LoadedClassifier,
    ModelKind,
    RobustnessSuite,
    save_report_next_to_model,
    validate_report,
)
from mi_keras.evaluation.__main__ import main
from mi_keras.export import export_classifier

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def tiny_model():
    keras.utils.set_random_seed(7)
    inputs = keras.Input((8, 8, 1), name="images")
    hidden = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    logits = keras.layers.Dense(3)(keras.layers.Flatten()(hidden))
    model = keras.Model(inputs, logits, name="tiny")
    return model


@pytest.fixture(scope="module")
def tiny_data():
    rng = np.random.default_rng(3)
    x = rng.uniform(size=(40, 8, 8, 1)).astype("float32")
    return x, rng.integers(0, 3, size=40).astype("int32")


def _export_probabilities_only(model, path):
    @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 1], tf.float32, name="pixels")])
    def serve(pixels):
        logits = model(pixels, training=False)
        return {"probs": tf.nn.softmax(logits), "scores": logits}

    module = tf.Module()
    module.model = model
    tf.saved_model.save(module, path, signatures={"serving_default": serve})


def test_saved_models_load_with_gradients_and_evaluate_like_the_keras_model(tiny_model, tiny_data, tmp_path):
    x, y = tiny_data
    keras_export = str(tmp_path / "keras_export" / "1")
    tiny_model.export(keras_export, input_signature=[tf.TensorSpec([None, 8, 8, 1], tf.float32, name="images")])
    ours = str(tmp_path / "ours" / "1")
    export_classifier(tiny_model, ours, metadata={"eps": 0.1})

    for path, output_key in ((keras_export, "output_0"), (ours, "logits")):
        classifier = LoadedClassifier.load(path)
        assert classifier.kind == ModelKind.SAVED_MODEL and classifier.output_key == output_key
        np.testing.assert_allclose(classifier(x[:5]), tiny_model(x[:5]), atol=1e-5)
        images = tf.constant(x[:5])
        with tf.GradientTape() as tape:
            tape.watch(images)
            total = tf.reduce_sum(classifier(images))
        assert float(tf.reduce_max(tf.abs(tape.gradient(total, images)))) > 0.0

    suite = RobustnessSuite([0.1], attacks="fgsm,pgd20", batch_size=16, progress=False, masking_checks=False)
    in_memory = suite.evaluate(tiny_model, (x, y))
    saved = suite.evaluate(ours, (x, y))
    for spec in (AttackSpec.FGSM, AttackSpec.PGD20):
        assert saved.result(spec, 0.1).robust_accuracy == in_memory.result(spec, 0.1).robust_accuracy
    assert saved.model["kind"] == "saved_model" and saved.model["output_key"] == "logits"
    assert saved.model["name"] == "ours/1"
    written = save_report_next_to_model(saved)
    assert written == str(tmp_path / "ours" / "1" / "assets" / "robustness.json")
    assert sorted(path.name for path in (tmp_path / "ours").iterdir()) == ["1"], "nothing beside the version"
    validate_report(json.load(open(written)))
    assert save_report_next_to_model(in_memory) is None


def test_foreign_saved_model_needs_its_output_named(tiny_model, tiny_data, tmp_path):
    path = str(tmp_path / "foreign")
    _export_probabilities_only(tiny_model, path)
    with pytest.raises(ValueError, match="output_key"):
        LoadedClassifier.load(path)
    with pytest.raises(ValueError, match="available: probs, scores"):
        LoadedClassifier.load(path, output_key="logits")
    classifier = LoadedClassifier.load(path, output_key="scores")
    assert classifier.input_key == "pixels"
    np.testing.assert_allclose(classifier(tiny_data[0][:3]), tiny_model(tiny_data[0][:3]), atol=1e-5)
    with pytest.raises(ValueError, match="existing"):
        LoadedClassifier.load(str(tmp_path / "missing.keras"))


def test_command_line_runs_end_to_end(tiny_model, tiny_data, tmp_path):
    model_path = str(tmp_path / "tiny.keras")
    tiny_model.save(model_path)
    x, y = tiny_data
    np.savez(tmp_path / "data.npz", x=(x * 255).astype(np.uint8), y=y)
    out = tmp_path / "report"
    command = [
        sys.executable,
        "-m",
        "mi_keras.evaluation",
        "--model",
        model_path,
        "--npz",
        str(tmp_path / "data.npz"),
        "--eps",
        "0.1",
        "--eps",
        "0.2",
        "--attacks",
        "fgsm,pgd20",
        "--n-examples",
        "24",
        "--batch-size",
        "12",
        "--seed",
        "0",
        "--masking-examples",
        "12",
        "--square-queries",
        "0",
        "--out",
        str(out),
        "--no-progress",
    ]
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=REPO_ROOT, env=environment)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "| eps | clean | FGSM | PGD-20 | ensemble |" in completed.stdout
    payload = json.load(open(out / "report.json"))
    validate_report(payload)
    assert payload["data"]["n_examples"] == 24 and payload["eps"] == [0.1, 0.2]
    assert payload["model"]["kind"] == "keras_file"
    assert (out / "report.md").is_file() and (out / "accuracy_vs_eps.png").stat().st_size > 1000
    assert not (tmp_path / "tiny.robustness.json").exists(), "nothing next to the model unless --next-to-model"


def test_command_line_rejects_bad_arguments_with_a_usage_error(tiny_data, tmp_path, capsys):
    x, y = tiny_data
    np.savez(tmp_path / "data.npz", x=x, y=y)
    arguments = [
        "--model",
        str(tmp_path / "missing.keras"),
        "--npz",
        str(tmp_path / "data.npz"),
        "--eps",
        "0.1",
    ]
    with pytest.raises(SystemExit) as exit_info:
        main([*arguments, "--attacks", "pgd7"])
    assert exit_info.value.code == 2 and "Unknown attacks 'pgd7'" in capsys.readouterr().err
    np.savez(tmp_path / "bad.npz", images=x)
    with pytest.raises(SystemExit):
        main(["--model", "m.keras", "--npz", str(tmp_path / "bad.npz"), "--eps", "0.1"])
    assert "needs arrays 'x' and 'y'" in capsys.readouterr().err
