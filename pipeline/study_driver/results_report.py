"""Renders a study's report (Markdown and a plot) from its unit JSONs; nothing is typed by hand."""

from __future__ import annotations

import dataclasses
import json
import pathlib
from collections import defaultdict
from typing import Any

import numpy as np

from pipeline.study_driver.study import Method, Study
from pipeline.study_driver.unit import Unit, UnitKind, plan_units

# (column title, unit kind, path inside the unit's "test" record); accuracies in [0, 1].
METRICS = (
    ("clean", UnitKind.TRAINING, ("best", "clean")),
    ("PGD-40", UnitKind.TRAINING, ("best", "pgd40")),
    ("AutoAttack", UnitKind.AUTOATTACK, ("autoattack",)),
    ("clean (last)", UnitKind.TRAINING, ("last", "clean")),
    ("PGD-40 (last)", UnitKind.TRAINING, ("last", "pgd40")),
)
# The MI probe's measurements of adversarial samples (its keys and their labels), by group.
PROBE_MEASUREMENTS = {"natural_mi_adversarial": "I_N(x; h(x_adv))", "adversarial_mi_adversarial": "I_A(n; h(x_adv))"}
PROBE_GROUPS = ("robust", "fooled")


def load_results(study: Study, results_dir: pathlib.Path) -> dict[Unit, dict[str, Any]]:
    """Every finished unit's record, keyed by its `Unit`."""
    records = {}
    for unit in plan_units(study):
        path = unit.result_path(results_dir, study)
        if path.is_file():
            records[unit] = json.loads(path.read_text())
    return records


def metric_values(records, dataset: str, method: Method, kind: UnitKind, path: tuple[str, ...]) -> dict[int, dict]:
    """Per seed, the accuracy record at ``path`` (absent: no finished unit, or a diverged run's last epoch)."""
    values = {}
    for unit, record in records.items():
        if (unit.dataset, unit.method, unit.kind) == (dataset, method, kind):
            value = record["test"]
            for key in path:
                value = value.get(key) if value is not None else None
            if value is not None:
                values[unit.seed] = value
    return values


def verdict(differences: list[float], seeds_planned: int) -> str:
    """The study's rule: a sign claim needs every planned seed, agreeing, with |mean| > spread."""
    if seeds_planned < 2:
        return "a single seed: no claim"
    if len(differences) < seeds_planned:
        return f"not enough seeds yet ({len(differences)} of {seeds_planned})"
    mean, spread = float(np.mean(differences)), float(np.std(differences, ddof=1))
    same_sign = all(d > 0 for d in differences) or all(d < 0 for d in differences)
    if same_sign and abs(mean) > spread:
        return "better" if mean > 0 else "worse"
    return "no measurable difference"


def _mean_std(values: list[float], scale: float = 100, digits: int = 2) -> str:
    """'mean ± std (n=seeds)' of ``scale * values``: accuracies in % by default."""
    if not values:
        return "-"
    spread = f" ± {scale * np.std(values, ddof=1):.{digits}f}" if len(values) > 1 else ""
    return f"{scale * np.mean(values):.{digits}f}{spread} (n={len(values)})"


def _accuracy_table(study: Study, records, dataset: str) -> list[str]:
    lines = ["| method | " + " | ".join(title for title, _, _ in METRICS) + " |", "|---" * (len(METRICS) + 1) + "|"]
    for method in study.methods:
        cells = []
        for _, kind, path in METRICS:
            per_seed = metric_values(records, dataset, method, kind, path)
            cells.append(_mean_std([value["accuracy"] for value in per_seed.values()]))
        lines.append(f"| {method.display_name} | " + " | ".join(cells) + " |")
    return lines


def _retrained_note(records, dataset: str) -> list[str]:
    """AutoAttack units that trained their model again (the training unit's was gone): the
    same config and seed, but not always the same weights (a PGD step's sign turns the last-bit
    differences of kernels into other examples), so the figure belongs to a re-run of the
    training unit's model."""
    retrained = sorted(
        (str(unit), _validation(record), _validation(records.get(dataclasses.replace(unit, kind=UnitKind.TRAINING))))
        for unit, record in records.items()
        if unit.dataset == dataset
        and unit.kind is UnitKind.AUTOATTACK
        and record["stages"].get(unit.method.stage.value) == "complete"
    )
    if not retrained:
        return []
    described = [f"{name} (its model {ours}; the training unit's {theirs})" for name, ours, theirs in retrained]
    return ["", f"AutoAttack of a retrained model (same config and seed, other weights): {'; '.join(described)}."]


