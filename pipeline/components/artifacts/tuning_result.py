"""The ``hyperparameters`` artifact (tune stage): the best values and every trial."""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any

import keras_tuner as kt

from pipeline.components.artifacts.tuned_hyperparameters import TunedHyperparameters
from pipeline.orchestration.artifact import Artifact

_FILE = "hyperparameters.json"


@dataclasses.dataclass(frozen=True)
class TuningResult:
    """What a KerasTuner search found, written as ``hyperparameters.json``.

    Example:
    ```python
    TuningResult.from_tuner(tuner).save(output_dir / "hyperparameters")
    best = TuningResult.load(inputs[StageName.TUNE]["hyperparameters"]).best
    ```

    Attributes:
        objective: the tuner's objective (a validation metric name).
        best: the best trial's values.
        best_score: the best trial's objective value.
        trials: per trial its id, values, score and status.
    """

    objective: str
    best: TunedHyperparameters
    best_score: float
    trials: list[dict[str, Any]]

    @classmethod
    def from_tuner(cls, tuner: kt.Tuner) -> TuningResult:
        trials = [
            {
                "trial_id": trial.trial_id,
                "values": trial.hyperparameters.values,
                "score": trial.score,
                "status": str(trial.status),
            }
            for trial in tuner.oracle.trials.values()
        ]
        best_trial = tuner.oracle.get_best_trials(1)[0]
        return cls(
            objective=tuner.oracle.objective.name,
            best=TunedHyperparameters.from_values(best_trial.hyperparameters.values),
            best_score=best_trial.score,
            trials=trials,
        )

    def save(self, directory: pathlib.Path) -> None:
        directory.mkdir(parents=True)
        payload = {**dataclasses.asdict(self), "best": self.best.to_values()}
        (directory / _FILE).write_text(json.dumps(payload, indent=2))

    @classmethod
    def load(cls, artifact: Artifact) -> TuningResult:
        payload = json.loads((artifact.path / _FILE).read_text())
        return cls(**{**payload, "best": TunedHyperparameters.from_values(payload["best"])})
