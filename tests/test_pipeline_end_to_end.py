"""The quick-start pipeline end to end at a reduced size: artifacts, metadata, cache, --force, serving."""

from __future__ import annotations

import json
import pathlib
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mi_keras.export import read_metadata
from pipeline import run
from pipeline.orchestration.metadata_store import (
    EventKind,
    ExecutionState,
    MetadataStore,
)
from pipeline.orchestration.runner import METADATA_FILE
from pipeline.orchestration.stage import StageName
from pipeline.settings import load_config

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
SAVED_MODEL_CLI = pathlib.Path(sys.executable).with_name("saved_model_cli")
QUICKSTART_EPS = load_config("quickstart").attack.eps

# The quick-start, shrunk: a few hundred digits, one or two epochs, small estimators, the
# tuner with two one-epoch trials, and no masking checks (they alone take ~20 s per model).
REDUCED = [
    "data.take=192",
    "data.test_take=64",
    "pretrain.epochs=2",
    "pretrain.batch_size=32",
    "estimators.epochs=1",
    "estimators.batch_size=32",
    "estimators.units=16",
    "train.epochs=2",
    "train.batch_size=32",
    "tune.enabled=true",
    "tune.max_trials=2",
    "tune.epochs=1",
    "train.use_tuned=true",
    "evaluate.masking_checks=false",
    "evaluate.last_epoch=false",
    "evaluate.batch_size=64",
    # Two epochs on 192 digits stay near chance (7.8% clean measured): the blessing would
    # rightly refuse them, and this module tests the plumbing through export.
    "evaluate.require_above_chance=false",
    # The black-box stages (off by default), with a small surrogate and two cheap attacks.
    "transfer.enabled=true",
    "transfer.architecture=small_cnn",
    'transfer.options={"padding": "same"}',
    'transfer.attacks=["pgd40", "fwa40"]',
    "transfer.batch_size=64",
]


def pipeline_arguments(*extra: str) -> list[str]:
    """Paths are relative (run inside the test's folder), so copies of a root share one config."""
    settings = [*REDUCED, *extra]
    return [
        "--pipeline-root",
        "pipeline_root",
        "--quiet",
        *(item for setting in settings for item in ("--set", setting)),
    ]


def latest_run(root: pathlib.Path):
    store = MetadataStore(root / METADATA_FILE, root)
    return store, store.executions(run_id=store.latest_run_id())


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """One full reduced run, in-process (TensorFlow starts once for the whole module)."""
    folder = tmp_path_factory.mktemp("e2e")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        assert run.main(pipeline_arguments()) == 0
    return folder / "pipeline_root"


