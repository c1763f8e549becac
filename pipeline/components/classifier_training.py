"""Trains a zoo classifier inside a training wrapper: optional clean warm-up, then resumable AT."""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shutil
from collections.abc import Callable

import keras

from mi_keras.callbacks import MIHealthMonitor
from mi_keras.models.architectures import build_classifier
from pipeline.components.artifacts import ClassifierFiles
from pipeline.components.builders import classifier_optimizer
from pipeline.components.resumable_fit import FitResult, ResumableFit
from pipeline.components.stage_data import StageData
from pipeline.orchestration.stage import StageContext
from pipeline.settings import TrainingConfig


@dataclasses.dataclass
class TrainedClassifier:
    """The outcome of `ClassifierTraining.run`: the classifier (last epoch) and the fit record."""

    classifier: keras.Model
    fit: FitResult


class ClassifierTraining:
    """Builds the configured classifier and trains it in a training wrapper, resumably.

    ``warmup_epochs`` clean cross-entropy epochs come first (the official code's warm-up;
    their weights are kept in the work folder, so a resumed run does not repeat them),
    then the wrapper (standard AT or MIAT) trains for ``epochs`` with
    `ResumableFit`: per-epoch backups, NaN guard, best epoch by validation
    ``(clean + PGD) / 2``, TensorBoard, and `mi_keras.callbacks.MIHealthMonitor` on the
    validation split (its verdict goes into the summary, hence the export metadata).

    Example:
    ```python
    training = ClassifierTraining(context, context.config.pretrain, data)
    trained = training.run(lambda classifier: AdversarialModel(classifier, attack=PGD(0.3)))
    training.save(trained, context.output_dir / "model")
    ```

    Args:
        context: the running stage's context.
        section: the stage's `TrainingConfig`.
        data: the ingested splits.
    """

    def __init__(self, context: StageContext, section: TrainingConfig, data: StageData):
        self.context = context
        self.section = section
        self.data = data

    def run(
        self,
        make_model: Callable[[keras.Model], keras.Model],
        learning_rate: float | None = None,
        initial_classifier: pathlib.Path | None = None,
        callbacks: list[keras.callbacks.Callback] = (),
    ) -> TrainedClassifier:
        """Trains; ``make_model(classifier)`` returns the (uncompiled) training wrapper.

        Args:
            make_model: wraps the classifier for adversarial training.
            learning_rate: overrides the section's initial learning rate (tuned values).
            initial_classifier: a saved classifier (``.keras``) of the same architecture
                whose weights replace the fresh initialisation.
            callbacks: more callbacks of the adversarial epochs (after the health monitor).
        """
        config, section = self.context.config, self.section
        keras.utils.set_random_seed(config.seed)
        train = self.data.split("train", section.batch_size, augment=config.data.augment, seed=config.seed)
        validation = self.data.evaluation_split("validation", section.batch_size)
        steps_per_epoch = self.data.steps_per_epoch(section.batch_size)
        with self.context.strategy.scope():
            classifier = build_classifier(
                config.model.architecture, self.data.image_shape, self.data.num_classes, **config.model.options
            )
            if initial_classifier is not None:
                classifier.set_weights(keras.saving.load_model(initial_classifier).get_weights())
            if section.warmup_epochs:
                self._warm_up(classifier, train, steps_per_epoch, learning_rate)
            model = make_model(classifier)
            model.compile(optimizer=classifier_optimizer(section, steps_per_epoch, learning_rate))
        fit = ResumableFit(
            self.context.work_dir / "adversarial", self.context.tensorboard_dir, self.context.verbose
        ).fit(
            model,
            train,
            section.epochs,
            validation_data=validation,
            classifier=classifier,
            callbacks=[MIHealthMonitor(validation, batch_size=max(2, section.batch_size)), *callbacks],
            steps_per_epoch=steps_per_epoch,
        )
        return TrainedClassifier(classifier=classifier, fit=fit)

    def _warm_up(self, classifier: keras.Model, train, steps_per_epoch: int, learning_rate: float | None) -> None:
        work_dir = self.context.work_dir / "warmup"
        weights = work_dir / "classifier.weights.h5"
        if weights.exists():
            classifier.load_weights(weights)
            return
        # A functional twin shares the classifier's layers, so the classifier itself is
        # never compiled with the warm-up loss.
        twin = keras.Model(classifier.inputs, classifier.outputs, name="warmup")
        lr = learning_rate or self.section.learning_rate
        twin.compile(
            optimizer=classifier_optimizer(dataclasses.replace(self.section, lr_milestones=()), steps_per_epoch, lr),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="clean_accuracy")],
        )
        ResumableFit(work_dir, self.context.tensorboard_dir / "warmup", self.context.verbose).fit(
            twin, train, self.section.warmup_epochs, steps_per_epoch=steps_per_epoch
        )
        temporary = work_dir / "classifier.tmp.weights.h5"
        classifier.save_weights(temporary)
        os.replace(temporary, weights)

    @staticmethod
    def save(trained: TrainedClassifier, directory: pathlib.Path) -> dict:
        """Writes the `ClassifierFiles` of ``directory``; returns the summary."""
        files = ClassifierFiles(directory)
        directory.mkdir(parents=True)
        trained.classifier.save(files.last)
        shutil.copyfile(trained.fit.best_model_path, files.best)
        summary = trained.fit.summary()
        files.history.write_text(json.dumps(trained.fit.history, indent=1))
        files.summary.write_text(json.dumps(summary, indent=2))
        return summary


def training_metrics(summary: dict) -> dict[str, float]:
    """The numbers of a training summary, for the metadata store (the health verdict is a record)."""
    return {key: value for key, value in summary.items() if isinstance(value, int | float)}
