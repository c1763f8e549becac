"""Surrogate: the black-box attacks' source model, trained separately (off by default)."""

from __future__ import annotations

import dataclasses

from mi_keras.models import AdversarialModel
from pipeline.components.builders import training_attack
from pipeline.components.classifier_training import ClassifierTraining, training_metrics
from pipeline.components.stage_data import StageData
from pipeline.orchestration.artifact import Artifact, ArtifactType
from pipeline.orchestration.stage import Inputs, Stage, StageContext, StageName, register_stage
from pipeline.settings import ModelConfig, PipelineConfig

SEED_OFFSET = 1  # the surrogate's seed is the config's + 1 (see `Surrogate`)


@register_stage("surrogate", order=70)
class Surrogate(Stage):
    """Standard AT of ``transfer.architecture`` (the paper: VGG-19, Tables 2, 5 and 6).

    It trains under the ``pretrain`` section's settings and the shared ``attack``, with the
    seed ``seed + 1``: with the targets' architecture (a CPU-scale choice) it would
    otherwise be a copy of the standard-AT target, and the transfer would be white-box. It
    depends on neither target, so retraining MIAT reuses it from the cache. Runs with the
    ``transfer`` stage (``transfer.enabled=true`` or ``--stages transfer``).
    Output ``model``: as `Pretrain`'s (``best.keras``, ``last.keras``, ``history.json``...).
    """

    def upstream(self, config: PipelineConfig) -> tuple[StageName, ...]:
        return (StageName.INGEST,)

    def enabled_by_default(self, config: PipelineConfig) -> bool:
        return config.transfer.enabled

    def config_sections(self, config: PipelineConfig) -> tuple[str, ...]:
        # Of the transfer section only the architecture shapes the surrogate; changing the
        # attacks crafted on it must not retrain it.
        return ("seed", "data", "attack", "pretrain", "transfer.architecture", "transfer.options")

    def run(self, context: StageContext, inputs: Inputs) -> list[Artifact]:
        config = context.config
        surrogate = ModelConfig(architecture=config.transfer.architecture, options=config.transfer.options)
        # ClassifierTraining builds `config.model`: hand it the surrogate's.
        surrogate_config = config.replace(model=surrogate, seed=config.seed + SEED_OFFSET)
        surrogate_context = dataclasses.replace(context, config=surrogate_config)
        training = ClassifierTraining(
            surrogate_context, config.pretrain, StageData(inputs[StageName.INGEST]["dataset"])
        )
        attack = training_attack(config.attack, surrogate_config.seed)
        trained = training.run(
            lambda classifier: AdversarialModel(classifier, attack=attack, seed=surrogate_config.seed)
        )
        summary = training.save(trained, context.output_dir / "model")
        context.log_metrics(training_metrics(summary))
        return [context.artifact("model", ArtifactType.MODEL, "model", **summary)]