@pytest.mark.slow
def test_every_stage_runs_and_records_its_artifacts(first_run):
    store, executions = latest_run(first_run)
    assert [record.stage for record in executions] == [stage.value for stage in StageName]
    assert {record.state for record in executions} == {ExecutionState.COMPLETE}
    outputs = {record.stage: {a.name: a for a in store.artifacts(record.id, EventKind.OUTPUT)} for record in executions}
    for record in executions:
        assert (first_run / record.stage / str(record.id)).is_dir()
        assert all(artifact.fingerprint for artifact in outputs[record.stage].values())

    dataset = json.loads((outputs["ingest"]["dataset"].path / "dataset.json").read_text())
    assert dataset["num_examples"]["train"] == 192 and dataset["num_examples"]["test"] == 64
    assert dataset["info"]["image_shape"] == [8, 8, 1]
    for stage in ("pretrain", "train"):
        model = outputs[stage]["model"]
        assert {"best.keras", "last.keras", "history.json", "training.json"} <= {p.name for p in model.path.iterdir()}
        assert model.properties["epochs"] == 2 and 1 <= model.properties["best_epoch"] <= 2
    assert {p.name for p in outputs["estimators"]["estimators"].path.iterdir()} >= {
        "natural_estimator.keras",
        "adversarial_estimator.keras",
    }

    tuned = json.loads((outputs["tune"]["hyperparameters"].path / "hyperparameters.json").read_text())
    assert len(tuned["trials"]) == 2 and set(tuned["best"]) == {"alpha", "lam"}
    assert outputs["train"]["model"].properties["alpha"] == pytest.approx(tuned["best"]["alpha"]), (
        "train must use the tuned alpha"
    )

    comparison = json.loads((outputs["evaluate"]["evaluation"].path / "comparison.json").read_text())
    assert [row["label"] for row in comparison["rows"]] == ["Standard AT", "MIAT"]
    assert set(comparison["rows"][1]["robust_accuracy"]) == {"fgsm", "pgd20", "pgd40", "cw_inf"}
    assert outputs["evaluate"]["blessing"].properties["blessed"] is True
    (evaluate,) = [record for record in executions if record.stage == "evaluate"]
    assert store.metrics(evaluate.id)["MIAT/clean"] == pytest.approx(comparison["rows"][1]["clean_accuracy"])

    pushed = outputs["export"]["pushed_model"].path
    assert pushed.name == "1" and pushed.parent.name == "quickstart"
    metadata = read_metadata(pushed)
    assert metadata["class_names"] == [str(digit) for digit in range(10)]
    assert metadata["input_shape"] == [8, 8, 1] and metadata["threat_model"] == "Linf"
    assert metadata["eps"] == pytest.approx(QUICKSTART_EPS) and metadata["config"]["train"]["epochs"] == 2
    assert metadata["evaluation"]["rows"][1]["label"] == "MIAT"
    # The health monitor watched both trainings; its verdict sits next to each evaluated
    # model and travels with the export.
    for key, stage in (("standard_at", "pretrain"), ("miat", "train")):
        verdict = json.loads((outputs["evaluate"]["evaluation"].path / key / "training_health.json").read_text())
        assert verdict == outputs[stage]["model"].properties["health"] and verdict["epochs_checked"] == 2
    assert metadata["training"]["health"] == outputs["train"]["model"].properties["health"]

    transfer = json.loads((outputs["transfer"]["transfer"].path / "transfer.json").read_text())
    assert transfer["columns"] == ["None", "PGD-40", "FWA-40"]
    assert list(transfer["rows"]) == ["Standard AT", "MIAT"]
    assert transfer["surrogate"]["source"].endswith("best.keras")
    for cells in transfer["rows"].values():
        assert all(0.0 <= cells[column] <= cells["None"] for column in transfer["columns"])
    assert all(
        transfer["surrogate_white_box"][c] <= transfer["surrogate_white_box"]["None"] for c in transfer["columns"]
    )
    assert "/surrogate/" in transfer["surrogate"]["source"]  # crafted on the surrogate stage's model
    assert "| Standard AT |" in (outputs["transfer"]["transfer"].path / "transfer.md").read_text()


@pytest.mark.slow
def test_tensorboard_holds_losses_learning_rate_mi_images_and_histograms(first_run):
    def tags(pattern: str) -> dict:
        (directory,) = first_run.glob(f"tensorboard/{pattern}")
        events = EventAccumulator(str(directory), size_guidance={"tensors": 0})
        events.Reload()
        return set(events.Tags()["tensors"])

    assert {
        "epoch_loss",
        "epoch_mi_loss",
        "epoch_natural_mi",
        "epoch_adversarial_mi",
        "epoch_selected_fraction",
        "epoch_learning_rate",
    } <= tags("miat/train")
    assert {"epoch_clean_accuracy", "epoch_adversarial_accuracy", "epoch_selection_score"} <= tags("miat/validation")
    assert {"epoch_adversarial_accuracy"} <= tags("standard_at/validation")
    assert {"epoch_natural_mi_robust", "epoch_adversarial_mi_fooled"} <= tags("estimators/train")
    evaluation = tags("evaluation/miat")
    assert "clean_vs_adversarial" in evaluation
    assert not any(tag.startswith("accuracy") for tag in evaluation), "accuracies belong in the table"
    assert any(tag.startswith("mi/natural_mi_adversarial/") for tag in evaluation)
    table = EventAccumulator(str(first_run / "tensorboard" / "evaluation"), size_guidance={"tensors": 0})
    table.Reload()
    (event,) = table.Tensors("accuracy")
    markdown = event.tensor_proto.string_val[0].decode()
    assert "| Standard AT |" in markdown and "| MIAT |" in markdown and "PGD-40" in markdown


