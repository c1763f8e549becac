"""The study driver: its rules (pure functions) and the smoke study through the command line."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

from mi_keras.enums import EstimatorReading
from pipeline import study as study_cli
from pipeline.study_driver.results_report import verdict
from pipeline.study_driver.study import Method, StudyEvaluation, load_study
from pipeline.study_driver.unit import UnitKind, plan_units
from pipeline.study_driver.unit_evaluation import accuracy_record, fixed_subsets


@pytest.mark.parametrize(
    "differences, expected",
    [
        ([0.02, 0.03, 0.025], "better"),
        ([-0.02, -0.03, -0.025], "worse"),
        ([0.02, -0.01, 0.03], "no measurable difference"),  # signs disagree
        ([0.001, 0.04, 0.002], "no measurable difference"),  # same sign, mean below the spread
        ([0.02, 0.03], "not enough seeds yet (2 of 3)"),
    ],
)
def test_verdict_claims_a_difference_only_when_every_seed_agrees_beyond_the_spread(differences, expected):
    assert verdict(differences, seeds_planned=3) == expected


def test_subsets_are_class_balanced_nested_and_fixed_by_the_subset_seed():
    labels = np.repeat(np.arange(10), 100)
    settings = StudyEvaluation(pgd_examples=200, autoattack_examples=50, mi_probe_examples=100)
    subsets = fixed_subsets(labels, settings)
    assert np.bincount(labels[subsets["pgd"]]).tolist() == [20] * 10
    assert np.bincount(labels[subsets["autoattack"]]).tolist() == [5] * 10
    assert set(subsets["autoattack"]) <= set(subsets["pgd"]) and set(subsets["mi_probe"]) <= set(subsets["pgd"])
    again = fixed_subsets(labels, settings)
    assert all(np.array_equal(subsets[name], again[name]) for name in subsets)
    other = fixed_subsets(labels, StudyEvaluation(pgd_examples=200, subset_seed=1))
    assert not np.array_equal(subsets["pgd"], other["pgd"])


def test_accuracy_record_has_the_binomial_standard_error():
    record = accuracy_record(30, 120)
    assert record["accuracy"] == 0.25 and record["n"] == 120
    assert record["standard_error"] == pytest.approx(np.sqrt(0.25 * 0.75 / 120))


def test_methods_differ_only_in_their_own_settings():
    for method in Method:
        keys = {assignment.partition("=")[0] for assignment in method.overrides(("train.lam_ramp_epochs=5",))}
        # An MI defense may also change its own estimators (the baselines never read them).
        sections = ("pretrain.",) if method.stage.value == "pretrain" else ("train.", "estimators.")
        assert all(key.startswith(sections) for key in keys), (method, keys)
    assert "train.lam=0" in Method.MIAT_LAMBDA0.overrides(())
    assert "train.lam_ramp_epochs=5" in Method.MIAT_LAMBDA01.overrides(("train.lam_ramp_epochs=5",))


def test_units_run_seed_by_seed_with_autoattack_last():
    study = load_study("cpu_study")
    units = plan_units(study)
    training = [unit for unit in units if unit.kind is UnitKind.TRAINING]
    assert len(training) == len(study.datasets) * len(study.methods) * len(study.seeds)
    assert [unit.seed for unit in training] == sorted(unit.seed for unit in training)
    assert units[len(training) :] and all(unit.kind is UnitKind.AUTOATTACK for unit in units[len(training) :])


def test_unknown_study_and_prefix_are_usage_errors(capsys):
    assert study_cli.main(["--study", "no_such_study", "--plan"]) == 2
    assert "unknown study" in capsys.readouterr().err
    assert study_cli.main(["--study", "smoke", "--plan", "--only", "nowhere/"]) == 2
    assert "matches no unit" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.shared_data
def test_smoke_study_runs_the_cifar10_recipes_from_the_npz_files_and_resumes(shared_data_dir, tmp_path, capsys):
    arguments = [
        "--study",
        "smoke",
        "--results-dir",
        str(tmp_path / "results"),
        "--work-root",
        str(tmp_path / "work"),
        "--quiet",
    ]
    assert study_cli.main(arguments) == 0
    study = load_study("smoke")
    for unit in plan_units(study):
        record = json.loads(unit.result_path(tmp_path / "results", study).read_text())
        assert (record["dataset"], record["method"], record["seed"], record["kind"]) == (
            unit.dataset,
            unit.method.value,
            unit.seed,
            unit.kind.value,
        )
        assert record["recipe"] == {"name": "study", "overrides": []}
        assert record["config"]["data"]["dataset"] == "npz:cifar10/cifar10_{split}.npz"
        assert record["config"]["attack"]["threat_model"] == ("L2" if unit.dataset.endswith("_l2") else "Linf")
        assert record["machine"]["cores"] >= 1 and record["machine"]["tensorflow"]
        assert record["wall_time_seconds"] > 0 and "commit" in record["git"]
        assert record["training"]["history"], "every unit records its model's validation history"
        if unit.kind is UnitKind.TRAINING:
            assert record["test"]["best"]["clean"]["n"] == 100  # data.test_take
            assert record["test"]["best"]["pgd40"]["n"] == 40
            assert record["test"]["best"]["mi_probe"]["n_examples"] == 20
            controls = record["test"]["best"]["mi_probe"]["logit_controls"]
            assert controls["reading"] in {reading.value for reading in EstimatorReading}
            assert controls["reference_logit_scale"] > 0 and controls["rescaled_gain"] is not None
            assert {check["name"] for check in record["test"]["best"]["masking_checks"]}
        else:
            assert record["test"]["autoattack"]["n"] == 10
    # The standard-AT model and the estimators of a dataset-seed are trained once.
    miat = json.loads(plan_units(study)[1].result_path(tmp_path / "results", study).read_text())
    assert miat["method"] == "miat_lambda01" and miat["stages"]["pretrain"] == "cached"
    capsys.readouterr()
    # Every unit is done: a second run trains nothing and rewrites no JSON.
    first = {path: path.stat().st_mtime_ns for path in (tmp_path / "results").rglob("*.json")}
    assert study_cli.main(arguments) == 0 and study_cli.main([*arguments, "--plan"]) == 0
    assert "0 pending" in capsys.readouterr().out
    assert first == {path: path.stat().st_mtime_ns for path in (tmp_path / "results").rglob("*.json")}
    report = tmp_path / "report" / "results.md"
    assert study_cli.main([*arguments, "--report", "--report-path", str(report)]) == 0
    text = report.read_text()
    assert "a single seed: no claim" in text and "| Standard AT |" in text
    assert (tmp_path / "report" / "results.png").stat().st_size > 0


def test_a_single_planned_seed_never_makes_a_claim():
    assert verdict([0.5], seeds_planned=1) == "a single seed: no claim"


def test_report_of_a_dataset_without_finished_units_says_so(tmp_path):
    from pipeline.study_driver.results_report import render_report

    text = render_report(load_study("cpu_study"), tmp_path / "results", tmp_path / "results.png", "command")
    assert "None" not in text
    assert text.count("No unit of this dataset has finished yet.") == 2  # Fashion-MNIST and CIFAR-10


def test_report_shows_a_run_that_collapsed_after_its_best_epoch(tmp_path):
    """NAMID_T's Fashion-MNIST seed 0 peaked at epoch 2 and ended at chance: its row must say so."""
    from pipeline.study_driver.results_report import render_report

    study = load_study("cpu_study")
    name = "cpu_study/fashion_mnist/namid_t/seed0.json"
    (tmp_path / "results" / name).parent.mkdir(parents=True)
    (tmp_path / "results" / name).write_text((pathlib.Path(__file__).parents[1] / "results" / name).read_text())
    text = render_report(study, tmp_path / "results", None, "command")
    row = next(line for line in text.splitlines() if line.startswith("| NAMID_T | best epoch"))
    assert row == "| NAMID_T | best epoch 2 of 15: 38.0 / 33.8; last: 10.0 / 10.0 | - | - |"


