"""Artifacts: typed stage outputs, identified by a content fingerprint."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
from typing import Any

from mi_keras.enums import ParsableEnum

_CHUNK = 1 << 20


class ArtifactType(ParsableEnum):
    """What a stage output is (TFX's artifact types, reduced to this pipeline's)."""

    DATASET = "Dataset"  # data description, statistics and content hash (ingest)
    MODEL = "Model"  # a classifier: best-by-validation and last epoch (pretrain, train)
    ESTIMATORS = "Estimators"  # the natural and adversarial MI estimators (estimators)
    HYPERPARAMETERS = "HyperParameters"  # the tuner's best values (tune)
    EVALUATION = "ModelEvaluation"  # robustness reports of both models (evaluate)
    BLESSING = "ModelBlessing"  # whether the evaluation passed the thresholds (evaluate)
    PUSH_RECORD = "PushRecord"  # whether the export pushed, where, and why (export)
    PUSHED_MODEL = "PushedModel"  # the exported SavedModel version folder (export)


@dataclasses.dataclass
class Artifact:
    """One stage output: a file or folder, its content fingerprint and its properties.

    Attributes:
        name: the output's name within its stage (``"model"``, ``"blessing"``...).
        type: an `ArtifactType`.
        uri: absolute path of the file or folder.
        fingerprint: SHA-256 of its content (see `fingerprint_path`).
        properties: JSON-ready facts (metrics, epochs, versions...).
        id: the metadata store's id, once recorded.
    """

    name: str
    type: ArtifactType
    uri: str
    fingerprint: str = ""
    properties: dict[str, Any] = dataclasses.field(default_factory=dict)
    id: int | None = None

    @property
    def path(self) -> pathlib.Path:
        return pathlib.Path(self.uri)

    def exists(self) -> bool:
        return self.path.exists()


def fingerprint_path(path: str | os.PathLike) -> str:
    """SHA-256 over the relative names and bytes of every file under ``path`` (or of one file)."""
    root = pathlib.Path(path)
    digest = hashlib.sha256()
    files = [root] if root.is_file() else sorted(item for item in root.rglob("*") if item.is_file())
    for file in files:
        digest.update(file.relative_to(root).as_posix().encode() if file != root else b"")
        digest.update(b"\0")
        with open(file, "rb") as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def fingerprint_values(*values: Any) -> str:
    """SHA-256 of JSON-ready values in canonical form (sorted keys): cache keys."""
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()
