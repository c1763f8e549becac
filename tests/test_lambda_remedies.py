"""The lambda remedies of docs/lambda.md: each is opt-in, does what it says, and round-trips."""

from __future__ import annotations

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from harness import check_config_round_trip

from mi_keras.attacks import PGD
from mi_keras.enums import MIDifference
from mi_keras.losses.miat_loss import mi_difference
from mi_keras.mi import MIEstimator
from mi_keras.models import MIDefenseModel
from pipeline.orchestration.stage import StageName
from pipeline.settings import load_config, with_overrides
from pipeline.stages.train import Train

SHAPE = (8, 8, 1)


def make_model(**kwargs) -> MIDefenseModel:
    classifier = keras.Sequential([keras.Input(SHAPE), keras.layers.Flatten(), keras.layers.Dense(10)])
    estimators = [MIEstimator.for_classifier(SHAPE, 10, units=16) for _ in range(2)]
    model = MIDefenseModel(classifier, *estimators, attack=PGD(0.5, steps=3, random_start="none"), seed=3, **kwargs)
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    return model


@pytest.fixture
def terms():
    rng = np.random.default_rng(0)
    adversarial = tf.constant(rng.normal(2.0, 1.0, 16), tf.float32)
    natural = tf.constant(rng.normal(-1.0, 1.0, 16), tf.float32)
    selected = tf.constant((rng.random(16) < 0.25).astype(np.float32))
    return adversarial, natural, selected


def test_batch_mean_scales_the_selected_mean_by_the_selected_fraction(terms):
    adversarial, natural, selected = terms
    paper = mi_difference(adversarial, natural, selected, MIDifference.SELECTED_MEAN)
    batch = mi_difference(adversarial, natural, selected, MIDifference.BATCH_MEAN)
    fraction = float(tf.reduce_mean(selected))
    assert 0 < fraction < 1
    np.testing.assert_allclose(float(batch), float(paper) * fraction, rtol=1e-5)


def test_relative_difference_is_scale_free(terms):
    adversarial, natural, selected = terms
    once = mi_difference(adversarial, natural, selected, MIDifference.RELATIVE)
    tenfold = mi_difference(10 * adversarial, 10 * natural, selected, MIDifference.RELATIVE)
    np.testing.assert_allclose(float(once), float(tenfold), rtol=1e-5)
    assert -1 <= float(once) <= 1
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(adversarial)
        small = mi_difference(adversarial, natural, selected, MIDifference.RELATIVE)
        large = mi_difference(10 * adversarial, 10 * natural, selected, MIDifference.RELATIVE)
    # Its gradient no longer grows with the scale of the MI values: d(large)/d(adversarial)
    # equals d(small)/d(adversarial), where the paper's mean would grow tenfold.
    np.testing.assert_allclose(tape.gradient(large, adversarial), tape.gradient(small, adversarial), rtol=1e-4)


def test_lambda_ramps_linearly_with_the_step():
    model = make_model(lam=0.1, lam_ramp_steps=4)
    seen = []
    for step in range(6):
        model.optimizer.iterations.assign(step)
        seen.append(float(model._current_lam()))
    np.testing.assert_allclose(seen, [0.025, 0.05, 0.075, 0.1, 0.1, 0.1], rtol=1e-6)
    assert make_model(lam=0.1)._current_lam() == 0.1  # the paper's constant by default


def test_ramp_changes_the_first_steps_only_through_lambda():
    x = np.random.default_rng(1).random((16, *SHAPE), dtype=np.float32)
    keras.utils.set_random_seed(0)
    ramped = make_model(lam=5.0, lam_ramp_steps=1000)
    y = np.argmax(ramped.predict(x, verbose=0), axis=-1)  # correct on x: the attack selects samples
    keras.utils.set_random_seed(0)
    constant = make_model(lam=5.0)
    keras.utils.set_random_seed(0)
    no_lambda = make_model(lam=0.0)
    steps = [model.train_on_batch(x, y, return_dict=True) for model in (ramped, constant, no_lambda)]
    assert steps[0]["selected_fraction"] > 0
    losses = [step["mi_loss"] for step in steps]
    # At step 0 the ramped lambda is 5 / 1000: its MI loss sits next to lambda 0's, not lambda 5's.
    assert abs(losses[0] - losses[2]) < 0.01 * abs(losses[1] - losses[2])


def test_infonce_scoring_is_bounded_by_log_batch():
    estimator = MIEstimator.for_classifier(SHAPE, 10, units=16)
    rng = np.random.default_rng(2)
    features = estimator.encode(rng.random((8, *SHAPE), dtype=np.float32))
    logits = tf.constant(100 * rng.normal(size=(8, 10)), tf.float32)
    infonce = estimator.score(features, logits, bound="infonce")
    assert float(tf.reduce_max(infonce)) <= math.log(8) + 1e-4
    assert float(tf.reduce_max(tf.abs(estimator.score(features, logits)))) > math.log(8)  # DV is not bounded


def test_remedy_options_round_trip_and_validate():
    model = make_model(lam=0.1, lam_ramp_steps=7, difference="relative", mi_bound="infonce")
    config = model.get_config()
    assert (config["lam_ramp_steps"], config["difference"], config["mi_bound"]) == (7, "relative", "infonce")
    restored = check_config_round_trip(model)
    assert (restored.lam_ramp_steps, restored.difference, restored.mi_bound.value) == (
        7,
        MIDifference.RELATIVE,
        "infonce",
    )
    with pytest.raises(ValueError, match="lam_ramp_steps"):
        make_model(lam_ramp_steps=-1)
    with pytest.raises(ValueError, match="difference"):
        make_model(difference="median")


def test_init_from_pretrain_makes_train_read_the_standard_at_model():
    config = load_config("quickstart")
    assert StageName.PRETRAIN not in Train().upstream(config)
    assert StageName.PRETRAIN in Train().upstream(with_overrides(config, ["train.init_from_pretrain=true"]))


def test_lambda_report_renders_every_measured_run(tmp_path):
    from pipeline.experiments.lambda_remedies import GRADIENT_TERMS, render

    row = {
        "selected": 3,
        "logit_std": 0.02,
        "gradient_norm": {"cross_entropy": 0.2},
        "ratio_to_cross_entropy": {key: 2.0 for key, _ in GRADIENT_TERMS},
        "logit_scaling": {"1.0": 1.5, "30.0": 1.2},
    }
    (tmp_path / "gradients.json").write_text(json.dumps({"measurements": {"young classifier": row}}))
    curve = {
        "overrides": ["train.lam=0.1"],
        "val_clean_accuracy": [0.1, 0.5, 0.8],
        "val_adversarial_accuracy": [0.1, 0.3, 0.4],
    }
    (tmp_path / "curves.json").write_text(json.dumps({"runs": {"relative difference": curve}}))
    report = tmp_path / "docs" / "lambda_measurements.md"
    report.parent.mkdir()
    render(tmp_path, report)
    text = report.read_text()
    assert "| young classifier | 3 | 0.020 | 0.200 |" in text
    assert "| relative difference | `train.lam=0.1` | - | - | - | 80.0 / 40.0 | 80.0 / 40.0 |" in text
    assert (report.parent / "lambda_curves.png").stat().st_size > 0
