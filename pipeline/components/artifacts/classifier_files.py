"""The layout of a ``model`` artifact (pretrain, train, surrogate)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from pipeline.components.artifacts.artifact_folder import ArtifactFile, ArtifactFolder


@dataclasses.dataclass(frozen=True)
class ClassifierFiles(ArtifactFolder):
    """A trained classifier's folder: ``best.keras`` (best epoch by validation (clean + PGD) / 2),
    ``last.keras``, ``history.json`` (one row per epoch) and ``training.json`` (the summary).

    Example:
    ```python
    files = ClassifierFiles.of(inputs[StageName.PRETRAIN]["model"])
    classifier = keras.saving.load_model(files.best)
    ```

    Args:
        directory: the folder.
    """

    best = ArtifactFile("best.keras")
    last = ArtifactFile("last.keras")
    history = ArtifactFile("history.json")
    summary = ArtifactFile("training.json")

    def read_history(self) -> list[dict[str, Any]]:
        return json.loads(self.history.read_text())

    def read_summary(self) -> dict[str, Any]:
        return json.loads(self.summary.read_text())
