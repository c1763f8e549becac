"""The paper's other attacks: TI-DIM (L-inf), DDN and CW-L2 (L2, bounded at eps)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from harness import check_config_round_trip
from toy_models import L2_EPS, LINF_EPS, accuracy

from mi_keras.attacks.cw_l2 import CWL2
from mi_keras.attacks.ddn import DDN
from mi_keras.attacks.geometry import perturbation_norm
from mi_keras.attacks.ti_dim import TIDIM, gaussian_kernel
from mi_keras.objectives import margin


def run(attack, model, x, y):
    return tf.function(lambda a, b: attack(model, a, b))(x, y)


@pytest.mark.parametrize(
    "attack",
    [
        TIDIM(LINF_EPS, steps=10, kernel_size=3, seed=0),
        DDN(L2_EPS, steps=20, seed=0),
        CWL2(L2_EPS, steps=10, seed=0),
    ],
    ids=["ti-dim", "ddn", "cw-l2"],
)
def test_outputs_stay_in_the_ball_and_box_and_fool(digits_classifier, attack):
    model, x, y = digits_classifier
    x_adv = run(attack, model, x, y)
    assert perturbation_norm(x_adv - x, attack.threat_model).numpy().max() <= attack.eps + 1e-5
    assert x_adv.numpy().min() >= 0.0 and x_adv.numpy().max() <= 1.0
    assert accuracy(model, x_adv, y) < accuracy(model, x, y) - 0.2


def test_ti_kernel_is_the_published_gaussian():
    kernel = gaussian_kernel(15, 3.0)
    assert kernel.shape == (15, 15) and kernel.sum() == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(kernel, kernel.T)
    # Sampled at +-3 standard deviations: the edge of the middle row is exp(-9 / 2) of the centre.
    assert kernel[7, 0] / kernel[7, 7] == pytest.approx(np.exp(-4.5), rel=1e-5)
    assert kernel[7, 7] == kernel.max()


def test_ti_smoothing_makes_the_step_spatially_coherent(digits_classifier):
    model, x, y = digits_classifier
    x = 0.5 * x + 0.25  # away from the box, so every pixel moves by +-step

    def sign_flips(kernel_size: int) -> float:
        attack = TIDIM(0.05, step_size=0.05, steps=1, diversity_prob=0.0, kernel_size=kernel_size)
        signs = np.sign(attack(model, x, y).numpy() - x)[..., 0]
        return np.mean(signs[:, :, 1:] != signs[:, :, :-1]) + np.mean(signs[:, 1:] != signs[:, :-1])

    assert sign_flips(7) < 0.8 * sign_flips(1)


def test_ti_dim_with_the_official_sizes_has_no_input_diversity(digits_classifier):
    model, x, y = digits_classifier
    official = TIDIM(LINF_EPS, steps=5, momentum=0.1, diversity_prob=1.0, low=8, high=8, kernel_size=3, seed=0)
    without = TIDIM(LINF_EPS, steps=5, momentum=0.1, diversity_prob=0.0, kernel_size=3)
    np.testing.assert_allclose(run(official, model, x, y).numpy(), run(without, model, x, y).numpy(), atol=1e-6)


def test_ti_dim_diversity_is_seeded(digits_classifier):
    model, x, y = digits_classifier
    first = run(TIDIM(LINF_EPS, steps=6, diversity_prob=1.0, kernel_size=3, seed=4), model, x, y)
    again = run(TIDIM(LINF_EPS, steps=6, diversity_prob=1.0, kernel_size=3, seed=4), model, x, y)
    np.testing.assert_array_equal(first.numpy(), again.numpy())


def test_ddn_shrinks_the_norm_of_the_adversarials_it_finds(digits_classifier):
    model, x, y = digits_classifier
    eps = 2.0  # large enough to fool almost everything: DDN should then shrink the norm
    x_adv = run(DDN(eps, steps=40, seed=0), model, x, y)
    fooled = np.argmax(model(x_adv), -1) != y
    norms = perturbation_norm(x_adv - x, "L2").numpy()
    assert fooled.mean() > 0.9
    assert np.median(norms[fooled]) < 0.6 * eps


def test_cw_l2_raises_the_margin(digits_classifier):
    model, x, y = digits_classifier
    x_adv = run(CWL2(L2_EPS, steps=10, random_start="none"), model, x, y)
    assert np.all(margin(model(x_adv), y).numpy() >= margin(model(x), y).numpy() - 1e-4)


@pytest.mark.parametrize(
    "attack",
    [
        TIDIM(
            0.03,
            step_size=0.01,
            steps=7,
            momentum=0.1,
            diversity_prob=0.3,
            low=30,
            high=36,
            kernel_size=7,
            kernel_sigmas=2.0,
            seed=1,
        ),
        DDN(0.5, steps=30, gamma=0.1, init_norm=0.25, step_size=0.5, final_step_size=0.05, seed=2),
        CWL2(0.5, step_size=0.1, steps=30, random_start="none", restarts=2, seed=3),
    ],
    ids=["ti-dim", "ddn", "cw-l2"],
)
def test_config_round_trips(attack):
    check_config_round_trip(attack)


def test_published_defaults():
    ti_dim = TIDIM(8 / 255)
    assert (ti_dim.kernel_size, ti_dim.kernel_sigmas, ti_dim.diversity_prob, ti_dim.momentum) == (
        15,
        3.0,
        0.5,
        1.0,
    )
    assert ti_dim.threat_model == "Linf" and DDN(0.5).threat_model == CWL2(0.5).threat_model == "L2"
    assert (DDN(0.5).gamma, DDN(0.5).init_norm) == (0.05, 0.5)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: TIDIM(0.1, step_size=0.2), "`step_size`"),
        (lambda: TIDIM(0.1, momentum=-1.0), "`momentum`"),
        (lambda: TIDIM(0.1, diversity_prob=1.5), "`diversity_prob`"),
        (lambda: TIDIM(0.1, low=40, high=32), "`low`"),
        (lambda: TIDIM(0.1, kernel_size=4), "`kernel_size`"),
        (lambda: TIDIM(0.1, kernel_sigmas=0.0), "`kernel_sigmas`"),
        (lambda: DDN(0.5, gamma=1.0), "`gamma`"),
        (lambda: DDN(0.5, init_norm=0.6), "`init_norm`"),
        (lambda: DDN(0.5, final_step_size=2.0), "`final_step_size`"),
        (lambda: DDN(0.5, steps=0), "`steps`"),
        (lambda: CWL2(0.5, step_size=0.6), "`step_size`"),
    ],
)
def test_bad_arguments_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_ti_dim_rejects_non_square_images_with_diversity():
    inputs = keras.Input((8, 6, 1))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(inputs)))
    with pytest.raises(ValueError, match="square"):
        TIDIM(0.1, steps=1)(model, np.zeros((2, 8, 6, 1), np.float32), np.zeros(2, np.int32))