def _validation(record: dict[str, Any] | None) -> str:
    """'validation clean / PGD x / y %' of a unit's model at its best epoch, if recorded."""
    summary = (record or {}).get("training", {}).get("summary")
    if summary is None:
        return "not recorded"
    return f"validation clean / PGD {_clean_and_pgd(summary, 'best')} %"


def _clean_and_pgd(summary: dict[str, Any], epoch: str) -> str:
    """'clean / PGD' validation accuracies (%) of a training summary's ``best`` or ``last`` epoch."""
    return (
        f"{100 * summary[f'{epoch}_val_clean_accuracy']:.1f} / {100 * summary[f'{epoch}_val_adversarial_accuracy']:.1f}"
    )


def _training_table(study: Study, records, dataset: str) -> list[str]:
    """Per seed, the best epoch and the last epoch's validation accuracies: a run that collapsed
    (its last epoch at chance) shows here even when its best epoch looks fine."""
    header = "| method | " + " | ".join(f"seed {seed}" for seed in study.seeds) + " |"
    lines = [header, "|---" * (len(study.seeds) + 1) + "|"]
    for method in study.methods:
        cells = []
        for seed in study.seeds:
            record = records.get(Unit(dataset, method, seed, UnitKind.TRAINING))
            cells.append(_training_cell(record["training"]) if record else "-")
        lines.append(f"| {method.display_name} | " + " | ".join(cells) + " |")
    return lines


def _training_cell(training: dict[str, Any]) -> str:
    summary, diverged = training["summary"], training.get("diverged")
    best, last = _clean_and_pgd(summary, "best"), _clean_and_pgd(summary, "last")
    if diverged:
        return (
            f"best epoch {summary['best_epoch']}: {best}; last finished epoch {summary['epochs']}: {last}; "
            f"**diverged** (loss {diverged['loss']}) at epoch {diverged['epoch']}, batch {diverged['batch']}"
        )
    return f"best epoch {summary['best_epoch']} of {summary['epochs']}: {best}; last: {last}"


# (column title, history key, epoch: "first" or "last"); the MIHealthMonitor's figures.
DYNAMICS = (
    ("MI / base gradient, epoch 1", "health_gradient_ratio", "first"),
    ("MI / base gradient, last epoch", "health_gradient_ratio", "last"),
    ("steps with < 2 selected, epoch 1", "steps_under_2_selected", "first"),
    ("I_N(x; h(x)) on validation, last epoch (nats)", "health_natural_mi", "last"),
)


def _dynamics_table(study: Study, records, dataset: str) -> list[str]:
    """Per method, mean ± std over seeds of the training's health figures (a unit trained
    before the health monitor existed has none: "-")."""
    header = "| method | " + " | ".join(title for title, _, _ in DYNAMICS) + " | collapse or health findings |"
    lines = [header, "|---" * (len(DYNAMICS) + 2) + "|"]
    for method in study.methods:
        histories = {
            seed: records[unit]["training"]["history"]
            for seed in study.seeds
            if (unit := Unit(dataset, method, seed, UnitKind.TRAINING)) in records
        }
        cells = []
        for _, key, epoch in DYNAMICS:
            rows = {seed: [row for row in history if key in row] for seed, history in histories.items()}
            values = [seed_rows[0 if epoch == "first" else -1][key] for seed_rows in rows.values() if seed_rows]
            cells.append(_mean_std(values, scale=1, digits=3))
        findings = [
            f"s{seed}: " + ", ".join(sorted(finding["rule"] for finding in health))
            for seed in histories
            if (
                health := records[Unit(dataset, method, seed, UnitKind.TRAINING)]["training"]["summary"]
                .get("health", {})
                .get("findings")
            )
        ]
        lines.append(f"| {method.display_name} | " + " | ".join(cells) + f" | {'; '.join(findings) or '-'} |")
    return lines


