"""Pretrain: standard adversarial training, the comparison baseline and stage 1's frozen target."""

from __future__ import annotations

from mi_keras.enums import BaseLoss
from mi_keras.models import AdversarialModel
from pipeline.components.builders import training_attack
from pipeline.components.classifier_training import ClassifierTraining, training_metrics
from pipeline.components.stage_data import StageData
from pipeline.orchestration.artifact import Artifact, ArtifactType
from pipeline.orchestration.stage import Inputs, Stage, StageContext, StageName, register_stage
from pipeline.settings import PipelineConfig


@register_stage("pretrain", order=20)
class Pretrain(Stage):
    """Standard AT (Madry et al., 2018; TRADES or MART with ``pretrain.base_loss``).

    The paper's MI estimators are trained against "a ResNet-18 optimized by standard AT"
    (Zhou et al., ICML 2022, section 3.2.2): this stage's best-by-validation classifier
    is that target, and its robustness is the baseline row of the final comparison.
    Output ``model``: ``best.keras`` (best epoch by validation (clean + PGD) / 2),
    ``last.keras``, ``history.json`` and ``training.json``.
    """

    def tensorboard_run(self, config: PipelineConfig) -> str:
        return "standard_at" if config.pretrain.base_loss == BaseLoss.CE else config.pretrain.base_loss.value

    def upstream(self, config: PipelineConfig) -> tuple[StageName, ...]:
        return (StageName.INGEST,)

    def config_sections(self, config: PipelineConfig) -> tuple[str, ...]:
        return ("seed", "data", "model", "attack", "pretrain")

    def run(self, context: StageContext, inputs: Inputs) -> list[Artifact]:
        config, section = context.config, context.config.pretrain
        attack = training_attack(config.attack, config.seed)
        training = ClassifierTraining(context, section, StageData(inputs[StageName.INGEST]["dataset"]))
        trained = training.run(
            lambda classifier: AdversarialModel(
                classifier,
                attack=attack,
                base_loss=section.base_loss,
                beta=section.beta,
                recompute_clean=section.recompute_clean,
                seed=config.seed,
            )  # fmt: skip
        )
        summary = training.save(trained, context.output_dir / "model")
        context.log_metrics(training_metrics(summary))
        return [context.artifact("model", ArtifactType.MODEL, "model", **summary)]
