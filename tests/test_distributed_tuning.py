"""KerasTuner's chief / worker mode through the pipeline, on 127.0.0.1: a 4-trial search over 2 workers."""

from __future__ import annotations

import json
import pathlib

import pytest
from cluster_processes import free_ports, processes, start, wait_all
from tiny_pipeline import TINY_UPSTREAM

from pipeline import run

RUN_PY = str(pathlib.Path(__file__).resolve().parents[1] / "pipeline" / "run.py")
TRIALS = 4
# The quick-start at its smallest: PGD-2, the tune stage's upstream trains in seconds, and
# each trial is one epoch of 3 MIAT steps and a ~36-image validation.
SETTINGS = [
    "attack.steps=2",
    "data.validation_size=0.02",
    "data.take=96",
    *TINY_UPSTREAM,
    "train.batch_size=32",
    f"tune.max_trials={TRIALS}",
    "tune.epochs=1",
]

pytestmark = pytest.mark.slow


def arguments(*stages: str) -> list[str]:
    settings = [item for setting in SETTINGS for item in ("--set", setting)]
    return ["--pipeline-root", "pipeline_root", "--quiet", *settings, "--stages", *stages]


def test_a_chief_and_two_tuner_workers_run_every_trial_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run.main(arguments("estimators")) == 0  # the tune stage's inputs, in this process
    (port,) = free_ports(1)
    oracle = {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(port)}
    roles = ["chief", "tuner0", "tuner1"]
    with processes() as started:
        for role in roles:
            started.append(
                start([RUN_PY, *arguments("tune")], tmp_path / f"{role}.log", {**oracle, "KERASTUNER_TUNER_ID": role})
            )
        codes = wait_all(started, timeout=240)
    logs = {role: (tmp_path / f"{role}.log").read_text() for role in roles}
    assert codes == [0, 0, 0], "\n".join(f"--- {role}\n{log[-3000:]}" for role, log in logs.items())

    # Each trial ran on exactly one worker: KerasTuner logs each execution of a trial to
    # <worker's TensorBoard folder>/<trial id>/execution<i>.
    tensorboard = tmp_path / "pipeline_root" / "tensorboard"
    executed = {
        worker: sorted(path.parent.name for path in (tensorboard / f"tune-{worker}").glob("*/execution*"))
        for worker in ("tuner0", "tuner1")
    }
    runs = executed["tuner0"] + executed["tuner1"]
    assert len(runs) == TRIALS and len(set(runs)) == TRIALS, executed

    # The chief's artifact lists those trials, all complete, and reports the best of them.
    (artifact,) = (tmp_path / "pipeline_root" / "tune").glob("[0-9]*/hyperparameters/hyperparameters.json")
    result = json.loads(artifact.read_text())
    assert sorted(trial["trial_id"] for trial in result["trials"]) == sorted(runs)
    assert {trial["status"] for trial in result["trials"]} == {"COMPLETED"}
    assert result["best_score"] == max(trial["score"] for trial in result["trials"])
    assert set(result["best"]) >= {"alpha", "lam"}
    assert "[tune] best of 4 trials" in logs["chief"]
