"""FWA (Wu et al., 2020): the Wasserstein ball, checked against an exact linear program."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from harness import check_config_round_trip
from scipy.optimize import linprog
from toy_models import accuracy

from mi_keras.attacks import FWA, PGD
from mi_keras.attacks.transport import (
    identity_plan,
    project_plan,
    project_rows_on_simplex,
    transport_cost,
    transported_image,
    window_cost,
)
from mi_keras.enums import ThreatModel
from mi_keras.evaluation.attack_spec import AttackSpec

EPS = 0.1  # on 8x8 digits: FWA-10 fools about half of the test samples


def exact_wasserstein(source: np.ndarray, target: np.ndarray) -> float:
    """W1 between two equal-mass 2-D images under the Euclidean pixel distance (HiGHS LP)."""
    source, target = source.astype(np.float64), target.astype(np.float64)
    target = target * source.sum() / target.sum()  # float32 round-off would make it infeasible
    height, width = source.shape
    positions = np.stack(np.meshgrid(np.arange(height), np.arange(width), indexing="ij"), -1)
    positions = positions.reshape(-1, 2)
    cost = np.linalg.norm(positions[:, None] - positions[None], axis=-1).ravel()
    n = height * width
    rows = np.kron(np.eye(n), np.ones(n))  # sum_j pi_ij = source_i
    columns = np.kron(np.ones(n), np.eye(n))  # sum_i pi_ij = target_j
    solution = linprog(
        cost,
        A_eq=np.vstack([rows, columns]),
        b_eq=np.concatenate([source.ravel(), target.ravel()]),
        bounds=(0, None),
        method="highs",
    )
    assert solution.status == 0, solution.message
    return float(solution.fun)


def run(attack, model, x, y):
    return tf.function(lambda a, b: attack(model, a, b))(x, y).numpy()


@pytest.fixture(scope="module")
def fwa_outputs(request):
    from toy_models import trained_digits_classifier

    model, x, y = trained_digits_classifier()
    return model, x, y, run(FWA(EPS, steps=10), model, x, y)


def test_output_is_within_the_wasserstein_radius_by_an_exact_solver(fwa_outputs):
    _, x, _, x_adv = fwa_outputs
    np.testing.assert_allclose(x_adv.sum(axis=(1, 2, 3)), x.sum(axis=(1, 2, 3)), rtol=1e-5)
    assert x_adv.min() >= 0.0
    distances, radii = [], []
    for index in range(6):
        distances.append(exact_wasserstein(x[index, ..., 0], x_adv[index, ..., 0]))
        radii.append(EPS * x[index].sum())
    distances, radii = np.array(distances), np.array(radii)
    assert np.all(distances <= radii * (1 + 1e-3)), (distances, radii)
    # The attack spends a real part of its budget (the check above is not vacuous).
    assert distances.mean() > 0.3 * radii.mean()


def test_fwa_beats_random_transport_of_the_same_cost(fwa_outputs):
    model, x, y, x_adv = fwa_outputs
    kernel_size = 4
    cost, inside = (tf.constant(value) for value in window_cost(8, 8, kernel_size))
    x_t = tf.constant(x)
    budget = EPS * tf.reduce_sum(x_t, axis=[1, 2, 3])
    noise = tf.random.stateless_uniform([len(x), 8, 8, 1, kernel_size**2], seed=[0, 1])
    random_plan = project_plan(identity_plan(x_t, kernel_size) + noise, x_t, cost, inside, budget, 30, 1e-6, 1e-7)
    spent = (transport_cost(random_plan, cost) / budget).numpy()
    assert spent.min() > 0.95  # the random plan uses the whole budget, like the attack
    x_random = transported_image(random_plan, kernel_size).numpy()
    clean = accuracy(model, x, y)
    assert accuracy(model, x_random, y) > clean - 0.1
    assert accuracy(model, x_adv, y) < accuracy(model, x_random, y) - 0.2


def test_simplex_projection_is_the_closest_point():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(50, 9)).astype(np.float32)
    mass = rng.uniform(0, 2, size=50).astype(np.float32)
    projected = project_rows_on_simplex(tf.constant(values), tf.constant(mass)).numpy()
    assert projected.min() >= 0.0
    np.testing.assert_allclose(projected.sum(-1), mass, atol=1e-5)
    # Any other point of the simplex (here random ones) is no closer to the input.
    for _ in range(20):
        other = rng.dirichlet(np.ones(9), size=50) * mass[:, None]
        assert np.all(np.linalg.norm(values - projected, axis=-1) <= np.linalg.norm(values - other, axis=-1) + 1e-5)


def test_projection_keeps_a_feasible_plan_and_the_row_sums():
    x = tf.random.stateless_uniform([3, 5, 5, 2], seed=[1, 2])
    cost, inside = (tf.constant(value) for value in window_cost(5, 5, 3))
    budget = 0.05 * tf.reduce_sum(x, axis=[1, 2, 3])
    target = identity_plan(x, 3) + tf.random.stateless_normal([3, 5, 5, 2, 9], seed=[3, 4])
    plan = project_plan(target, x, cost, inside, budget, 15, 1e-4, 1e-4)
    assert np.all(transport_cost(plan, cost).numpy() <= budget.numpy() + 1e-4)
    np.testing.assert_allclose(tf.reduce_sum(plan, -1).numpy(), x.numpy(), atol=1e-5)
    assert np.all(tf.boolean_mask(plan, ~tf.broadcast_to(inside, plan.shape)).numpy() == 0.0)


def test_clip_keeps_the_box(digits_classifier):
    model, x, y = digits_classifier
    x_adv = run(FWA(EPS, steps=3, clip=True), model, x[:16], y[:16])
    assert 0.0 <= x_adv.min() and x_adv.max() <= 1.0


def test_the_contract_states_each_attacks_ball():
    assert FWA(0.1).threat_model == ThreatModel.WASSERSTEIN
    with pytest.raises(ValueError, match="bounds the threat model"):
        PGD(0.1, threat_model="Wasserstein")
    assert AttackSpec.FWA40.ball("Linf") == ThreatModel.WASSERSTEIN
    assert AttackSpec.PGD40.ball("Linf") == ThreatModel.LINF
    attack = AttackSpec.FWA40.build(8 / 255, "Linf", seed=0)
    assert (attack.steps, attack.kernel_size, attack.dual_steps) == (40, 4, 15)
    assert attack.step_size == pytest.approx(2 / 255)
    check_config_round_trip(attack)
    with pytest.raises(ValueError, match="defined for threat model"):
        AttackSpec.FWA40.build(0.5, "L2")


@pytest.mark.parametrize(
    "kwargs, message",
    [({"kernel_size": 1}, "kernel_size"), ({"steps": 0}, "steps"), ({"step_size": -1}, "step_size")],
)
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FWA(0.1, **kwargs)


def test_evaluation_cli_runs_fwa_and_the_report_names_its_ball(digits_classifier, tmp_path, capsys):
    from mi_keras.evaluation.__main__ import main

    model, x, y = digits_classifier
    model.save(tmp_path / "digits.keras")
    np.savez(tmp_path / "data.npz", x=x[:24], y=y[:24])
    code = main(
        [
            "--model", str(tmp_path / "digits.keras"), "--npz", str(tmp_path / "data.npz"),
            "--eps", str(EPS), "--attacks", "pgd10,fwa10", "--batch-size", "24",
            "--masking-examples", "12", "--square-queries", "0", "--no-progress",
            "--no-next-to-model", "--out", str(tmp_path / "report"),
        ]
    )  # fmt: skip
    markdown = capsys.readouterr().out
    assert code == 0
    assert "| eps | clean | PGD-10 | FWA-10 | ensemble |" in markdown
    assert "FWA-10 bounds a Wasserstein ball" in markdown
    assert "PGD-10 bounds" not in markdown
