"""``--set deterministic=true``: two runs of one seed, in separate processes, agree exactly."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
from tiny_pipeline import TINY_UPSTREAM

from pipeline.orchestration.metadata_store import EventKind, MetadataStore
from pipeline.orchestration.runner import METADATA_FILE

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = [
    "deterministic=true",
    "data.take=128",
    *TINY_UPSTREAM,
    "train.epochs=2",
    "train.batch_size=32",
]


def run_pipeline(folder: pathlib.Path) -> pathlib.Path:
    folder.mkdir()
    arguments = ["--pipeline-root", str(folder / "root"), "--quiet", "--stages", "train"]
    arguments += [item for setting in TINY for item in ("--set", setting)]
    process = subprocess.run(
        [sys.executable, str(REPO_ROOT / "pipeline" / "run.py"), *arguments],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=folder,
    )
    assert process.returncode == 0, process.stdout[-2000:] + process.stderr[-3000:]
    return folder / "root"


def outputs(root: pathlib.Path, stage: str) -> pathlib.Path:
    store = MetadataStore(root / METADATA_FILE, root)
    (record,) = store.executions(stage=stage)
    (model,) = [artifact for artifact in store.artifacts(record.id, EventKind.OUTPUT)]
    return model.path


@pytest.mark.slow
def test_two_deterministic_runs_in_separate_processes_give_identical_weights_and_metrics(tmp_path):
    roots = [run_pipeline(tmp_path / name) for name in ("first", "second")]
    for stage in ("pretrain", "train"):
        first, second = (outputs(root, stage) for root in roots)
        history = [json.loads((path / "history.json").read_text()) for path in (first, second)]
        assert history[0] == history[1], stage
        assert len(history[0]) == (1 if stage == "pretrain" else 2)
        weights = [keras.models.load_model(path / "last.keras").get_weights() for path in (first, second)]
        assert len(weights[0]) > 4
        for ours, theirs in zip(*weights):
            np.testing.assert_array_equal(ours, theirs)
    first, second = (outputs(root, "estimators") for root in roots)
    for name in ("natural_estimator.keras", "adversarial_estimator.keras"):
        for ours, theirs in zip(
            keras.models.load_model(first / name).get_weights(), keras.models.load_model(second / name).get_weights()
        ):
            np.testing.assert_array_equal(ours, theirs)
