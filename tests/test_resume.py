"""Resuming is exact: N steps in one go equal N/2 steps, a save, a fresh process and N/2 more.

Two resume paths: a `.keras` file loaded with `keras.models.load_model`, and the pipeline's
`keras.callbacks.BackupAndRestore` (via `ResumableFit`) after a SIGKILL mid-epoch.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import resume_setup

SCRIPT = pathlib.Path(__file__).parent / "scripts" / "resume_runs.py"
TOLERANCE = 1e-6


def run_script(*arguments: str, expect_kill: bool = False) -> None:
    result = subprocess.run([sys.executable, str(SCRIPT), *arguments], capture_output=True, text=True, timeout=600)
    if expect_kill:
        assert result.returncode == -9, f"the run was not killed:\n{result.stderr[-3000:]}"
    else:
        assert result.returncode == 0, result.stderr[-3000:]


def assert_same_state(resumed: dict, uninterrupted: dict) -> None:
    assert resumed.keys() == uninterrupted.keys(), "the optimizer or the model holds other variables after resuming"
    for key, value in uninterrupted.items():
        np.testing.assert_allclose(resumed[key], value, rtol=0, atol=TOLERANCE, err_msg=key)


def moved(before: dict, after: dict) -> float:
    return max(float(np.abs(after[key] - before[key]).max()) for key in before if key.startswith("weight_"))


@pytest.fixture(scope="module")
def keras_resumed(tmp_path_factory):
    """Each kind: (initial, uninterrupted, resumed states, the uninterrupted model)."""
    folder = tmp_path_factory.mktemp("keras_resume")
    runs = {}
    for kind in resume_setup.KINDS:
        model = resume_setup.build(kind)
        initial = {key: value for key, value in resume_setup.training_state(model).items() if key.startswith("weight_")}
        resume_setup.fit_epochs(model, 1)
        model.save(folder / f"{kind}.keras")  # saving leaves the run untouched
        resume_setup.fit_epochs(model, 1)
        runs[kind] = (initial, resume_setup.training_state(model), model)
    run_script("keras", str(folder))
    return {
        kind: (initial, state, dict(np.load(folder / f"{kind}.resumed.npz")), model)
        for kind, (initial, state, model) in runs.items()
    }


@pytest.mark.slow
@pytest.mark.parametrize("kind", resume_setup.KINDS)
def test_a_loaded_keras_file_continues_the_saved_run(keras_resumed, kind):
    initial, uninterrupted, resumed, model = keras_resumed[kind]
    trainable_count = int(resumed.pop("trainable_count"))
    assert int(uninterrupted["optimizer_0"]) == 8, "optimizer_0 is the step count: 2 epochs of 4 steps"
    assert moved(initial, uninterrupted) > 1e-2, "the run must train for the comparison to mean anything"
    assert_same_state(resumed, uninterrupted)
    # The optimizer covers exactly the variables train_step updates, before and after loading.
    if kind == "estimator_trainer":
        updated = model.natural_estimator.trainable_variables + model.adversarial_estimator.trainable_variables
    else:
        updated = model.classifier.trainable_variables
    assert [id(v) for v in model.trainable_variables] == [id(v) for v in updated]
    slots = 2 if kind == "estimator_trainer" else 1  # Adam: m and v; SGD: momentum
    assert len(model.optimizer.variables) == 2 + slots * len(model.trainable_variables)
    assert trainable_count == len(model.trainable_variables)


@pytest.mark.slow
def test_estimators_stay_frozen_through_training_and_loading(keras_resumed):
    initial, uninterrupted, resumed, model = keras_resumed["mi_defense"]
    estimators = {id(weight) for weight in model.natural_estimator.weights + model.adversarial_estimator.weights}
    estimator_keys = [f"weight_{index}" for index, weight in enumerate(model.weights) if id(weight) in estimators]
    assert len(estimator_keys) == len(estimators) > 0
    for key in estimator_keys:
        np.testing.assert_array_equal(uninterrupted[key], initial[key], err_msg=key)
        np.testing.assert_array_equal(resumed[key], initial[key], err_msg=key)


@pytest.mark.slow
def test_backup_and_restore_after_a_kill_continues_the_run(tmp_path):
    run_script("backup", str(tmp_path / "killed"), expect_kill=True)
    backup = json.loads((tmp_path / "killed" / "backup" / "training_metadata.json").read_text())
    assert backup["epoch"] == resume_setup.KILL_EPOCH, "the kill must interrupt the epoch after a backup"
    # This process is not the killed one: it resumes from the backup alone.
    resumed, resumed_fit = resume_setup.backup_run(tmp_path / "killed", kill=False)
    uninterrupted, uninterrupted_fit = resume_setup.backup_run(tmp_path / "uninterrupted", kill=False)
    assert (resumed_fit.resumed_from_epoch, uninterrupted_fit.resumed_from_epoch) == (resume_setup.KILL_EPOCH, 0)
    assert int(uninterrupted["optimizer_0"]) == resume_setup.BACKUP_EPOCHS * 4
    assert_same_state(resumed, uninterrupted)
