"""A callback that refits MIAT's MI estimators to the classifier as it trains."""

from __future__ import annotations

import keras

from mi_keras.enums import EstimatorObjective
from mi_keras.models.mi_estimator_trainer import MIEstimatorTrainer
from mi_keras.models.training_utils import freeze


class EstimatorRefit(keras.callbacks.Callback):
    """Every ``every`` epochs, trains a `MIDefenseModel`'s estimators on its current classifier.

    A departure from the paper: Zhou et al. (ICML 2022) freeze the estimators after stage 1,
    trained against the standard-AT model, while stage 2 trains a fresh classifier; nothing
    then keeps the estimators able to read it (`MIHealthMonitor`'s ``inert_mi``). This
    callback runs stage 1 again (`MIEstimatorTrainer`, with the model's attack and
    selection) for ``epochs`` epochs against the classifier as it is, then freezes the
    estimators again; the classifier is not changed. Refitted estimators are model weights,
    so `keras.callbacks.BackupAndRestore` and ``model.save`` keep them. Single device only.

    Example:
    ```python
    import keras
    from mi_keras.attacks import PGD
    from mi_keras.callbacks import EstimatorRefit
    from mi_keras.data import load_dataset
    from mi_keras.mi import MIEstimator
    from mi_keras.models import MIDefenseModel, build_classifier

    train_ds, info = load_dataset("digits", "train", batch_size=32, take=64, seed=0)
    refit_ds, _ = load_dataset("digits", "train", batch_size=32, take=64, seed=1)  # its own copy
    classifier = build_classifier("small_cnn", info.image_shape, info.num_classes, padding="same")
    natural, adversarial = (MIEstimator.for_classifier(info.image_shape, 10, units=16) for _ in range(2))
    model = MIDefenseModel(classifier, natural, adversarial, attack=PGD(eps=0.2, steps=2), lam=0.0)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    model.fit(train_ds, epochs=2, callbacks=[EstimatorRefit(refit_ds, every=2, epochs=1)])  # e.g. every 3 of 100
    ```

    Args:
        train_data: the estimators' training data, batches of (images, labels) of >= 2 samples
            (give it its own dataset object: iterating the classifier's would move its epochs).
        every: refit after every this many epochs.
        epochs: stage-1 epochs per refit.
        learning_rate: Adam's learning rate.
        objective: the stage-1 objective (`EstimatorObjective`).
        steps_per_epoch: batches per refit epoch (None: one pass of ``train_data``).
    """

    def __init__(
        self,
        train_data,
        every: int,
        epochs: int = 1,
        learning_rate: float = 1e-3,
        objective: str | EstimatorObjective = EstimatorObjective.MIM,
        steps_per_epoch: int | None = None,
    ):
        super().__init__()
        if int(every) != every or every < 1 or int(epochs) != epochs or epochs < 1:
            raise ValueError(f"`every` and `epochs` must be integers >= 1; got {every!r} and {epochs!r}.")
        if not learning_rate > 0:
            raise ValueError(f"`learning_rate` must be > 0; got {learning_rate!r}.")
        self.train_data = train_data
        self.every, self.epochs = int(every), int(epochs)
        self.learning_rate = float(learning_rate)
        self.objective = EstimatorObjective.parse(objective, "objective")
        self.steps_per_epoch = steps_per_epoch
        self.refits = 0

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        model = self.model
        estimators = (model.natural_estimator, model.adversarial_estimator)
        for estimator in estimators:
            estimator.trainable = True
        try:
            trainer = MIEstimatorTrainer(
                model.classifier,
                *estimators,
                attack=model.attack,
                objective=self.objective,
                selection=model.selection,
                seed=model.seed + epoch + 1,
            )
            trainer.compile(optimizer=keras.optimizers.Adam(self.learning_rate))
            history = trainer.fit(
                self.train_data, epochs=self.epochs, steps_per_epoch=self.steps_per_epoch, shuffle=False, verbose=0
            )
        finally:
            for estimator in estimators:
                freeze(estimator)
        self.refits += 1
        if logs is not None:
            logs["estimator_refit_loss"] = history.history["loss"][-1]
