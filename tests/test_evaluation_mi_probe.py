"""The MI probe: the four MI measurements, split into robust and fooled samples."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from toy_models import tiny_probe_classifier, trained_digits_classifier, trained_digits_estimators

from mi_keras.attacks import FGSM
from mi_keras.enums import EstimatorReading
from mi_keras.evaluation.mi_probe import MEASUREMENTS, MIProbe, batch_bounds, control_logits
from mi_keras.mi import MIEstimator


@pytest.fixture(scope="module")
def parts():
    keras.utils.set_random_seed(11)
    classifier = tiny_probe_classifier()
    natural = MIEstimator.for_classifier(input_shape=(8, 8, 1), num_classes=4, units=16)
    adversarial = MIEstimator.for_classifier(input_shape=(8, 8, 1), num_classes=4, units=16)
    rng = np.random.default_rng(5)
    x = rng.uniform(size=(21, 8, 8, 1)).astype("float32")
    # Labels = the clean predictions, so most samples are correct and both groups are filled.
    y = np.argmax(classifier.predict(x, verbose=0), -1).astype("int32")
    y[:3] = (y[:3] + 1) % 4
    return classifier, natural, adversarial, x, y


def test_batches_never_hold_a_single_sample():
    assert batch_bounds(21, 10) == [(0, 10), (10, 21)]
    assert batch_bounds(20, 10) == [(0, 10), (10, 20)]
    assert batch_bounds(3, 2) == [(0, 3)]
    with pytest.raises(ValueError, match=">= 2"):
        MIProbe(None, None, None, FGSM(0.1), batch_size=1)


def test_probe_keeps_n_examples_of_a_slice_and_refuses_a_single_example(parts):
    from mi_keras.evaluation.data_slice import DataSlice

    classifier, natural, adversarial, x, y = parts
    probe = MIProbe(classifier, natural, adversarial, FGSM(0.05), batch_size=10, progress=False)
    data = DataSlice.from_source((x, y))
    assert all(len(values) == 5 for values in probe.measure(data, n_examples=5).values())
    with pytest.raises(ValueError, match="at least 2 examples; got 1"):
        probe.measure(data, n_examples=1)


def test_probe_measures_each_pattern_with_its_estimator(parts, tmp_path):
    classifier, natural, adversarial, x, y = parts
    attack = FGSM(0.05)  # deterministic: the expected values can be recomputed here
    probe = MIProbe(classifier, natural, adversarial, attack, batch_size=10, progress=False)
    per_sample = probe.measure((x, y))
    assert all(len(values) == 21 for values in per_sample.values())

    # Recompute the last batch (11 samples after merging the single leftover) directly.
    batch_x, batch_y = x[10:], y[10:]
    x_adv = attack(classifier, batch_x, batch_y)
    logits, logits_adv = classifier(batch_x, training=False), classifier(x_adv, training=False)
    expected = {
        "natural_mi_natural": natural(batch_x, logits),
        "natural_mi_adversarial": natural(batch_x, logits_adv),
        "adversarial_mi_natural": adversarial(x_adv - batch_x, logits),
        "adversarial_mi_adversarial": adversarial(x_adv - batch_x, logits_adv),
    }
    for name, values in expected.items():
        np.testing.assert_allclose(per_sample[name][10:], values, rtol=1e-4, atol=1e-4, err_msg=name)
    # The two estimators differ, so swapping them would be caught above.
    assert not np.allclose(expected["natural_mi_natural"], adversarial(batch_x, logits), atol=1e-3)

    summary = probe.run((x, y))
    robust, fooled = summary["by_group"]["robust"], summary["by_group"]["fooled"]
    correct = per_sample["correct"]
    assert robust["count"] + fooled["count"] == correct.sum() == 18
    assert robust["count"] > 0 and fooled["count"] > 0
    fooled_mask = correct & ~per_sample["correct_adversarial"]
    assert fooled["natural_mi_adversarial"]["mean"] == pytest.approx(
        per_sample["natural_mi_adversarial"][fooled_mask].mean(), rel=1e-5
    )
    assert summary["measurements"] == list(MEASUREMENTS)

    paths = MIProbe.save(summary, tmp_path / "probe")
    assert json.load(open(paths["json"]))["by_group"]["all"]["count"] == 21
    with open(paths["plot"], "rb") as file:
        assert file.read(8) == b"\x89PNG\r\n\x1a\n"


def test_control_logits_are_a_constant_and_a_rescaled_copy_with_the_same_predictions():
    logits = np.random.default_rng(0).normal(3.0, 4.0, size=(16, 10)).astype("float32")
    controls = control_logits(tf.constant(logits), reference_scale=2.5)
    np.testing.assert_allclose(controls["batch_mean"], np.broadcast_to(logits.mean(0), logits.shape), rtol=1e-5)
    rescaled = controls["rescaled"].numpy()
    np.testing.assert_allclose(rescaled.mean(-1), 0.0, atol=1e-5)
    assert np.sqrt(np.mean(np.square(rescaled))) == pytest.approx(2.5, rel=1e-5)
    np.testing.assert_array_equal(rescaled.argmax(-1), logits.argmax(-1))
    # A collapsed classifier (one logit vector for every image) stays finite: all zeros.
    np.testing.assert_array_equal(control_logits(tf.ones((4, 10)), 2.5)["rescaled"], np.zeros((4, 10)))
    assert set(control_logits(tf.constant(logits), None)) == {"batch_mean"}


def test_constant_logits_read_as_blind(parts):
    classifier, natural, adversarial, x, y = parts
    constant = keras.Sequential([classifier, keras.layers.Rescaling(0.0, offset=1.0)])
    probe = MIProbe(constant, natural, adversarial, FGSM(0.05), batch_size=10, progress=False)
    controls = probe.run((x, y))["logit_controls"]
    # Equal up to float32 round-off (the scores of the two are computed in one stacked call).
    assert abs(controls["raw_gain"]["mean"]) < 1e-6 and controls["reading"] == EstimatorReading.BLIND.value


def test_trained_estimators_read_their_classifier_and_find_a_shifted_copy_out_of_range():
    classifier, x, y = trained_digits_classifier()
    estimators = trained_digits_estimators()
    reference = MIProbe.logit_scale(classifier, x)

    def controls(model):
        probe = MIProbe(model, *estimators, FGSM(0.1), batch_size=100, progress=False, reference_logit_scale=reference)
        return probe.run((x, y))["logit_controls"]

    own = controls(classifier)
    assert own["reading"] == EstimatorReading.READS.value and own["logit_scale"] == pytest.approx(reference)
    assert own["raw_gain"]["mean"] > 2 * own["raw_gain"]["standard_error"] > 0
    # The same predictions, every logit + 50: the estimator reads a fraction of what it did.
    shifted = controls(keras.Sequential([classifier, keras.layers.Rescaling(1.0, offset=50.0)]))
    assert shifted["reading"] == EstimatorReading.OUT_OF_RANGE.value
    assert shifted["rescaled_gain"]["mean"] == pytest.approx(own["rescaled_gain"]["mean"], rel=0.2)
