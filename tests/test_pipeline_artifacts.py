"""The typed artifact views: one owner for each file layout and for the tuned values."""

from __future__ import annotations

import json

import pytest

from pipeline.components.artifacts import ClassifierFiles, EstimatorFiles, TunedHyperparameters, TuningResult
from pipeline.orchestration.artifact import Artifact, ArtifactType


def test_tuned_values_refuse_unknown_and_missing_names():
    tuned = TunedHyperparameters.from_values({"alpha": 3, "lam": 0.05})
    assert tuned == TunedHyperparameters(alpha=3.0, lam=0.05) and tuned.learning_rate is None
    assert tuned.to_values() == {"alpha": 3.0, "lam": 0.05}  # no learning rate: it was not searched
    with pytest.raises(ValueError, match=r"unknown \['lambda'\]"):
        TunedHyperparameters.from_values({"alpha": 3, "lambda": 0.05})
    with pytest.raises(ValueError, match=r"missing \['lam'\]"):
        TunedHyperparameters.from_values({"alpha": 3})


def test_tuning_result_round_trips_through_its_file(tmp_path):
    result = TuningResult(
        objective="val_adversarial_accuracy",
        best=TunedHyperparameters(alpha=2.0, lam=0.1, learning_rate=0.03),
        best_score=0.5,
        trials=[{"trial_id": "0", "values": {"alpha": 2.0, "lam": 0.1, "learning_rate": 0.03}, "score": 0.5}],
    )
    result.save(tmp_path / "hyperparameters")
    artifact = Artifact("hyperparameters", ArtifactType.HYPERPARAMETERS, str(tmp_path / "hyperparameters"))
    assert TuningResult.load(artifact) == result
    (written,) = (tmp_path / "hyperparameters").iterdir()
    assert json.loads(written.read_text())["best"] == {"alpha": 2.0, "lam": 0.1, "learning_rate": 0.03}


def test_folder_views_name_the_files_of_their_artifact(tmp_path):
    model = ClassifierFiles.of(Artifact("model", ArtifactType.MODEL, str(tmp_path)))
    assert (model.best, model.last, model.history, model.summary) == tuple(
        tmp_path / name for name in ("best.keras", "last.keras", "history.json", "training.json")
    )
    estimators = EstimatorFiles.of(Artifact("estimators", ArtifactType.ESTIMATORS, str(tmp_path)))
    assert estimators.natural != estimators.adversarial and estimators.natural.parent == tmp_path