@pytest.mark.slow
def test_exported_model_predicts_without_mi_keras_and_matches_keras(first_run, tmp_path):
    store, executions = latest_run(first_run)
    outputs = {record.stage: {a.name: a for a in store.artifacts(record.id, EventKind.OUTPUT)} for record in executions}
    pushed = outputs["export"]["pushed_model"].path
    images = np.random.default_rng(0).random((5, 8, 8, 1), dtype=np.float32)
    np.save(tmp_path / "images.npy", images)
    script = textwrap.dedent(
        f"""
        import io, sys
        import numpy as np, tensorflow as tf
        model = tf.saved_model.load({str(pushed)!r})
        images = np.load({str(tmp_path / "images.npy")!r})
        out = model.signatures["serving_default"](images=tf.constant(images))
        png = tf.io.encode_png(tf.cast(tf.round(images[0] * 255), tf.uint8)).numpy()
        encoded = model.signatures["serving_encoded"](image_bytes=tf.constant([png]))
        np.savez({str(tmp_path / "out.npz")!r}, logits=out["logits"].numpy(), probabilities=out["probabilities"].numpy(),
                 class_ids=out["class_ids"].numpy(), encoded_logits=encoded["logits"].numpy())
        assert not any(name.split(".")[0] == "mi_keras" for name in sys.modules), "mi_keras was imported"
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path, capture_output=True, text=True)
    served = np.load(tmp_path / "out.npz")
    keras_model = keras.saving.load_model(outputs["train"]["model"].path / "best.keras")
    expected = keras_model.predict(images, verbose=0)
    assert np.ptp(expected, axis=0).max() > 1e-4, "the comparison needs logits that depend on the image"
    np.testing.assert_allclose(served["logits"], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(served["class_ids"], expected.argmax(-1))
    np.testing.assert_allclose(served["probabilities"].sum(-1), 1.0, rtol=1e-5)
    png_image = np.round(images[:1] * 255) / 255  # what the PNG round trip keeps
    np.testing.assert_allclose(
        served["encoded_logits"], keras_model.predict(png_image, verbose=0), rtol=1e-4, atol=1e-4
    )

    shown = subprocess.run(
        [str(SAVED_MODEL_CLI), "show", "--all", "--dir", str(pushed)], check=True, capture_output=True, text=True
    ).stdout
    assert "signature_def['serving_default']" in shown and "inputs['images']" in shown
    assert "signature_def['serving_encoded']" in shown and "outputs['class_ids']" in shown


@pytest.mark.slow
def test_second_run_is_fully_cached_and_force_train_reruns_only_what_depends_on_it(first_run, tmp_path, monkeypatch):
    root = tmp_path / "pipeline_root"
    shutil.copytree(first_run, root)
    shutil.copytree(first_run.parent / "saved_models", tmp_path / "saved_models")
    monkeypatch.chdir(tmp_path)
    started = time.perf_counter()
    assert run.main(pipeline_arguments()) == 0
    assert time.perf_counter() - started < 30, "a fully cached run must not train"
    _, executions = latest_run(root)
    assert {record.stage: record.state for record in executions} == {
        stage.value: ExecutionState.CACHED for stage in StageName
    }
    assert sorted(path.name for path in (tmp_path / "saved_models" / "quickstart").iterdir()) == ["1"], (
        "a cached export pushes nothing"
    )

    assert run.main([*pipeline_arguments(), "--force", "train"]) == 0
    _, executions = latest_run(root)
    states = {record.stage: record.state for record in executions}
    assert states == {
        "ingest": ExecutionState.CACHED,
        "pretrain": ExecutionState.CACHED,
        "estimators": ExecutionState.CACHED,
        "tune": ExecutionState.CACHED,
        "train": ExecutionState.COMPLETE,
        "evaluate": ExecutionState.COMPLETE,
        "surrogate": ExecutionState.CACHED,  # it depends on neither target
        "transfer": ExecutionState.COMPLETE,
        "export": ExecutionState.COMPLETE,
    }
    assert sorted(path.name for path in (tmp_path / "saved_models" / "quickstart").iterdir()) == ["1", "2"]


@pytest.mark.slow
def test_kill_9_during_miat_training_then_rerun_resumes_to_the_configured_epochs(first_run, tmp_path, monkeypatch):
    root = tmp_path / "pipeline_root"
    shutil.copytree(first_run, root)
    # Upstream stages stay cached; MIAT trains 8 epochs (a new cache key) and is killed after its first.
    arguments = pipeline_arguments(
        "tune.enabled=false", "train.use_tuned=false", "train.epochs=8", "transfer.enabled=false"
    )
    with open(tmp_path / "killed.log", "w") as log:
        process = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "pipeline" / "run.py"), *arguments],
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        killed_after = _kill_after_first_backup(process, root)
    assert killed_after is not None, (
        "the run ended before it could be killed:\n" + (tmp_path / "killed.log").read_text()[-3000:]
    )

    monkeypatch.chdir(tmp_path)
    assert run.main(arguments) == 0
    store, executions = latest_run(root)
    (train,) = [record for record in executions if record.stage == "train"]
    assert train.state == ExecutionState.COMPLETE
    model = {artifact.name: artifact for artifact in store.artifacts(train.id, EventKind.OUTPUT)}["model"]
    assert model.properties["epochs"] == 8
    assert killed_after <= model.properties["resumed_from_epoch"] < 8
    history = json.loads((model.path / "history.json").read_text())
    assert [row["epoch"] for row in history] == list(range(1, 9))
    killed = [
        record
        for record in store.executions(stage="train")
        if record.run_id != train.run_id and record.config["train"]["epochs"] == 8
    ]
    assert [record.state for record in killed] == [ExecutionState.ABANDONED], (
        "the killed execution must never be complete"
    )


def _kill_after_first_backup(process: subprocess.Popen, root: pathlib.Path) -> int | None:
    """SIGKILLs ``process`` once MIAT training has backed up an epoch; returns that epoch."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        for metadata in root.glob("train/.work/*/adversarial/backup/training_metadata.json"):
            try:
                epoch = json.loads(metadata.read_text())["epoch"]
            except (json.JSONDecodeError, OSError):
                continue  # caught mid-write
            if epoch >= 1:
                process.send_signal(signal.SIGKILL)
                process.wait()
                return epoch
        time.sleep(0.01)
    process.kill()
    process.wait()
    return None


@pytest.mark.slow
def test_every_saved_model_file_loads_in_a_process_that_imports_only_mi_keras(first_run):
    files = sorted(str(path) for path in first_run.rglob("*.keras"))
    assert {pathlib.Path(path).name for path in files} >= {
        "best.keras",
        "last.keras",
        "natural_estimator.keras",
        "adversarial_estimator.keras",
    }
    script = textwrap.dedent(
        """
        import json, sys
        import keras, mi_keras
        print(json.dumps([type(keras.models.load_model(path)).__name__ for path in json.loads(sys.argv[1])]))
        """
    )
    process = subprocess.run(
        [sys.executable, "-c", script, json.dumps(files)], capture_output=True, text=True, timeout=600
    )
    assert process.returncode == 0, process.stderr[-3000:]
    assert len(json.loads(process.stdout.splitlines()[-1])) == len(files)
