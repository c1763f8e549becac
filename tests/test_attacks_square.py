"""Square: validity, no use of gradients, the published schedule and patterns, seeds, config."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from harness import check_config_round_trip
from toy_models import L2_EPS, LINF_EPS, accuracy

from mi_keras.attacks.geometry import perturbation_norm
from mi_keras.attacks.pgd import PGD
from mi_keras.attacks.square import Square, _eta, schedule_level
from mi_keras.objectives import margin


def zero_gradient_copy(model) -> keras.Model:
    """The same logits, but the input gradient is exactly zero everywhere (gradient masking)."""
    inputs = keras.Input((8, 8, 1))
    hidden = keras.layers.Lambda(lambda t: 0.0 * t + tf.stop_gradient(t))(inputs)
    return keras.Model(inputs, model(hidden))


def square_attack(attack, model, x, y):
    return tf.function(lambda a, b: attack(model, a, b))(x, y)


@pytest.mark.parametrize("threat_model, eps", [("Linf", LINF_EPS), ("L2", L2_EPS)])
def test_outputs_stay_in_the_ball_and_box_and_fool(digits_classifier, threat_model, eps):
    model, x, y = digits_classifier
    x_adv = square_attack(Square(eps, threat_model, queries=300, seed=0), model, x, y)
    assert perturbation_norm(x_adv - x, threat_model).numpy().max() <= eps + 1e-5
    assert x_adv.numpy().min() >= 0.0 and x_adv.numpy().max() <= 1.0
    assert accuracy(model, x_adv, y) < accuracy(model, x, y) - 0.1


def test_square_needs_no_gradient_where_pgd_fails(digits_classifier):
    model, x, y = digits_classifier
    masked = zero_gradient_copy(model)
    clean = accuracy(model, x, y)
    x_pgd = PGD(LINF_EPS, steps=10)(masked, x, y)
    assert accuracy(model, x_pgd, y) == pytest.approx(clean, abs=0.01)
    attack = Square(LINF_EPS, queries=200, seed=5)
    x_masked = square_attack(attack, masked, x, y)
    x_plain = square_attack(attack, model, x, y)
    # Square only reads logits, so hiding the gradient changes nothing at all.
    np.testing.assert_allclose(x_masked.numpy(), x_plain.numpy(), atol=1e-6)
    assert accuracy(model, x_masked, y) < clean - 0.1


def test_more_queries_never_raise_robust_accuracy(digits_classifier):
    model, x, y = digits_classifier
    short = square_attack(Square(LINF_EPS, queries=50, seed=2), model, x, y)
    longer = square_attack(Square(LINF_EPS, queries=300, seed=2), model, x, y)
    robust_short = np.argmax(model(short), -1) == y
    robust_longer = np.argmax(model(longer), -1) == y
    # Same seed: the longer search is the shorter one continued, and only accepts improvements.
    assert not np.any(robust_longer & ~robust_short)
    assert robust_longer.sum() < robust_short.sum()
    both = robust_short & robust_longer
    margins_short = margin(model(short), y).numpy()[both]
    margins_longer = margin(model(longer), y).numpy()[both]
    assert np.all(margins_longer >= margins_short - 1e-6) and np.any(margins_longer > margins_short)


def test_same_seed_same_result(digits_classifier):
    model, x, y = digits_classifier
    attack = Square(L2_EPS, "L2", queries=40, seed=11)
    first = square_attack(attack, model, x, y)
    again = square_attack(Square(L2_EPS, "L2", queries=40, seed=11), model, x, y)
    other = square_attack(Square(L2_EPS, "L2", queries=40, seed=12), model, x, y)
    np.testing.assert_array_equal(first.numpy(), again.numpy())
    assert np.abs(first.numpy() - other.numpy()).max() > 0.0


@pytest.mark.parametrize("threat_model, eps", [("Linf", LINF_EPS), ("L2", L2_EPS)])
def test_a_sample_search_does_not_depend_on_the_other_samples(digits_classifier, threat_model, eps):
    model, x, y = digits_classifier
    attack = Square(eps, threat_model, queries=60, seed=3)
    together = square_attack(attack, model, x, y).numpy()
    alone = square_attack(attack, model, x[:50], y[:50]).numpy()
    # Up to float32 round-off (the model's kernels may differ with the batch size): a search
    # that depended on the other samples would move pixels by the order of eps.
    np.testing.assert_allclose(together[:50], alone, rtol=0, atol=1e-6)


def test_each_sample_draws_its_own_square():
    # Unlike AutoAttack's and ART's code (one position per batch), positions are per sample.
    x = tf.fill([64, 8, 8, 1], 0.5)
    propose = Square(0.1, queries=10)._linf_proposal(tf.constant([4]))
    changed = propose(x, x, 0, tf.constant([0, 1], tf.int64), tf.range(64, dtype=tf.int64), 64) != x
    windows = {tuple(np.argwhere(sample[..., 0].numpy())[0]) for sample in changed}
    assert len(windows) > 5


def test_p_schedule_is_the_published_one():
    iterations = [
        0,
        10,
        11,
        50,
        51,
        200,
        201,
        500,
        501,
        1000,
        1001,
        2000,
        2001,
        4000,
        4001,
        6001,
        8001,
    ]
    levels = [schedule_level(i).numpy() for i in iterations]
    assert levels == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 8, 9]
    # Rescaled to 1,000 queries, iteration 100 is the 1,000th of 10,000.
    assert schedule_level(100, rescale_to=1000).numpy() == schedule_level(1000).numpy() == 4


@pytest.mark.parametrize("side", [3, 5, 7])
def test_l2_pattern_is_a_unit_norm_dipole(side):
    pattern = _eta(side)
    assert np.sum(pattern**2) == pytest.approx(1.0, rel=1e-5)
    assert np.all(pattern[: side // 2] > 0) and np.all(pattern[side // 2 :] < 0)
    # The weights decrease away from each half's centre.
    centre_row = side // 4
    assert pattern[centre_row, side // 2] == pattern[: side // 2].max()


def test_l2_square_rejects_tiny_images():
    inputs = keras.Input((4, 4, 1))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(inputs)))
    with pytest.raises(ValueError, match="5 x 5"):
        Square(0.5, "L2", queries=2)(model, np.zeros((2, 4, 4, 1), np.float32), np.zeros(2, np.int32))


def test_config_round_trips_and_defaults():
    attack = Square(0.5, "L2", queries=123, p_init=0.3, restarts=2, rescale_schedule=True, seed=9)
    check_config_round_trip(attack)
    defaults = Square(8 / 255).get_config()
    assert (defaults["queries"], defaults["p_init"], defaults["rescale_schedule"]) == (
        5000,
        0.8,
        False,
    )


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"queries": 0}, "`queries`"),
        ({"p_init": 0.0}, "`p_init`"),
        ({"p_init": 1.5}, "`p_init`"),
        ({"restarts": 0}, "`restarts`"),
        ({"eps": 0.0}, "`eps`"),
    ],
)
def test_bad_arguments_raise(arguments, message):
    with pytest.raises(ValueError, match=message):
        Square(**{"eps": 0.1, **arguments})
