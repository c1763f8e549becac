"""APGD and APGD-T: the published schedule, strength against PGD, validity, seeds, XLA, config."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from harness import check_config_round_trip
from toy_models import L2_EPS, LINF_EPS, accuracy

from mi_keras.attacks.apgd import APGD, checkpoint_schedule
from mi_keras.attacks.apgd_targeted import APGDTargeted, ranked_target
from mi_keras.attacks.geometry import perturbation_norm
from mi_keras.attacks.pgd import PGD
from mi_keras.objectives import cross_entropy


def test_checkpoints_match_the_paper_for_100_iterations():
    is_checkpoint, window = checkpoint_schedule(100)
    # p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06); w_j = ceil(p_j N).
    fractions, previous, current = [], 0.0, 0.22
    while current <= 1.0:
        fractions.append(current)
        previous, current = current, current + max(current - previous - 0.03, 0.06)
    expected = [int(np.ceil(round(p * 100, 6))) for p in fractions]
    assert list(np.flatnonzero(is_checkpoint) + 1) == expected == [22, 41, 57, 70, 80, 87, 93, 99]
    assert list(window[is_checkpoint]) == [22, 19, 16, 13, 10, 7, 6, 6]


def test_step_halving_homes_in_on_a_peak_inside_the_ball():
    # A 1-D loss peaked at `peak` (inside the ball, never fooling): fixed steps of 2 eps would
    # bounce between the ball's ends; the checkpoints' halving converges to the peak.
    peak = tf.constant([[0.7123], [0.3377], [0.62]])

    def peaked_model(x, training=False):
        return tf.concat([tf.zeros_like(x), -10.0 * tf.abs(x - peak) - 0.5], axis=1)

    x = tf.fill([3, 1], 0.5)
    x_adv = APGD(0.3, steps=100, seed=0)(peaked_model, x, tf.zeros(3, tf.int32))
    np.testing.assert_allclose(x_adv.numpy(), peak.numpy(), atol=0.002)


@pytest.mark.parametrize("threat_model, eps", [("Linf", LINF_EPS), ("L2", L2_EPS)])
def test_apgd_ce_reaches_at_least_the_loss_of_pgd(digits_classifier, threat_model, eps):
    model, x, y = digits_classifier
    pgd = PGD(eps, steps=20, threat_model=threat_model, random_start="uniform", seed=0)
    apgd = APGD(eps, threat_model=threat_model, steps=20, seed=0)
    x_pgd, x_apgd = pgd(model, x, y), apgd(model, x, y)
    logits_pgd, logits_apgd = model(x_pgd), model(x_apgd)
    robust_pgd = np.argmax(logits_pgd, -1) == y
    robust_apgd = np.argmax(logits_apgd, -1) == y
    assert robust_apgd.mean() <= robust_pgd.mean()
    # On samples neither attack fools, APGD returns its highest-loss point.
    both = robust_pgd & robust_apgd
    assert both.sum() > 20
    loss_pgd = cross_entropy(logits_pgd, y).numpy()[both].mean()
    loss_apgd = cross_entropy(logits_apgd, y).numpy()[both].mean()
    assert loss_apgd >= 0.99 * loss_pgd


@pytest.mark.parametrize("threat_model, eps", [("Linf", LINF_EPS), ("L2", L2_EPS)])
@pytest.mark.parametrize(
    "make_attack",
    [
        lambda eps, tm: APGD(eps, threat_model=tm, steps=15, seed=1),
        lambda eps, tm: APGD(eps, threat_model=tm, loss="dlr", steps=15, restarts=2, seed=1),
        lambda eps, tm: APGDTargeted(eps, threat_model=tm, steps=10, n_target_classes=3, seed=1),
    ],
    ids=["apgd-ce", "apgd-dlr", "apgd-t"],
)
def test_outputs_stay_in_the_ball_and_box_and_fool(digits_classifier, make_attack, threat_model, eps):
    model, x, y = digits_classifier
    x_adv = make_attack(eps, threat_model)(model, x, y)
    norms = perturbation_norm(x_adv - x, threat_model).numpy()
    assert norms.max() <= eps + 1e-5
    assert x_adv.numpy().min() >= 0.0 and x_adv.numpy().max() <= 1.0
    assert accuracy(model, x_adv, y) < accuracy(model, x, y) - 0.2


def test_same_seed_same_result_other_seed_other_start(digits_classifier):
    model, x, y = digits_classifier
    first = APGD(LINF_EPS, steps=10, seed=7)(model, x, y)
    again = APGD(LINF_EPS, steps=10, seed=7)(model, x, y)
    other = APGD(LINF_EPS, steps=10, seed=8)(model, x, y)
    np.testing.assert_array_equal(first.numpy(), again.numpy())
    assert np.abs(first.numpy() - other.numpy()).max() > 0.0


def test_more_restarts_never_raise_robust_accuracy(digits_classifier):
    model, x, y = digits_classifier
    once = APGD(0.06, loss="dlr", steps=10, restarts=1, seed=3)(model, x, y)
    thrice = APGD(0.06, loss="dlr", steps=10, restarts=3, seed=3)(model, x, y)
    robust_once = np.argmax(model(once), -1) == y
    robust_thrice = np.argmax(model(thrice), -1) == y
    # The first restart is the same run; later restarts only attack the survivors.
    assert not np.any(robust_thrice & ~robust_once)


def test_apgd_compiles_with_xla_and_inside_tf_function(digits_classifier):
    model, x, y = digits_classifier
    attack = APGD(LINF_EPS, steps=10, seed=0)
    x_xla = tf.function(lambda a, b: attack(model, a, b), jit_compile=True)(x, y)
    x_graph = tf.function(lambda a, b: attack(model, a, b))(x, y)
    assert perturbation_norm(x_xla - x, attack.threat_model).numpy().max() <= LINF_EPS + 1e-5
    assert abs(accuracy(model, x_xla, y) - accuracy(model, x_graph, y)) <= 0.05
    assert accuracy(model, x_xla, y) < accuracy(model, x, y) - 0.2


def test_apgd_on_a_model_without_gradients_does_not_crash(digits_classifier):
    model, x, y = digits_classifier
    inputs = keras.Input((8, 8, 1))
    hidden_gradient = keras.Model(inputs, model(keras.layers.Lambda(tf.stop_gradient)(inputs)))
    x_adv = APGD(LINF_EPS, steps=5, seed=0)(hidden_gradient, x, y)
    assert accuracy(model, x_adv, y) >= accuracy(model, x, y) - 0.05


def test_ranked_target_is_the_runner_up_then_the_next():
    logits = tf.constant([[0.0, 5.0, 3.0, 4.0], [9.0, 1.0, 2.0, 0.0]])
    np.testing.assert_array_equal(ranked_target(logits, 1).numpy(), [3, 2])
    np.testing.assert_array_equal(ranked_target(logits, 2).numpy(), [2, 1])


def test_apgd_t_needs_enough_classes():
    inputs = keras.Input((4,))
    three_classes = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    x, y = np.zeros((2, 4), np.float32), np.zeros(2, np.int32)
    with pytest.raises(ValueError, match="at least 4 classes"):
        APGDTargeted(0.1, n_target_classes=2)(three_classes, x, y)
    with pytest.raises(ValueError, match="3 classes"):
        APGD(0.1, loss="dlr")(keras.Model(inputs, keras.layers.Dense(2)(inputs)), x, y)


@pytest.mark.parametrize(
    "attack",
    [
        APGD(0.03, threat_model="L2", loss="dlr", steps=50, restarts=5, rho=0.5, seed=4, name="a"),
        APGDTargeted(0.03, steps=100, restarts=2, n_target_classes=4, seed=1),
    ],
)
def test_config_round_trips(attack):
    check_config_round_trip(attack)


def test_published_defaults():
    config = APGDTargeted(8 / 255).get_config()
    assert (config["steps"], config["restarts"], config["n_target_classes"], config["rho"]) == (
        100,
        1,
        9,
        0.75,
    )
    assert APGD(8 / 255).get_config()["loss"] == "ce"


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"loss": "kl"}, "`loss`"),
        ({"loss": "margin"}, "`loss`"),
        ({"steps": 0}, "`steps`"),
        ({"restarts": 0}, "`restarts`"),
        ({"rho": 1.0}, "`rho`"),
        ({"threat_model": "L1"}, "threat_model"),
    ],
)
def test_bad_arguments_raise(arguments, message):
    with pytest.raises(ValueError, match=message):
        APGD(0.1, **arguments)


def test_bad_target_count_raises():
    with pytest.raises(ValueError, match="`n_target_classes`"):
        APGDTargeted(0.1, n_target_classes=0)
