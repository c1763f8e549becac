"""The pipeline's stages, in execution order."""

from pipeline.orchestration.stage import Stage
from pipeline.stages.estimators import Estimators
from pipeline.stages.evaluate import Evaluate
from pipeline.stages.export import Export
from pipeline.stages.ingest import Ingest
from pipeline.stages.pretrain import Pretrain
from pipeline.stages.surrogate import Surrogate
from pipeline.stages.train import Train
from pipeline.stages.transfer import Transfer
from pipeline.stages.tune import Tune

__all__ = [
    "Estimators",
    "Evaluate",
    "Export",
    "Ingest",
    "Pretrain",
    "Surrogate",
    "Train",
    "Transfer",
    "Tune",
    "all_stages",
]


def all_stages() -> list[Stage]:
    """One instance of every stage, in execution order (the runner's DAG order)."""
    return [Ingest(), Pretrain(), Estimators(), Tune(), Train(), Evaluate(), Surrogate(), Transfer(), Export()]