def test_a_diverged_unit_does_not_stop_the_units_after_it(monkeypatch, tmp_path, capsys):
    """A diverging method is the study's finding, not a setup error: the driver runs on and exits 1."""
    from pipeline.components.callbacks import TrainingDivergedError
    from pipeline.study_driver.unit import UnitRunner

    attempted = []

    def run(self, unit):
        attempted.append(str(unit))
        if len(attempted) == 1:
            raise TrainingDivergedError("Training diverged: the loss became nan at epoch 3, batch 10")
        return {}

    monkeypatch.setattr(UnitRunner, "run", run)
    arguments = ["--study", "smoke", "--results-dir", str(tmp_path / "results"), "--work-root", str(tmp_path / "work")]
    assert study_cli.main([*arguments, "--max-units", "2"]) == 1
    assert len(attempted) == 2
    assert (
        f"1 unit(s) diverged before their first epoch ended and wrote no JSON: {attempted[0]}"
        in capsys.readouterr().err
    )


@pytest.mark.slow
@pytest.mark.shared_data
def test_a_unit_that_diverges_after_an_epoch_is_scored_at_its_best_epoch(shared_data_dir, tmp_path, monkeypatch):
    """A NaN in epoch 2 of MIAT's training: the unit's JSON says where, scores epoch 1, has no last model."""
    import dataclasses

    from pipeline.components.callbacks import DivergenceGuard
    from pipeline.study_driver.results_report import render_report
    from pipeline.study_driver.unit import Unit, UnitRunner

    guard_batch_end = DivergenceGuard.on_train_batch_end

    def nan_from_the_second_epoch(self, batch, logs=None):  # pretrain has one epoch: only train is hit
        guard_batch_end(self, batch, {**(logs or {}), "loss": float("nan")} if self._epoch == 1 else logs)

    monkeypatch.setattr(DivergenceGuard, "on_train_batch_end", nan_from_the_second_epoch)
    smoke = load_study("smoke")
    dataset = dataclasses.replace(smoke.datasets[0], overrides=(*smoke.datasets[0].overrides, "train.epochs=2"))
    study = dataclasses.replace(smoke, name="diverging", datasets=(dataset,), methods=(Method.MIAT_LAMBDA01,))
    UnitRunner(study, tmp_path / "results", tmp_path / "work").run(Unit(dataset.name, Method.MIAT_LAMBDA01, 0))

    record = json.loads(
        (tmp_path / "results" / "diverging" / dataset.name / "miat_lambda01" / "seed0.json").read_text()
    )
    assert record["training"]["diverged"] == {"epoch": 2, "batch": 1, "loss": "nan"}
    assert record["training"]["summary"]["best_epoch"] == 1 and len(record["training"]["history"]) == 1
    assert record["stages"]["train"] == "diverged" and record["stages"]["pretrain"] == "complete"
    assert record["test"]["last"] is None and record["test"]["best"]["clean"]["n"] == 100
    text = render_report(study, tmp_path / "results", None, "command")
    assert "**diverged** (loss nan) at epoch 2, batch 1" in text
    accuracies = next(
        line
        for line in text.splitlines()
        if line.startswith(f"| {Method.MIAT_LAMBDA01.display_name} |") and "(n=1)" in line
    )
    assert accuracies.endswith("| - | - |")  # the best epoch is scored; there are no '(last)' numbers


