"""The robustness suite, its report (JSON schema, Markdown, plots), the masking checks, transfer."""

from __future__ import annotations

import json
import logging

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits

from mi_keras.attacks import FGSM
from mi_keras.evaluation import (
    AttackSpec,
    CheckStatus,
    GradientMaskingChecker,
    MaskingCheck,
    RobustnessReport,
    RobustnessSuite,
    evaluate_robustness,
    report_markdown,
    save_report,
    validate_report,
)
from mi_keras.evaluation import report as report_module
from mi_keras.evaluation.transfer import evaluate_transfer

EPS = [0.1, 0.2]
CHECKER = GradientMaskingChecker(n_examples=64, square_queries=300, tolerance=0.04)


def _digits():
    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")[..., None]
    return x, digits.target.astype("int32")


def _classifier(seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 1))
    hidden = keras.layers.Conv2D(16, 3, activation="relu")(inputs)
    logits = keras.layers.Dense(10)(keras.layers.Flatten()(hidden))
    return keras.Model(inputs, logits, name=f"digits_cnn_{seed}")


def _trained(seed: int, x, y) -> keras.Model:
    model = _classifier(seed)
    model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=12, batch_size=64, verbose=0)
    return model


@pytest.fixture(scope="module")
def digits():
    x, y = _digits()
    return (x[:1500], y[:1500]), (x[1500:1628], y[1500:1628])


@pytest.fixture(scope="module")
def trained_model(digits):
    (x_train, y_train), _ = digits
    return _trained(0, x_train, y_train)


@pytest.fixture(scope="module")
def report(trained_model, digits):
    _, test = digits
    suite = RobustnessSuite(
        EPS,
        attacks="fgsm,pgd20,pgd40,cw_inf",
        batch_size=64,
        seed=0,
        masking_checker=CHECKER,
        progress=False,
    )
    return suite.evaluate(trained_model, test, description="sklearn digits 1500:1628")


def _masked(model: keras.Model) -> keras.Model:
    """The same classifier behind a stop-gradient: identical outputs, zero input gradient."""
    inputs = keras.Input((8, 8, 1))
    # 0 * x keeps the input connected, so attacks get an all-zero gradient (not None).
    hidden = keras.layers.Lambda(lambda t: keras.ops.stop_gradient(t) + 0.0 * t)(inputs)
    return keras.Model(inputs, model(hidden), name="stop_gradient_cnn")


def test_report_json_has_the_documented_schema(report):
    payload = json.loads(report.to_json())
    validate_report(payload)
    # One source: the schema is derived from the declarations, and each declares its keys.
    schema = report_module.report_schema()
    assert set(schema) == set(payload) and set(schema["model"]) == set(payload["model"])
    owners = [
        report_module.RobustnessReport,
        report_module.AttackResult,
        report_module.EnsembleResult,
        report_module.MaskingCheckResult,
        report_module.ModelDescription,
        report_module.DataDescription,
        report_module.Timings,
        report_module.Versions,
    ]
    for owner in owners:
        for key in report_module.json_fields(owner):
            assert f"{key}:" in owner.__doc__, f"{owner.__name__}.{key} is not documented in its docstring"
    assert "masking_passed:" in report_module.RobustnessReport.__doc__
    assert [r["name"] for r in payload["results"]] == ["FGSM", "PGD-20", "PGD-40", "CW-inf"] * 2
    assert payload["results"][2]["config"]["steps"] == 40
    assert payload["data"]["n_examples"] == 128 and len(payload["data"]["sha256"]) == 64
    assert payload["eps"] == EPS and payload["threat_model"] == "Linf"
    assert RobustnessReport.from_json(report.to_json()).to_dict() == report.to_dict()

    broken = [
        lambda p: p.pop("ensemble"),
        lambda p: p["results"][0].update(robust_accuracy=1.5),
        lambda p: p["results"][0].update(n_robust="3"),
        lambda p: p["model"].update(extra=1),
        lambda p: p["masking_checks"][0].update(status="ok"),
        lambda p: p.update(masking_passed=not p["masking_passed"]),
    ]
    for breaks in broken:
        payload = json.loads(report.to_json())
        breaks(payload)
        with pytest.raises(ValueError):
            validate_report(payload)


