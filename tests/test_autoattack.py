"""AutoAttack (and FAB, its boundary attack): composition, published lists, validity, seeds."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from harness import check_config_round_trip
from scipy.optimize import linprog, minimize
from toy_models import L2_EPS, LINF_EPS, accuracy, trained_digits_classifier

from mi_keras.attacks.apgd import APGD
from mi_keras.attacks.apgd_targeted import APGDTargeted
from mi_keras.attacks.attack import Attack
from mi_keras.attacks.auto_attack import AutoAttack
from mi_keras.attacks.fab import FAB, project_l2_hyperplane_box, project_linf_hyperplane_box
from mi_keras.attacks.fgsm import FGSM
from mi_keras.attacks.geometry import perturbation_norm
from mi_keras.attacks.square import Square


def small_auto_attack(threat_model="Linf", eps=LINF_EPS, **kwargs) -> AutoAttack:
    """The standard list with test-sized budgets."""
    return AutoAttack(eps, threat_model, steps=10, queries=60, n_target_classes=3, batch_size=64, **kwargs)


def robust_mask(model, x_adv, y) -> np.ndarray:
    return np.argmax(model(x_adv), -1) == y


def test_standard_and_plus_lists_are_the_published_ones():
    standard = AutoAttack(8 / 255).attacks
    assert [a.name for a in standard] == ["apgd-ce", "apgd-t", "fab-t", "square"]
    apgd, apgd_t, fab_t, square = standard
    assert (type(apgd), apgd.loss.value, apgd.steps, apgd.restarts) == (APGD, "ce", 100, 1)
    assert (type(apgd_t), apgd_t.steps, apgd_t.restarts, apgd_t.n_target_classes) == (
        APGDTargeted,
        100,
        1,
        9,
    )
    assert (type(fab_t), fab_t.targeted, fab_t.steps, fab_t.restarts, fab_t.n_target_classes) == (
        FAB,
        True,
        100,
        1,
        9,
    )
    assert (fab_t.alpha_max, fab_t.eta, fab_t.beta) == (0.1, 1.05, 0.9)
    assert (type(square), square.queries, square.p_init) == (Square, 5000, 0.8)
    plus = AutoAttack(8 / 255, version="plus").attacks
    assert [a.name for a in plus] == ["apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t"]
    assert [a.restarts for a in plus] == [5, 5, 5, 1, 1, 1]
    assert plus[2].targeted is False and plus[5].targeted is True


def test_ensemble_robust_set_is_the_intersection_of_the_attacks(digits_classifier):
    model, x, y = digits_classifier
    # Deterministic attacks: each sample's outcome does not depend on who else is attacked.
    attacks = [
        FGSM(LINF_EPS, name="fgsm"),
        FAB(LINF_EPS, steps=10, targeted=True, n_target_classes=1, name="fab-t"),
    ]
    result = AutoAttack(LINF_EPS, version="custom", attacks=attacks, seed=0).run(model, x, y)
    clean = robust_mask(model, x, y)
    singles = [robust_mask(model, attack(model, x, y), y) for attack in attacks]
    np.testing.assert_array_equal(result.robust, clean & np.logical_and.reduce(singles))
    assert all(result.robust_accuracy <= single.mean() for single in singles)
    # Not vacuous: the attacks disagree on some samples.
    assert np.any(singles[0] != singles[1])


@pytest.fixture(scope="module", params=[("Linf", LINF_EPS), ("L2", L2_EPS)], ids=["Linf", "L2"])
def standard_run(request):
    """The standard list (test budgets) run once per threat model: attack, result, callbacks."""
    model, x, y = trained_digits_classifier()
    threat_model, eps = request.param
    auto_attack = small_auto_attack(threat_model, eps, seed=0)
    reported = []
    result = auto_attack.run(model, x, y, callback=lambda *report: reported.append(report))
    return auto_attack, result, reported


def test_standard_runs_in_order_and_outputs_are_valid(digits_classifier, standard_run):
    model, x, y = digits_classifier
    auto_attack, result, reported = standard_run
    assert [name for name, _, _ in reported] == ["apgd-ce", "apgd-t", "fab-t", "square"]
    assert [robust for _, robust, _ in reported] == list(result.robust_accuracy_after.values())
    after = list(result.robust_accuracy_after.values())
    assert after == sorted(after, reverse=True) and after[-1] == result.robust_accuracy
    assert result.robust_accuracy < result.clean_accuracy - 0.2
    np.testing.assert_array_equal(result.robust, robust_mask(model, result.x_adv, y))
    eps, threat_model = auto_attack.eps, auto_attack.threat_model
    assert perturbation_norm(result.x_adv - x, threat_model).numpy().max() <= eps + 1e-5
    assert result.x_adv.min() >= 0.0 and result.x_adv.max() <= 1.0


@pytest.mark.parametrize("standard_run", [("Linf", LINF_EPS)], ids=["Linf"], indirect=True)
def test_standard_is_at_least_as_strong_as_each_of_its_attacks(digits_classifier, standard_run):
    model, x, y = digits_classifier
    auto_attack, result, _ = standard_run
    for attack in auto_attack.attacks:
        # Each attack alone on all samples, with its own randomness: one sample of slack.
        alone = robust_mask(model, attack(model, x, y, seed=tf.constant([0, 1], tf.int64)), y).mean()
        assert result.robust_accuracy <= alone + 1.0 / len(y)


def test_same_seed_same_result(digits_classifier, standard_run):
    model, x, y = digits_classifier
    auto_attack, first, _ = standard_run
    again = auto_attack.run(model, x, y)
    np.testing.assert_array_equal(first.x_adv, again.x_adv)
    replay = auto_attack.run(model, x, y, seed=first.seed)
    np.testing.assert_array_equal(first.x_adv, replay.x_adv)
    other = auto_attack.run(model, x, y, seed=tf.constant([1, 2], tf.int64))
    assert np.abs(other.x_adv - first.x_adv).max() > 0.0


def test_a_new_instance_with_the_same_seed_gives_the_same_result(digits_classifier):
    model, x, y = digits_classifier

    def fresh_run():
        attacks = [APGD(LINF_EPS, steps=5), Square(LINF_EPS, queries=20)]
        return AutoAttack(LINF_EPS, version="custom", attacks=attacks, seed=3).run(model, x, y)

    first, again = fresh_run(), fresh_run()
    assert first.robust_accuracy == again.robust_accuracy
    np.testing.assert_array_equal(first.x_adv, again.x_adv)


def test_inside_tf_function_the_ensemble_still_holds(digits_classifier):
    model, x, y = digits_classifier
    x, y = x[:64], y[:64]
    attacks = [APGD(LINF_EPS, steps=5), FAB(LINF_EPS, steps=5, targeted=True, n_target_classes=2)]
    auto_attack = AutoAttack(LINF_EPS, version="custom", attacks=attacks, seed=0)
    x_adv = tf.function(lambda a, b: auto_attack(model, a, b))(x, y)
    assert perturbation_norm(x_adv - x, auto_attack.threat_model).numpy().max() <= LINF_EPS + 1e-5
    eager = auto_attack.run(model, x, y)
    assert abs(accuracy(model, x_adv, y) - eager.robust_accuracy) <= 0.05


class _OutOfBall(Attack):
    def perturb(self, model, x, y, seed):
        return tf.clip_by_value(x + 2 * self.eps, 0.0, 1.0)


def test_an_attack_leaving_the_ball_is_reported(digits_classifier):
    model, x, y = digits_classifier
    auto_attack = AutoAttack(LINF_EPS, version="custom", attacks=[_OutOfBall(LINF_EPS, name="bad")])
    with pytest.raises(RuntimeError, match="bad returned points outside"):
        auto_attack.run(model, x, y)


def test_config_round_trips():
    custom = AutoAttack(0.3, version="custom", attacks=[APGD(0.3, steps=7), Square(0.3, queries=9)], seed=1)
    for auto_attack in (
        AutoAttack(0.5, "L2", version="plus", steps=20, queries=100, seed=2),
        custom,
    ):
        restored = check_config_round_trip(auto_attack)
        assert [a.get_config() for a in restored.attacks] == [a.get_config() for a in auto_attack.attacks]


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"version": "rand"}, "`?version`?"),
        ({"attacks": [APGD(0.1)]}, "only used with version='custom'"),
        ({"version": "custom"}, "non-empty list"),
        ({"version": "custom", "attacks": [APGD(0.2)]}, "must use eps=0.1"),
        ({"version": "custom", "attacks": [APGD(0.1, "L2")]}, "threat_model='Linf'"),
        ({"version": "custom", "attacks": ["apgd"]}, "Attack objects"),
        ({"batch_size": 0}, "`batch_size`"),
        ({"steps": 0}, "`steps`"),
    ],
)
def test_bad_arguments_raise(arguments, message):
    with pytest.raises(ValueError, match=message):
        AutoAttack(0.1, **arguments)


# FAB: its exact projections, validity, and arguments.


def _reference_projection(point, normal, offset, threat_model) -> float:
    """min ||d|| subject to <w, t + d> = b and 0 <= t + d <= 1, by SciPy."""
    dims = len(point)
    bounds = [(-point[j], 1 - point[j]) for j in range(dims)]
    if threat_model == "Linf":
        cost = np.r_[np.zeros(dims), 1.0]
        bound_rows = np.r_[np.c_[np.eye(dims), -np.ones(dims)], np.c_[-np.eye(dims), -np.ones(dims)]]
        solution = linprog(
            cost,
            A_ub=bound_rows,
            b_ub=np.zeros(2 * dims),
            A_eq=np.r_[normal, 0.0][None],
            b_eq=[offset - normal @ point],
            bounds=bounds + [(0, None)],
        )
        return solution.x[-1]
    solution = minimize(
        lambda d: d @ d,
        np.zeros(dims),
        jac=lambda d: 2 * d,
        constraints=[{"type": "eq", "fun": lambda d: normal @ (point + d) - offset}],
        bounds=bounds,
        method="SLSQP",
    )
    return float(np.sqrt(solution.x @ solution.x))


@pytest.mark.parametrize("threat_model", ["Linf", "L2"])
def test_fab_projections_are_the_exact_minimum_norm_points(rng, threat_model):
    points = rng.uniform(0, 1, (8, 12)).astype("float32")
    normals = rng.normal(size=(8, 12)).astype("float32")
    offsets = (np.sum(normals * points, 1) + rng.normal(size=8)).astype("float32")
    project = project_linf_hyperplane_box if threat_model == "Linf" else project_l2_hyperplane_box
    steps = project(tf.constant(points), tf.constant(normals), tf.constant(offsets)).numpy()
    projected = points + steps
    np.testing.assert_allclose(np.sum(normals * projected, 1), offsets, atol=1e-4)
    assert projected.min() >= -1e-6 and projected.max() <= 1 + 1e-6
    norms = perturbation_norm(tf.constant(steps), threat_model).numpy()
    expected = [_reference_projection(*row, threat_model) for row in zip(points, normals, offsets, strict=True)]
    np.testing.assert_allclose(norms, expected, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize(
    "threat_model, eps, targeted",
    [("Linf", LINF_EPS, False), ("L2", L2_EPS, True)],
    ids=["fab-Linf", "fab-t-L2"],
)
def test_fab_finds_adversarials_inside_the_ball(digits_classifier, threat_model, eps, targeted):
    model, x, y = digits_classifier
    attack = FAB(eps, threat_model, steps=10, restarts=2, targeted=targeted, n_target_classes=2, seed=0)
    x_adv = tf.function(lambda a, b: attack(model, a, b))(x, y)
    assert perturbation_norm(x_adv - x, threat_model).numpy().max() <= eps + 1e-5
    assert x_adv.numpy().min() >= 0.0 and x_adv.numpy().max() <= 1.0
    assert accuracy(model, x_adv, y) < accuracy(model, x, y) - 0.2
    # FAB returns either the input or a point that fools the model.
    changed = np.any(x_adv.numpy() != x, axis=(1, 2, 3))
    assert not np.any(changed & robust_mask(model, x_adv, y))


def test_fab_config_round_trips_and_bad_arguments():
    fab = FAB(
        0.5,
        "L2",
        steps=30,
        restarts=3,
        targeted=True,
        n_target_classes=4,
        alpha_max=0.2,
        eta=1.1,
        beta=0.8,
    )
    check_config_round_trip(fab)
    for arguments, message in [
        ({"alpha_max": 1.5}, "`alpha_max`"),
        ({"eta": 0.9}, "`eta`"),
        ({"beta": 0.0}, "`beta`"),
        ({"steps": 0}, "`steps`"),
        ({"n_target_classes": 0}, "`n_target_classes`"),
    ]:
        with pytest.raises(ValueError, match=message):
            FAB(0.1, **arguments)