def test_report_reads_the_mi_shift_of_fooled_samples_only_where_the_estimators_find_mi(tmp_path):
    """Fashion-MNIST seed 0: the AT model's fooled samples lose natural MI and gain adversarial MI
    under attack (the paper's Fig. 4); for MIAT the frozen estimators read no MI at all."""
    from pipeline.study_driver.results_report import render_report

    records = {}
    for method in ("standard_at", "miat_lambda0"):
        name = f"cpu_study/fashion_mnist/{method}/seed0.json"
        (tmp_path / "results" / name).parent.mkdir(parents=True)
        text = (pathlib.Path(__file__).parents[1] / "results" / name).read_text()
        (tmp_path / "results" / name).write_text(text)
        records[method] = json.loads(text)["test"]["best"]["mi_probe"]["by_group"]["fooled"]
    report = render_report(load_study("cpu_study"), tmp_path / "results", None, "command")

    fooled = records["standard_at"]
    natural = fooled["natural_mi_adversarial"]["mean"] - fooled["natural_mi_natural"]["mean"]
    adversarial = fooled["adversarial_mi_adversarial"]["mean"] - fooled["adversarial_mi_natural"]["mean"]
    assert natural < 0 < adversarial
    assert (
        f"- Standard AT: the attack changes the natural MI of the samples it fools by {natural:+.3f} and their "
        f"adversarial MI by {adversarial:+.3f} nats; both move in Fig. 4's direction on 1 of 1 seeds." in report
    )
    assert records["miat_lambda0"]["natural_mi_natural"]["mean"] <= 0
    assert "- MIAT (lambda 0): the frozen estimators read no natural MI in its logits" in report


def test_report_tells_per_seed_whether_the_estimator_reads_each_model(tmp_path):
    from pipeline.study_driver.results_report import render_report

    controls = {
        "logit_scale": 12.0,
        "reference_logit_scale": 4.0,
        "batch_mean": -9.0,
        "raw_gain": {"mean": 0.5, "standard_error": 0.1},
        "rescaled_gain": {"mean": 6.0, "standard_error": 0.3},
        "reading": "out_of_range",
    }
    for method in ("standard_at", "miat_lambda0"):
        name = f"cpu_study/fashion_mnist/{method}/seed0.json"
        (tmp_path / "results" / name).parent.mkdir(parents=True)
        record = json.loads((pathlib.Path(__file__).parents[1] / "results" / name).read_text())
        if method == "miat_lambda0":
            record["test"]["best"]["mi_probe"]["logit_controls"] = controls
        (tmp_path / "results" / name).write_text(json.dumps(record))
    report = render_report(load_study("cpu_study"), tmp_path / "results", None, "command")
    table = report.split("### Does the natural estimator read the classifier?")[1]
    assert "| MIAT (lambda 0) | 0: out_of_range | 0.500 (n=1) | 6.000 (n=1) | 3.00 (n=1) |" in table
    assert "| Standard AT |" not in table.split("## ")[0]  # measured before the controls existed
