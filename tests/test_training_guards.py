"""The library path's guards: non-finite losses, non-finite weights, image dtype and range,
estimator class counts. Each fails with a one-line message that says what to do."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from toy_models import LossPoison

from mi_keras.attacks import PGD
from mi_keras.export import export_classifier
from mi_keras.mi import MIEstimator
from mi_keras.models import AdversarialModel, MIDefenseModel, MIEstimatorTrainer, WMIMModel
from mi_keras.models.non_finite_loss_error import NonFiniteLossError

SHAPE = (8, 8, 1)
IMAGES = np.random.default_rng(0).random((64, *SHAPE), dtype=np.float32)
LABELS = (np.arange(64) % 10).astype(np.int32)


def classifier(num_classes: int = 10) -> keras.Model:
    inputs = keras.Input(SHAPE)
    hidden = keras.layers.Flatten()(keras.layers.Conv2D(4, 3, activation="relu")(inputs))
    return keras.Model(inputs, LossPoison(name="poison")(keras.layers.Dense(num_classes)(hidden)))


def estimator(num_classes: int = 10) -> MIEstimator:
    return MIEstimator.for_classifier(SHAPE, num_classes, units=16)


def mi_defense_model(**kwargs) -> MIDefenseModel:
    model = MIDefenseModel(classifier(), estimator(), estimator(), attack=PGD(0.1, steps=2), seed=0, **kwargs)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    return model


class PoisonAtBatch(keras.callbacks.Callback):
    """Records the trainable weights after every batch and arms the poison before batch ``batch``."""

    def __init__(self, batch: int):
        super().__init__()
        self.batch, self.seen, self.weights_after_last_batch = batch, 0, None

    def on_train_batch_begin(self, batch, logs=None):
        if self.seen == self.batch:
            self.model.classifier.get_layer("poison").offset.assign(float("nan"))
        self.seen += 1

    def on_train_batch_end(self, batch, logs=None):
        self.weights_after_last_batch = [w.numpy().copy() for w in self.model.trainable_variables]


def test_a_nan_loss_stops_fit_before_its_update_and_keeps_the_last_good_weights():
    model = mi_defense_model()
    poison = PoisonAtBatch(batch=3)
    with pytest.raises(
        NonFiniteLossError, match=r"the loss became nan at training step 4; .*last good weights"
    ) as error:
        model.fit(IMAGES, LABELS, batch_size=16, epochs=2, verbose=0, callbacks=[poison])
    assert "\n" not in str(error.value) and error.value.step == 4
    assert int(model.optimizer.iterations) == 3, "the poisoned step must not count as applied"
    for kept, good in zip(model.trainable_variables, poison.weights_after_last_batch):
        np.testing.assert_array_equal(kept.numpy(), good)


def test_the_guard_can_be_turned_off_and_then_keras_applies_every_update():
    model = mi_defense_model(stop_on_non_finite=False)
    model.fit(IMAGES, LABELS, batch_size=16, epochs=1, verbose=0, callbacks=[PoisonAtBatch(batch=1)])
    assert not all(np.isfinite(w.numpy()).all() for w in model.trainable_variables)


def test_save_and_export_refuse_non_finite_weights_naming_the_weight(tmp_path):
    model = mi_defense_model()
    model.classifier.layers[-2].kernel.assign(np.full(model.classifier.layers[-2].kernel.shape, np.inf, "float32"))
    with pytest.raises(ValueError, match=r"Refusing to save .*dense.*kernel.*NaN or infinite"):
        model.save(tmp_path / "model.keras")
    with pytest.raises(ValueError, match=r"Refusing to export .*dense.*kernel.*NaN or infinite"):
        model.export_classifier(tmp_path / "served" / "1")
    with pytest.raises(ValueError, match="Refusing to export"):
        export_classifier(model.classifier, tmp_path / "served" / "1")
    assert not (tmp_path / "model.keras").exists() and not (tmp_path / "served").exists()


@pytest.mark.parametrize(
    "images, message",
    [
        ((IMAGES * 255).astype(np.uint8), r"images are uint8; .*x.astype\('float32'\) / 255"),
        (IMAGES * 255, r"images are outside \[0, 1\] \(got min 0.0\d+, max 25\d.\d+\); .*/ 255"),
        (np.where(IMAGES > 0.99, np.nan, IMAGES), r"images are outside \[0, 1\]"),
    ],
    ids=["uint8", "float_0_255", "nan"],
)
def test_images_that_are_not_floats_in_0_1_fail_the_step_with_what_to_do(images, message):
    model = AdversarialModel(classifier(), attack=PGD(8 / 255, steps=2), seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.05))
    with pytest.raises(ValueError, match=message):
        model.fit(images, LABELS, batch_size=16, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=message):
        model.evaluate(images, LABELS, batch_size=16, verbose=0)


def test_the_estimator_trainer_checks_its_images_too():
    trainer = MIEstimatorTrainer(classifier(), estimator(), estimator(), attack=PGD(8 / 255, steps=2), seed=0)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3))
    with pytest.raises(ValueError, match=r"images are outside \[0, 1\]"):
        trainer.fit(IMAGES * 255, LABELS, batch_size=16, epochs=1, verbose=0)


@pytest.mark.parametrize("model_class", [MIDefenseModel, MIEstimatorTrainer, WMIMModel])
def test_estimators_for_another_class_count_fail_at_construction_naming_both_counts(model_class):
    estimators = (estimator(100),) if model_class is WMIMModel else (estimator(100), estimator(10))
    with pytest.raises(ValueError, match=r"built for 100 logits but the classifier returns 10; .*num_classes=10"):
        model_class(classifier(10), *estimators, attack=PGD(0.1))
