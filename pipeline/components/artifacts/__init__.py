"""Typed views of the stages' artifacts: each owns its file layout and values.

A stage that reads another's output goes through these, never through its file names.
"""

from pipeline.components.artifacts.artifact_folder import ArtifactFile, ArtifactFolder
from pipeline.components.artifacts.classifier_files import ClassifierFiles
from pipeline.components.artifacts.estimator_files import EstimatorFiles
from pipeline.components.artifacts.tuned_hyperparameters import TunedHyperparameters
from pipeline.components.artifacts.tuning_result import TuningResult

__all__ = [
    "ArtifactFile",
    "ArtifactFolder",
    "ClassifierFiles",
    "EstimatorFiles",
    "TunedHyperparameters",
    "TuningResult",
]
