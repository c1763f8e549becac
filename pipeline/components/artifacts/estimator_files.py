"""The layout of the ``estimators`` artifact (MIAT stage 1)."""

from __future__ import annotations

import dataclasses
import json

import keras

from pipeline.components.artifacts.artifact_folder import ArtifactFile, ArtifactFolder


@dataclasses.dataclass(frozen=True)
class EstimatorFiles(ArtifactFolder):
    """The natural and adversarial MI estimators (``.keras`` layers) and their ``history.json``.

    Example:
    ```python
    natural, adversarial = EstimatorFiles.of(inputs[StageName.ESTIMATORS]["estimators"]).load()
    ```

    Args:
        directory: the folder.
    """

    natural = ArtifactFile("natural_estimator.keras")
    adversarial = ArtifactFile("adversarial_estimator.keras")
    history = ArtifactFile("history.json")

    def load(self) -> tuple[keras.layers.Layer, keras.layers.Layer]:
        """Fresh copies of the natural and the adversarial estimator (no two callers share state)."""
        return keras.saving.load_model(self.natural), keras.saving.load_model(self.adversarial)

    def save(self, natural: keras.layers.Layer, adversarial: keras.layers.Layer, history: list[dict]) -> None:
        self.directory.mkdir(parents=True)
        keras.saving.save_model(natural, self.natural)
        keras.saving.save_model(adversarial, self.adversarial)
        self.history.write_text(json.dumps(history, indent=1))
