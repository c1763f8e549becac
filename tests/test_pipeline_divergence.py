"""A NaN in the loss stops training with a clear message and leaves loadable checkpoints."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from toy_models import LossPoison

from mi_keras.attacks import PGD
from mi_keras.models import AdversarialModel
from mi_keras.models.architectures import build_classifier
from pipeline.components.callbacks import TrainingDivergedError
from pipeline.components.resumable_fit import ResumableFit


class ArmPoison(keras.callbacks.Callback):
    """Puts a NaN into every logit, hence into the loss, from epoch ``epoch`` (0-based) on."""

    def __init__(self, poison: LossPoison, epoch: int):
        super().__init__()
        self.poison = poison
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            self.poison.offset.assign(float("nan"))


def _poisonable_classifier() -> tuple[keras.Model, LossPoison]:
    inputs = keras.Input((8, 8, 1))
    poison = LossPoison(name="poison")
    classifier = keras.Model(inputs, poison(build_classifier("small_cnn", (8, 8, 1), 2, padding="same")(inputs)))
    return classifier, poison


def _data() -> tuple[tf.data.Dataset, tf.data.Dataset, np.ndarray]:
    images = np.random.default_rng(0).random((64, 8, 8, 1), dtype=np.float32)
    labels = (images.mean(axis=(1, 2, 3)) > 0.5).astype(np.int32)
    train = tf.data.Dataset.from_tensor_slices((images, labels)).batch(16, drop_remainder=True)
    return train, tf.data.Dataset.from_tensor_slices((images, labels)).batch(32), images


def _model(classifier: keras.Model) -> AdversarialModel:
    model = AdversarialModel(classifier, attack=PGD(0.1, steps=2, seed=0), seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    return model


def test_nan_loss_stops_training_with_a_message_and_keeps_the_last_good_checkpoint(tmp_path):
    train, validation, images = _data()
    classifier, poison = _poisonable_classifier()
    model = _model(classifier)
    with pytest.raises(TrainingDivergedError) as error:
        ResumableFit(tmp_path / "work", verbose=0).fit(
            model,
            train,
            epochs=4,
            validation_data=validation,
            classifier=classifier,
            callbacks=[ArmPoison(poison, epoch=1)],
        )

    message = str(error.value)
    assert "Training diverged: the loss became nan at epoch 2, batch 1" in message
    best = tmp_path / "work" / "best" / "classifier.keras"
    assert str(best) in message and str(tmp_path / "work" / "backup") in message
    assert (error.value.epoch, error.value.batch, error.value.where()["loss"]) == (2, 1, "nan")
    fit = error.value.fit  # the finished epoch stays usable: a study scores it
    assert fit.epochs == 1 and fit.best_epoch == 1 and fit.best_model_path == best
    assert fit.summary()["best_val_clean_accuracy"] == fit.history[0]["val_clean_accuracy"]
    assert json.loads((tmp_path / "work" / "backup" / "training_metadata.json").read_text())["epoch"] == 1
    assert json.loads((tmp_path / "work" / "best" / "best.json").read_text())["epoch"] == 1
    restored = keras.saving.load_model(best)
    assert all(np.isfinite(weight).all() for weight in restored.get_weights())
    assert np.isfinite(restored.predict(images, verbose=0)).all()
    # The live model took the poisoned step; the checkpoint did not.
    assert not all(np.isfinite(weight.numpy()).all() for weight in classifier.weights)
    # The epoch-1 backup loads into a fresh model, so a fixed rerun resumes from it.
    fresh = _model(_poisonable_classifier()[0])
    fresh.optimizer.build(fresh.trainable_variables)
    fresh.load_weights(tmp_path / "work" / "backup" / "latest.weights.h5")
    np.testing.assert_allclose(
        fresh.classifier.predict(images, verbose=0), restored.predict(images, verbose=0), rtol=1e-5, atol=1e-5
    )


def test_a_finite_run_is_not_stopped_and_reports_its_best_epoch(tmp_path):
    train, validation, _ = _data()
    classifier, _ = _poisonable_classifier()
    model = _model(classifier)
    result = ResumableFit(tmp_path / "work", verbose=0).fit(
        model, train, epochs=3, validation_data=validation, classifier=classifier
    )
    assert result.epochs == 3 and result.resumed_from_epoch == 0
    scores = [row["val_selection_score"] for row in result.history]
    assert result.best_epoch == int(np.argmax(scores)) + 1 and result.best_score == pytest.approx(max(scores))
    for row in result.history:
        assert row["val_selection_score"] == pytest.approx(
            (row["val_clean_accuracy"] + row["val_adversarial_accuracy"]) / 2
        )
