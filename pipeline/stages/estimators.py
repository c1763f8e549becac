"""Estimators: MIAT stage 1, the natural and adversarial MI estimators of the frozen AT model."""

from __future__ import annotations

import keras

from mi_keras.mi import MIEstimator, default_units
from mi_keras.models import MIEstimatorTrainer
from pipeline.components.artifacts import ClassifierFiles, EstimatorFiles
from pipeline.components.builders import estimator_optimizer, training_attack
from pipeline.components.resumable_fit import ResumableFit
from pipeline.components.stage_data import StageData
from pipeline.orchestration.artifact import Artifact, ArtifactType
from pipeline.orchestration.stage import Inputs, Stage, StageContext, StageName, register_stage
from pipeline.settings import PipelineConfig


@register_stage("estimators", order=30)
class Estimators(Stage):
    """Trains ``phi_n`` and ``phi_a`` against the standard-AT classifier, frozen.

    Zhou et al., "Improving Adversarial Robustness via Mutual Information Estimation"
    (ICML 2022), section 3.2.2: adversarial examples are crafted on the fly with the same
    threat model as MIAT, and the estimators are trained with Adam on the ``"contrastive"``
    objective (the official code's Eq. 5) or ``"mim"`` (Eq. 4). As in the code, the last
    epoch is kept. Per epoch, TensorBoard gets the losses and the estimators' MI on robust
    and fooled samples, on the training batches and on the validation split.
    Output ``estimators``: `EstimatorFiles` (the two Keras layers, loadable with
    ``keras.saving.load_model``, and ``history.json``).
    """

    def upstream(self, config: PipelineConfig) -> tuple[StageName, ...]:
        return (StageName.INGEST, StageName.PRETRAIN)

    def config_sections(self, config: PipelineConfig) -> tuple[str, ...]:
        return ("seed", "data", "attack", "estimators")

    def run(self, context: StageContext, inputs: Inputs) -> list[Artifact]:
        config, section = context.config, context.config.estimators
        data = StageData(inputs[StageName.INGEST]["dataset"])
        keras.utils.set_random_seed(config.seed)
        train = data.split("train", section.batch_size, augment=config.data.augment, seed=config.seed)
        validation = data.evaluation_split("validation", section.batch_size)
        with context.strategy.scope():
            target = keras.saving.load_model(ClassifierFiles.of(inputs[StageName.PRETRAIN]["model"]).best)
            target.trainable = False
            units = section.units or default_units(target, data.image_shape)  # once, for both
            estimators = [
                MIEstimator.for_classifier(
                    data.image_shape,
                    data.num_classes,
                    units=units,
                    bound=section.bound,
                    dv=section.dv,
                    logit_normalization=section.logit_normalization,
                    name=name,
                )
                for name in ("natural_estimator", "adversarial_estimator")
            ]
            trainer = MIEstimatorTrainer(
                target,
                *estimators,
                attack=training_attack(config.attack, config.seed),
                objective=section.objective,
                selection=section.selection,
                seed=config.seed,
            )
            trainer.build((None, *data.image_shape))
            trainer.compile(optimizer=estimator_optimizer(section, data.steps_per_epoch(section.batch_size)))
        fit = ResumableFit(context.work_dir / "estimators", context.tensorboard_dir, context.verbose).fit(
            trainer,
            train,
            section.epochs,
            validation_data=validation,
            steps_per_epoch=data.steps_per_epoch(section.batch_size),
        )
        EstimatorFiles(context.output_dir / "estimators").save(
            trainer.natural_estimator, trainer.adversarial_estimator, fit.history
        )
        last = {key: value for key, value in fit.history[-1].items() if key != "epoch"}
        context.log_metrics(last)
        return [
            context.artifact(
                "estimators",
                ArtifactType.ESTIMATORS,
                "estimators",
                units=units,
                epochs=fit.epochs,
                resumed_from_epoch=fit.resumed_from_epoch,
                **last,
            )
        ]