def test_markdown_and_plots_are_written(report, tmp_path):
    paths = save_report(report, tmp_path / "report")
    assert set(paths) == {"json", "markdown", "accuracy_plot", "examples_plot"}
    for key in ("accuracy_plot", "examples_plot"):
        with open(paths[key], "rb") as file:
            content = file.read()
        assert content[:8] == b"\x89PNG\r\n\x1a\n" and len(content) > 5000
    markdown = open(paths["markdown"]).read()
    assert "| eps | clean | FGSM | PGD-20 | PGD-40 | CW-inf | ensemble |" in markdown
    pgd40 = report.result(AttackSpec.PGD40, 0.2).robust_accuracy
    assert f"{100 * pgd40:.2f}" in markdown
    validate_report(json.load(open(paths["json"])))


def test_attacks_lower_accuracy_and_ensemble_is_the_minimum(report, trained_model, digits):
    assert report.clean_accuracy > 0.8
    for eps in EPS:
        attacked = [report.result(spec, eps).robust_accuracy for spec in report.attacks]
        ensemble = next(entry for entry in report.ensemble if entry.eps == eps)
        assert ensemble.robust_accuracy <= min(attacked)
        assert ensemble.attacks == [report.result(spec, eps).name for spec in report.attacks]  # display names
        assert max(attacked) < report.clean_accuracy
    # Ensemble is the intersection, not the minimum: recompute it from the examples' attacks.
    _, (x, y) = digits
    fgsm_only = evaluate_robustness(
        trained_model,
        (x, y),
        eps=0.2,
        attacks=["fgsm"],
        batch_size=64,
        progress=False,
        masking_checker=CHECKER,
        masking_checks=False,
    )
    assert fgsm_only.ensemble[0].robust_accuracy == fgsm_only.result(AttackSpec.FGSM, 0.2).robust_accuracy
    assert fgsm_only.result(AttackSpec.FGSM, 0.2).robust_accuracy == report.result(AttackSpec.FGSM, 0.2).robust_accuracy


def test_autoattack_reports_its_attacks_and_bounds_the_ensemble(trained_model, digits):
    _, (x, y) = digits
    suite = RobustnessSuite([0.1], attacks="square,autoattack", batch_size=32, progress=False, masking_checks=False)
    report = suite.evaluate(trained_model, (x[:32], y[:32]))
    auto_attack = report.result(AttackSpec.AUTOATTACK, 0.1)
    after = auto_attack.details["robust_accuracy_after"]
    assert list(after) == ["apgd-ce", "apgd-t", "fab-t", "square"]
    cumulative = list(after.values())
    assert all(later <= earlier for earlier, later in zip(cumulative, cumulative[1:], strict=False))
    assert after["square"] == auto_attack.robust_accuracy
    assert auto_attack.config["version"] == "standard" and auto_attack.config["steps"] == 100
    assert report.ensemble[0].robust_accuracy <= min(
        auto_attack.robust_accuracy, report.result(AttackSpec.SQUARE, 0.1).robust_accuracy
    )
    assert auto_attack.robust_accuracy < report.clean_accuracy


@pytest.mark.parametrize(
    "threat_model, eps, attacks",
    [
        ("Linf", 0.1, "fgsm,cw_inf,apgd_dlr,ti_dim"),
        ("L2", 0.5, "pgd20,cw_l2,ddn,apgd_ce"),
    ],
)
def test_every_attack_spec_runs_inside_its_ball(trained_model, digits, threat_model, eps, attacks):
    _, (x, y) = digits
    x, y = x[:8], y[:8]
    suite = RobustnessSuite(
        eps,
        threat_model=threat_model,
        attacks=attacks,
        batch_size=8,
        progress=False,
        masking_checks=False,
    )
    report = suite.evaluate(trained_model, (x, y))
    assert len(report.results) == len(attacks.split(","))
    for spec, (images, _) in report.adversarial_examples.items():
        delta = (images - x).reshape(len(x), -1)
        norms = np.abs(delta).max(-1) if threat_model == "Linf" else np.linalg.norm(delta, axis=-1)
        assert norms.max() <= eps + 1e-5, spec
        assert images.min() >= 0.0 and images.max() <= 1.0, spec
        assert report.result(spec, eps).robust_accuracy <= report.clean_accuracy, spec


def test_same_seed_gives_the_same_numbers(trained_model, digits):
    _, test = digits

    def run(seed):
        suite = RobustnessSuite([0.15], attacks="pgd20", batch_size=64, seed=seed, progress=False, masking_checks=False)
        result = suite.evaluate(trained_model, test)
        return (
            result.result(AttackSpec.PGD20, 0.15).robust_accuracy,
            result.adversarial_examples[AttackSpec.PGD20][0],
        )

    accuracy_a, images_a = run(seed=0)
    accuracy_b, images_b = run(seed=0)
    _, images_c = run(seed=1)
    assert accuracy_a == accuracy_b
    np.testing.assert_array_equal(images_a, images_b)
    assert not np.array_equal(images_a, images_c)