def _subset_line(study: Study, records, dataset: str) -> str:
    sizes = {}
    for unit, record in records.items():
        if unit.dataset == dataset:
            sizes.update({name: subset["n"] for name, subset in record["subsets"].items()})
            sizes["test"] = (
                record["test"]["best"]["clean"]["n"] if unit.kind is UnitKind.TRAINING else sizes.get("test")
            )
    if not sizes:
        return "No unit of this dataset has finished yet."
    errors = []
    for title, kind, path in METRICS[:3]:
        standard_errors = [
            value["standard_error"]
            for method in study.methods
            for value in metric_values(records, dataset, method, kind, path).values()
        ]
        if standard_errors:
            errors.append(f"{title} ±{100 * np.mean(standard_errors):.2f}")
    return (
        f"Subsets (class-balanced, shared by every unit): clean on the test split (n={sizes.get('test')}), "
        f"PGD-40 on n={sizes.get('pgd')}, AutoAttack on n={sizes.get('autoattack')}, MI probe on n={sizes.get('mi_probe')}. "
        f"Mean binomial standard error of one accuracy: {', '.join(errors) or '-'} points."
    )


def _comparison_lines(study: Study, records, dataset: str) -> list[str]:
    lines = ["| comparison | metric | per-seed differences (points) | mean ± std | verdict |", "|---|---|---|---|---|"]
    sentences = []
    for method in study.methods:
        baseline = method.baseline
        if baseline not in study.methods:
            continue
        for title, kind, path in METRICS[:3]:
            ours = metric_values(records, dataset, method, kind, path)
            theirs = metric_values(records, dataset, baseline, kind, path)
            seeds = sorted(set(ours) & set(theirs))
            if not seeds:
                continue
            differences = [ours[seed]["accuracy"] - theirs[seed]["accuracy"] for seed in seeds]
            planned = len(study.evaluation.autoattack_seeds) if kind is UnitKind.AUTOATTACK else len(study.seeds)
            outcome = verdict(differences, planned)
            per_seed = ", ".join(f"s{seed}: {100 * d:+.2f}" for seed, d in zip(seeds, differences))
            spread = f" ± {100 * np.std(differences, ddof=1):.2f}" if len(differences) > 1 else ""
            lines.append(
                f"| {method.display_name} - {baseline.display_name} | {title} | {per_seed} | {100 * np.mean(differences):+.2f}{spread} | {outcome} |"
            )
            sentences.append(_sentence(method, baseline, title, outcome, differences))
    return lines + [""] + sentences


def _sentence(method: Method, baseline: Method, metric: str, outcome: str, differences: list[float]) -> str:
    mean = 100 * np.mean(differences)
    if outcome in ("better", "worse"):
        return f"- {metric}: {method.display_name} is {outcome} than {baseline.display_name} ({mean:+.2f} points, every seed agrees)."
    if outcome == "no measurable difference":
        return f"- {metric}: no measurable difference between {method.display_name} and {baseline.display_name} (mean {mean:+.2f} points, within the spread over seeds)."
    return f"- {metric}: {method.display_name} vs {baseline.display_name}: {outcome}; mean so far {mean:+.2f} points."


def probe_values(records, dataset: str, method: Method, group: str, measurement: str) -> dict[int, float]:
    """Per seed, the MI probe's mean DV estimate (nats) of ``measurement`` over ``group`` of the
    best model's test samples (absent: no finished unit, or the group was empty)."""
    return metric_values(
        records, dataset, method, UnitKind.TRAINING, ("best", "mi_probe", "by_group", group, measurement, "mean")
    )


def _nats(values: list[float]) -> str:
    return _mean_std(values, scale=1, digits=3)


def _probe_table(study: Study, records, dataset: str) -> list[str]:
    header = (
        "| method | "
        + " | ".join(f"{group}: {name}" for group in PROBE_GROUPS for name in PROBE_MEASUREMENTS.values())
        + " |"
    )
    lines = [header, "|---" * (1 + len(PROBE_GROUPS) * len(PROBE_MEASUREMENTS)) + "|"]
    for method in study.methods:
        cells = [
            _nats(list(probe_values(records, dataset, method, group, measurement).values()))
            for group in PROBE_GROUPS
            for measurement in PROBE_MEASUREMENTS
        ]
        lines.append(f"| {method.display_name} | " + " | ".join(cells) + " |")
    return lines


