"""MIHealthMonitor: each rule fires on a forced case and stays silent on a healthy run; the
MI metrics are means over the selected samples, not over steps."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits
from toy_models import trained_digits_classifier, trained_digits_estimators

import mi_keras.models.mi_defense_model as mi_defense_module
from mi_keras.attacks import PGD
from mi_keras.callbacks import MIHealthMonitor, MIHealthWarning, health_findings
from mi_keras.mi import MIEstimator
from mi_keras.models import AdversarialModel, MIDefenseModel

ATTACK = PGD(0.1, steps=3, seed=0)


@pytest.fixture(scope="module")
def digits():
    digits = load_digits()
    return (digits.images / 16.0).astype("float32")[..., None], digits.target.astype("int32")


@pytest.fixture(scope="module")
def trained_estimators():
    return trained_digits_estimators()


def trained_copy() -> keras.Model:
    classifier, _, _ = trained_digits_classifier()
    copy = keras.models.clone_model(classifier)
    copy.set_weights(classifier.get_weights())
    return copy


def miat(estimators, **kwargs) -> MIDefenseModel:
    model = MIDefenseModel(trained_copy(), *estimators, **{"attack": ATTACK, "seed": 0, **kwargs})
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    return model


def epoch_end_warnings(monitor: MIHealthMonitor, model) -> tuple[list[str], dict]:
    """Runs the monitor's next epoch end on ``model``; its warnings and the epoch's logs."""
    monitor.set_model(model)
    logs = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        monitor.on_epoch_end(len(monitor.rows), logs)
    return [str(warning.message) for warning in caught if warning.category is MIHealthWarning], logs


def test_a_healthy_miat_run_is_silent_and_logs_its_figures_to_history(digits, trained_estimators):
    _, test_images, test_labels = trained_digits_classifier()
    model = miat(trained_estimators, lam=0.0)
    monitor = MIHealthMonitor((test_images, test_labels), batch_size=64)
    with warnings.catch_warnings():
        warnings.simplefilter("error", MIHealthWarning)
        history = model.fit(*digits, batch_size=64, epochs=1, steps_per_epoch=4, verbose=0, callbacks=[monitor])
    assert monitor.verdict() == {"healthy": True, "epochs_checked": 1, "findings": []}
    logged = history.history
    assert logged["health_natural_mi"][0] > 0 and logged["health_clean_accuracy"][0] > 0.8
    assert 0 < logged["health_gradient_ratio"][0] < 10


def test_a_collapse_to_chance_and_constant_predictions_are_named_with_their_epoch(digits):
    _, test_images, test_labels = trained_digits_classifier()
    model = AdversarialModel(trained_copy(), attack=ATTACK, seed=0)
    monitor = MIHealthMonitor((test_images, test_labels))
    messages, first = epoch_end_warnings(monitor, model)
    assert messages == [] and first["health_clean_accuracy"] > 0.8
    output = model.classifier.layers[-1]
    output.kernel.assign(np.zeros(output.kernel.shape, "float32"))  # every image now gets the bias's class
    messages, logs = epoch_end_warnings(monitor, model)
    assert logs["health_top_prediction_share"] == 1.0
    after = f"after {100 * first['health_clean_accuracy']:.1f}% at epoch 1: the classifier has collapsed"
    assert any(message.startswith("Epoch 2: validation accuracy fell to") and after in message for message in messages)
    assert any(message.startswith("Epoch 2: the classifier predicts one class for 100.0%") for message in messages)
    assert {finding["rule"] for finding in monitor.verdict()["findings"]} == {"collapse", "constant_predictions"}


def test_estimators_blind_to_the_logits_are_called_inert(trained_estimators):
    _, test_images, test_labels = trained_digits_classifier()
    blind = MIEstimator.from_config(trained_estimators[0].get_config())
    blind.build((None, 8, 8, 1), (None, 10))
    blind.set_weights(trained_estimators[0].get_weights())
    for weight in blind.global_network.weights:  # the global features no longer depend on the logits
        if weight.path.endswith("kernel"):
            weight.assign(np.zeros(weight.shape, "float32"))
    model = miat([blind, trained_estimators[1]], lam=0.0)
    messages, logs = epoch_end_warnings(MIHealthMonitor((test_images, test_labels), batch_size=64), model)
    assert logs["health_natural_mi"] <= 0
    assert len(messages) == 1 and "the MI terms are inert" in messages[0] and messages[0].startswith("Epoch 1:")


def test_a_one_sample_selection_carrying_the_lambda_term_is_called_dominant(trained_estimators, monkeypatch):
    """With one selected sample the cosines give no gradient and the selected mean of the lambda
    term rides on that sample alone."""
    _, test_images, test_labels = trained_digits_classifier()
    original = mi_defense_module.selection_masks

    def first_sample_only(clean_logits, adversarial_logits, labels, selection):
        masks = original(clean_logits, adversarial_logits, labels, selection)
        return {**masks, "fooled": tf.one_hot(0, tf.shape(labels)[0])}

    monkeypatch.setattr(mi_defense_module, "selection_masks", first_sample_only)
    model = miat(trained_estimators, lam=1.0)
    messages, logs = epoch_end_warnings(MIHealthMonitor((test_images, test_labels), batch_size=64), model)
    assert logs["health_gradient_ratio"] > 10
    assert [m for m in messages if "gradient" in m] == [
        f"Epoch 1: the MI term's gradient is {logs['health_gradient_ratio']:.1f}x the base loss's (limit 10x): "
        "the MI term, not the classification loss, drives training; lower alpha or lam."
    ]


def test_gradient_norms_leave_the_model_as_they_found_it(trained_estimators):
    _, test_images, test_labels = trained_digits_classifier()
    model = MIDefenseModel(
        keras.Sequential(
            [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.BatchNormalization(), keras.layers.Dense(10)]
        ),
        *trained_estimators,
        attack=ATTACK,
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    before = [variable.numpy().copy() for variable in model.variables]
    first = model.loss_gradient_norms((test_images[:64], test_labels[:64]))
    assert all(np.array_equal(b, v.numpy()) for b, v in zip(before, model.variables))
    assert model.loss_gradient_norms((test_images[:64], test_labels[:64])) == first


def test_findings_are_computed_from_a_history_alone():
    rows = [
        {"epoch": 1, "health_clean_accuracy": 0.6, "health_chance_accuracy": 0.1, "health_top_prediction_share": 0.2},
        {"epoch": 2, "health_clean_accuracy": 0.1, "health_chance_accuracy": 0.1, "health_top_prediction_share": 0.3},
        {"epoch": 3, "health_clean_accuracy": 0.1, "health_chance_accuracy": 0.1, "health_top_prediction_share": 0.3},
    ]
    (finding,) = health_findings(rows)
    assert (finding["rule"], finding["epoch"], finding["epochs"]) == ("collapse", 2, 2)
    assert health_findings(rows[:1]) == [] and health_findings([{"epoch": 1}]) == []


def test_one_constant_first_epoch_is_no_finding_but_two_are():
    constant = {"health_clean_accuracy": 0.1, "health_chance_accuracy": 0.1, "health_top_prediction_share": 1.0}
    learning = {"health_clean_accuracy": 0.5, "health_chance_accuracy": 0.1, "health_top_prediction_share": 0.2}
    assert health_findings([{"epoch": 1, **constant}, {"epoch": 2, **learning}]) == []
    (finding,) = health_findings([{"epoch": 1, **constant}, {"epoch": 2, **constant}])
    assert (finding["rule"], finding["epoch"]) == ("constant_predictions", 2)


def test_mi_metrics_average_over_selected_samples_not_over_steps(digits, trained_estimators, monkeypatch):
    """Two steps, the first selecting nothing: the epoch's MI means must equal the second
    step's, not half of it (a step with no selected sample is no evidence of zero MI)."""
    images, labels = digits
    original = mi_defense_module.selection_masks

    def only_label_three(clean_logits, adversarial_logits, y, selection):
        return {
            **original(clean_logits, adversarial_logits, y, selection),
            "fooled": tf.cast(tf.equal(y, 3), tf.float32),
        }

    monkeypatch.setattr(mi_defense_module, "selection_masks", only_label_three)
    order = np.r_[np.flatnonzero(labels != 3)[:64], np.arange(64, 128)]
    epoch_images, epoch_labels = images[order], labels[order]
    assert (epoch_labels[:64] != 3).all() and (epoch_labels[64:] == 3).sum() >= 2

    def frozen_model():  # SGD(0): both steps see the same weights
        model = miat(trained_estimators, lam=0.1, attack=PGD(0.1, steps=3, random_start="none"))
        model.compile(optimizer=keras.optimizers.SGD(0.0))
        return model

    epoch = frozen_model().fit(epoch_images, epoch_labels, batch_size=64, shuffle=False, epochs=1, verbose=0)
    second = frozen_model().train_on_batch(epoch_images[64:], epoch_labels[64:], return_dict=True)
    for name in ("natural_mi", "adversarial_mi", "mi_loss"):
        assert epoch.history[name][0] == pytest.approx(second[name], rel=1e-5), name
    assert epoch.history["steps_under_2_selected"][0] == 0.5
    assert epoch.history["selected_per_step"][0] == pytest.approx((epoch_labels[64:] == 3).sum() / 2)
