"""The KerasTuner HyperModel of MIAT: searches alpha, lambda and optionally the learning rate."""

from __future__ import annotations

import keras_tuner as kt

from mi_keras.models import MIDefenseModel
from mi_keras.models.architectures import build_classifier
from pipeline.components.artifacts import EstimatorFiles
from pipeline.components.builders import classifier_optimizer, mi_defense_model
from pipeline.components.callbacks import SelectionScore
from pipeline.settings import PipelineConfig


class MIATHyperModel(kt.HyperModel):
    """Builds a compiled `MIDefenseModel` per trial from the sampled hyperparameters.

    Search space (from ``config.tune``): ``alpha`` log-uniform in ``[alpha_min, alpha_max]``
    (the MI-loss weight, paper: 5), ``lam`` uniform in ``[lam_min, lam_max]`` (the
    MI-difference weight, paper: 0.1) and, with ``tune_learning_rate``, ``learning_rate``
    log-uniform in ``[lr_min, lr_max]``. Everything else comes from ``config.train``. The
    frozen estimators are reloaded for every trial, so no trial sees another's state. The
    hyperparameter names are the fields of `TunedHyperparameters`, the tune stage's result.

    Example:
    ```python
    hypermodel = MIATHyperModel(config, (8, 8, 1), 10, EstimatorFiles.of(artifact), steps_per_epoch=20)
    tuner = kt.RandomSearch(hypermodel, objective=kt.Objective("val_adversarial_accuracy", "max"), max_trials=4)
    tuner.search(train, validation_data=validation, epochs=2)
    ```

    Args:
        config: the pipeline config.
        image_shape: ``(H, W, C)`` of the images.
        num_classes: number of classes.
        estimators: the stage-1 estimators.
        steps_per_epoch: training steps per epoch (for the learning-rate milestones).
    """

    def __init__(
        self,
        config: PipelineConfig,
        image_shape: tuple[int, int, int],
        num_classes: int,
        estimators: EstimatorFiles,
        steps_per_epoch: int,
    ):
        super().__init__(name="miat")
        self.config = config
        self.image_shape = tuple(image_shape)
        self.num_classes = num_classes
        self.estimators = estimators
        self.steps_per_epoch = steps_per_epoch

    def build(self, hp: kt.HyperParameters) -> MIDefenseModel:
        tune, train = self.config.tune, self.config.train
        alpha = hp.Float("alpha", tune.alpha_min, tune.alpha_max, sampling="log")
        lam = (
            hp.Float("lam", tune.lam_min, tune.lam_max)
            if tune.lam_max > tune.lam_min
            else hp.Fixed("lam", tune.lam_min)
        )
        learning_rate = (
            hp.Float("learning_rate", tune.lr_min, tune.lr_max, sampling="log")
            if tune.tune_learning_rate
            else train.learning_rate
        )
        classifier = build_classifier(
            self.config.model.architecture, self.image_shape, self.num_classes, **self.config.model.options
        )
        model = mi_defense_model(
            self.config,
            classifier,
            self.estimators,
            self.steps_per_epoch,
            alpha=alpha,
            lam=lam,
        )
        model.compile(optimizer=classifier_optimizer(train, self.steps_per_epoch, learning_rate))
        return model

    def fit(self, hp, model, *args, callbacks=(), **kwargs):
        # The selection score goes first, so the tuner's own callbacks can read it.
        return model.fit(*args, callbacks=[SelectionScore(), *callbacks], **kwargs)