def _probe_shift_lines(study: Study, records, dataset: str) -> list[str]:
    """What the attack changes in the MI of the samples it fools, per model: the paper's Fig. 4
    says the natural MI falls and the adversarial MI rises. A model whose clean I_N(x; h(x)) is
    <= 0 on every seed gets no reading: the frozen estimators find no dependence in its logits."""
    lines = [
        "| method | fooled: I_N(x; h(x)) | I_N(x; h(x_adv)) - I_N(x; h(x)) | I_A(n; h(x_adv)) - I_A(n; h(x)) | seeds in Fig. 4's direction |",
        "|---|---|---|---|---|",
    ]
    sentences = []
    for method in study.methods:
        clean = probe_values(records, dataset, method, "fooled", "natural_mi_natural")
        natural, adversarial = (
            _probe_shift(records, dataset, method, estimator) for estimator in ("natural", "adversarial")
        )
        seeds = sorted(set(natural) & set(adversarial))
        if not seeds:
            continue
        agreeing = sum(natural[seed] < 0 < adversarial[seed] for seed in seeds)
        lines.append(
            f"| {method.display_name} | {_nats(list(clean.values()))} | {_nats(list(natural.values()))} | "
            f"{_nats(list(adversarial.values()))} | {agreeing} of {len(seeds)} |"
        )
        if all(value <= 0 for value in clean.values()):
            sentences.append(
                f"- {method.display_name}: the frozen estimators read no natural MI in its logits even on clean "
                f"images (I_N(x; h(x)) <= 0 nats on every seed), so its shifts say nothing about the mechanism."
            )
        else:
            sentences.append(
                f"- {method.display_name}: the attack changes the natural MI of the samples it fools by "
                f"{np.mean(list(natural.values())):+.3f} and their adversarial MI by {np.mean(list(adversarial.values())):+.3f} "
                f"nats; both move in Fig. 4's direction on {agreeing} of {len(seeds)} seeds."
            )
    return lines + [""] + sentences


def _probe_shift(records, dataset: str, method: Method, estimator: str) -> dict[int, float]:
    """Per seed, the ``estimator``'s ("natural" or "adversarial") mean estimate over the fooled
    samples on h(x_adv) minus its estimate on h(x)."""
    on_adversarial = probe_values(records, dataset, method, "fooled", f"{estimator}_mi_adversarial")
    on_natural = probe_values(records, dataset, method, "fooled", f"{estimator}_mi_natural")
    return {seed: on_adversarial[seed] - on_natural[seed] for seed in set(on_adversarial) & set(on_natural)}


_READING_LEGEND = (
    "I_N(x; h(x)) scored with the model's logits, with the batch-mean logits (a constant) and with the logits "
    "centred and rescaled to standard AT's spread; a gain is over the constant. 'reads': the raw gain is "
    "significant and at least half the rescaled one; 'out_of_range': only the rescaled logits are read; "
    "'blind': neither. Units evaluated before the controls existed have no row."
)


def _reading_table(study: Study, records, dataset: str) -> list[str]:
    """Per method, whether the natural estimator reads the best model's logits (`EstimatorReading`
    per seed) and the gains over constant logits, raw and centred-rescaled to standard AT's spread."""
    path = ("best", "mi_probe", "logit_controls")
    lines = [
        "| method | reading per seed | raw gain (nats) | rescaled gain (nats) | logit spread / standard AT's |",
        "|---|---|---|---|---|",
    ]
    for method in study.methods:
        controls = metric_values(records, dataset, method, UnitKind.TRAINING, path)
        if not controls:
            continue
        seeds = sorted(controls)
        readings = ", ".join(f"{seed}: {controls[seed]['reading']}" for seed in seeds)
        raw = [controls[seed]["raw_gain"]["mean"] for seed in seeds]
        rescaled = [controls[seed]["rescaled_gain"]["mean"] for seed in seeds]
        spread = [controls[seed]["logit_scale"] / controls[seed]["reference_logit_scale"] for seed in seeds]
        lines.append(
            f"| {method.display_name} | {readings} | {_nats(raw)} | {_nats(rescaled)} | {_mean_std(spread, 1, 2)} |"
        )
    return lines