def test_masking_checks_pass_on_a_normally_trained_model(report):
    statuses = {check.name: check.status for check in report.masking_checks}
    assert set(statuses) == {check.value for check in MaskingCheck}
    assert CheckStatus.FAILED.value not in statuses.values(), report_markdown(report)
    assert statuses[MaskingCheck.NON_ZERO_GRADIENT.value] == CheckStatus.PASSED.value
    assert statuses[MaskingCheck.DECREASES_WITH_EPS.value] == CheckStatus.PASSED.value
    assert report.masking_passed and "WARNING" not in report_markdown(report)


def test_masking_checks_flag_a_stop_gradient_model(trained_model, digits, caplog):
    _, test = digits
    masked = _masked(trained_model)
    np.testing.assert_allclose(masked(test[0][:8]), trained_model(test[0][:8]), atol=1e-6)
    with caplog.at_level(logging.WARNING, logger="mi_keras.evaluation"):
        report = evaluate_robustness(
            masked,
            test,
            eps=[0.2],
            attacks="pgd40",
            batch_size=64,
            progress=False,
            masking_checker=CHECKER,
        )
    statuses = {check.name: check.status for check in report.masking_checks}
    assert statuses[MaskingCheck.NON_ZERO_GRADIENT.value] == CheckStatus.FAILED.value
    assert statuses[MaskingCheck.BLACK_BOX_NOT_STRONGER.value] == CheckStatus.FAILED.value
    assert not report.masking_passed
    assert "WARNING: gradient masking suspected" in report_markdown(report)
    assert any("non_zero_gradient FAILED" in message for message in caplog.messages)
    assert json.loads(report.to_json())["masking_passed"] is False


def test_transfer_scores_the_target_on_the_surrogate_examples(trained_model, digits):
    (x_train, y_train), (x, y) = digits
    target = _trained(1, x_train[::2], y_train[::2])
    attack = FGSM(0.2)  # deterministic, so the expected numbers can be recomputed here
    summary = evaluate_transfer(trained_model, target, (x, y), attack, batch_size=50, progress=False)

    x_adv = attack(trained_model, x, y)

    def right(model, images):
        return np.argmax(model.predict(images, verbose=0), -1) == y

    target_robust = right(target, x) & right(target, x_adv)
    surrogate_robust = right(trained_model, x) & right(trained_model, x_adv)
    assert summary["target_robust_accuracy"] == pytest.approx(target_robust.mean())
    assert summary["surrogate_robust_accuracy"] == pytest.approx(surrogate_robust.mean())
    assert summary["surrogate_robust_accuracy"] < summary["target_robust_accuracy"]
    assert 0.0 < summary["transfer_rate"] < 1.0
    json.dumps(summary, allow_nan=False)

    # The suite's "transfer" column: PGD-40 crafted on the surrogate, scored on the target.
    suite = RobustnessSuite(
        0.2,
        attacks="pgd40,transfer",
        surrogate=trained_model,
        batch_size=64,
        progress=False,
        masking_checker=CHECKER,
    )
    report = suite.evaluate(target, (x, y))
    transfer = report.result(AttackSpec.TRANSFER, 0.2)
    assert transfer.name == "Transfer (PGD-40)"
    assert not transfer.white_box and transfer.config["surrogate"]["name"] == trained_model.name
    assert transfer.details["surrogate_accuracy_on_x_adv"] < transfer.robust_accuracy
    assert report.result(AttackSpec.PGD40, 0.2).robust_accuracy < transfer.robust_accuracy
    black_box = next(c for c in report.masking_checks if c.name == MaskingCheck.BLACK_BOX_NOT_STRONGER.value)
    assert "Transfer (PGD-40)" in [c["black_box"] for c in black_box.details["comparisons"]]


def test_suite_rejects_bad_arguments():
    with pytest.raises(ValueError, match="eps"):
        RobustnessSuite([])
    with pytest.raises(ValueError, match="threat model"):
        RobustnessSuite(0.5, threat_model="L2", attacks="cw_inf")
    with pytest.raises(ValueError, match="surrogate"):
        RobustnessSuite(0.1, attacks="transfer")
    with pytest.raises(ValueError, match="attacks"):
        RobustnessSuite(0.1, attacks="pgd7")
