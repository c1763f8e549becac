"""Train: MIAT stage 2, adversarial training with the natural / adversarial MI loss."""

from __future__ import annotations

import keras

from mi_keras.callbacks import EstimatorRefit
from mi_keras.models import MIDefenseModel
from pipeline.components.artifacts import ClassifierFiles, EstimatorFiles, TuningResult
from pipeline.components.builders import mi_defense_model
from pipeline.components.classifier_training import ClassifierTraining, training_metrics
from pipeline.components.comparison_table import trained_label
from pipeline.components.stage_data import StageData
from pipeline.orchestration.artifact import Artifact, ArtifactType
from pipeline.orchestration.stage import Inputs, Stage, StageContext, StageName, register_stage
from pipeline.settings import PipelineConfig


@register_stage("train", order=50)
class Train(Stage):
    """MIAT / NAMID (Zhou et al., ICML 2022): ``L_base + alpha * L_mi`` with frozen estimators.

    The classifier trains from scratch with the stage-1 estimators frozen (Algorithm 1).
    With ``train.use_tuned`` the ``tune`` stage's best alpha, lambda (and learning rate,
    when tuned) replace the section's values. TensorBoard gets, per epoch, every loss term,
    the natural and adversarial MI of the selected samples, the selected fraction, the
    validation clean and PGD accuracy and the learning rate. Output ``model``: as
    `Pretrain`'s (``best.keras`` by validation (clean + PGD) / 2, ``last.keras``...).
    """

    def tensorboard_run(self, config: PipelineConfig) -> str:
        return trained_label(config.train).lower()  # miat, namid_t, namid_m or wmim

    def upstream(self, config: PipelineConfig) -> tuple[StageName, ...]:
        tuned = (StageName.TUNE,) if config.train.use_tuned else ()
        pretrained = (StageName.PRETRAIN,) if config.train.init_from_pretrain else ()
        return (StageName.INGEST, StageName.ESTIMATORS, *pretrained, *tuned)

    def config_sections(self, config: PipelineConfig) -> tuple[str, ...]:
        refit = ("estimators",) if config.train.refit_estimators_every else ()  # its batch, rate, objective
        return ("seed", "data", "model", "attack", "train", *refit)

    @staticmethod
    def _refit(config, data: StageData) -> list[EstimatorRefit]:
        """`EstimatorRefit` with the estimators section's batch, rate and objective, on its own
        copy of the training split (reading the classifier's would move its epochs)."""
        section = config.train
        if not section.refit_estimators_every:
            return []
        estimators = config.estimators
        train = data.split("train", estimators.batch_size, augment=config.data.augment, seed=config.seed + 1)
        return [
            EstimatorRefit(
                train,
                every=section.refit_estimators_every,
                epochs=section.refit_epochs,
                learning_rate=estimators.learning_rate,
                objective=estimators.objective,
                steps_per_epoch=data.steps_per_epoch(estimators.batch_size),
            )
        ]

    def run(self, context: StageContext, inputs: Inputs) -> list[Artifact]:
        config, section = context.config, context.config.train
        alpha, lam, learning_rate = section.alpha, section.lam, section.learning_rate
        if section.use_tuned:
            tuned = TuningResult.load(inputs[StageName.TUNE]["hyperparameters"]).best
            alpha, lam = tuned.alpha, tuned.lam
            learning_rate = tuned.learning_rate or learning_rate
            print(f"[train] using the tuned alpha={alpha:.4g}, lambda={lam:.4g}, learning rate={learning_rate:.4g}")
        estimators = EstimatorFiles.of(inputs[StageName.ESTIMATORS]["estimators"])
        data = StageData(inputs[StageName.INGEST]["dataset"])
        steps_per_epoch = data.steps_per_epoch(section.batch_size)

        def make_model(classifier: keras.Model) -> MIDefenseModel:
            return mi_defense_model(config, classifier, estimators, steps_per_epoch, alpha=alpha, lam=lam)

        initial = None
        if section.init_from_pretrain:
            initial = ClassifierFiles.of(inputs[StageName.PRETRAIN]["model"]).best
            print(f"[train] starting from the standard-AT weights of {initial}")
        training = ClassifierTraining(context, section, data)
        trained = training.run(
            make_model, learning_rate=learning_rate, initial_classifier=initial, callbacks=self._refit(config, data)
        )
        summary = training.save(trained, context.output_dir / "model")
        summary.update(alpha=alpha, lam=lam, learning_rate=learning_rate)
        context.log_metrics(training_metrics(summary))
        return [context.artifact("model", ArtifactType.MODEL, "model", **summary)]