def _cost_lines(study: Study, records) -> list[str]:
    times = defaultdict(list)
    for unit, record in records.items():
        times[(unit.dataset, unit.kind.value)].append(record["wall_time_seconds"] / 60)
    lines = ["| dataset | unit kind | units done | minutes per unit (mean, max) |", "|---|---|---|---|"]
    for (dataset, kind), minutes in sorted(times.items()):
        lines.append(f"| {dataset} | {kind} | {len(minutes)} | {np.mean(minutes):.1f}, {np.max(minutes):.1f} |")
    return lines


def render_report(study: Study, results_dir: pathlib.Path, plot_path: pathlib.Path | None, command: str) -> str:
    """The Markdown report; writes the plot to ``plot_path`` when given and there are results."""
    records = load_results(study, results_dir)
    planned = plan_units(study)
    lines = [
        f"# Study `{study.name}`: results",
        "",
        f"Generated by `{command}` from the {len(records)} unit JSONs under `{results_dir.name}/{study.name}/` "
        f"({len(records)} of {len(planned)} planned units finished). Do not edit by hand.",
        "",
        "Accuracies in %, mean ± standard deviation over seeds (n = seeds finished); models picked by "
        "validation (clean + PGD) / 2, never the test set; '(last)' is the last epoch. A method is called "
        "better or worse than its baseline only when every planned seed agrees in sign and the mean "
        "difference exceeds its spread. A run whose loss became NaN is scored at its best epoch before the NaN "
        "and has no '(last)' numbers (its weights are NaN); the training-runs table marks it.",
    ]
    if plot_path is not None and records:
        plot_results(study, records, plot_path)
        lines += ["", f"![PGD-40 accuracy per method and seed]({plot_path.name})"]
    for dataset in study.datasets:
        lines += ["", f"## {dataset.name}", "", _subset_line(study, records, dataset.name), ""]
        lines += _accuracy_table(study, records, dataset.name)
        lines += _retrained_note(records, dataset.name)
        lines += ["", "### Training runs (validation clean / PGD %, at the best and the last epoch)", ""]
        lines += _training_table(study, records, dataset.name)
        lines += ["", "### Training dynamics (the MIHealthMonitor's figures, mean ± std over seeds)", ""]
        lines += _dynamics_table(study, records, dataset.name)
        lines += ["", "### Paired differences (method - baseline, same seed, same subsets)", ""]
        lines += _comparison_lines(study, records, dataset.name)
        lines += ["", "### MI probe (PGD-20, best model, the dataset-seed's estimators; mean DV estimate in nats)", ""]
        lines += _probe_table(study, records, dataset.name)
        lines += ["", "### What the attack changes in the MI of the samples it fools (same model, same estimators)", ""]
        lines += _probe_shift_lines(study, records, dataset.name)
        lines += ["", "### Does the natural estimator read the classifier? (the probe's logit controls)", ""]
        lines += [_READING_LEGEND, ""] + _reading_table(study, records, dataset.name)
    lines += ["", "## Cost (wall time on the machine of each JSON's `machine` record)", ""] + _cost_lines(
        study, records
    )
    return "\n".join(lines) + "\n"


def plot_results(study: Study, records, path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(study.datasets), figsize=(5 * len(study.datasets), 4), squeeze=False)
    for axis, dataset in zip(axes[0], study.datasets):
        for position, method in enumerate(study.methods):
            per_seed = metric_values(records, dataset.name, method, UnitKind.TRAINING, ("best", "pgd40"))
            values = [100 * value["accuracy"] for value in per_seed.values()]
            if values:
                axis.bar(position, np.mean(values), color="#9ecae1")
                axis.scatter([position] * len(values), values, color="#08519c", zorder=3, s=12)
        axis.set_xticks(range(len(study.methods)), [method.value for method in study.methods], rotation=30, ha="right")
        axis.set_title(f"{dataset.name}: PGD-40 accuracy (%)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
