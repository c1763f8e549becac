"""Writes a `RobustnessReport`: ``report.json``, ``report.md`` and PNG plots, or the JSON next
to the evaluated model."""

from __future__ import annotations

import json
import os

from mi_keras.evaluation import plots
from mi_keras.evaluation.report import RobustnessReport, json_ready


def save_report(report: RobustnessReport, directory: str | os.PathLike) -> dict[str, str]:
    """Writes ``report.json``, ``report.md`` and the PNG plots; returns their paths.

    Example:
    ```python
    import numpy as np
    from mi_keras.data import load_dataset
    from mi_keras.models import build_classifier

    test, info = load_dataset("digits", "test", batch_size=None, take=32)  # tiny: a smoke run
    x, y = (np.stack(part) for part in zip(*test.as_numpy_iterator()))
    model = build_classifier("small_cnn", info.image_shape, info.num_classes, padding="same")
    from mi_keras.evaluation import GradientMaskingChecker, evaluate_robustness, save_report

    checker = GradientMaskingChecker(n_examples=16, square_queries=20, steps=(2, 4), restarts=2)  # defaults: 200, 1000, (10, 40), 3
    report = evaluate_robustness(model, (x, y), eps=0.3, attacks=["fgsm"], masking_checker=checker, progress=False)
    paths = save_report(report, "reports/digits")
    paths["markdown"]  # "reports/digits/report.md"
    ```
    """
    os.makedirs(directory, exist_ok=True)
    paths = {
        "json": os.path.join(directory, "report.json"),
        "markdown": os.path.join(directory, "report.md"),
        "accuracy_plot": os.path.join(directory, "accuracy_vs_eps.png"),
    }
    with open(paths["json"], "w") as file:
        file.write(report.to_json())
    with open(paths["markdown"], "w") as file:
        file.write(report_markdown(report))
    plots.plot_accuracy_vs_eps(report, paths["accuracy_plot"])
    if report.clean_examples is not None and report.adversarial_examples:
        paths["examples_plot"] = os.path.join(directory, "examples.png")
        plots.plot_examples(report, paths["examples_plot"])
    return paths


def save_report_next_to_model(report: RobustnessReport) -> str | None:
    """Writes the JSON with the evaluated file or SavedModel; None for in-memory models.

    ``saved_models/name/1`` gets ``saved_models/name/1/assets/robustness.json``: inside
    the version, never beside it, where a ``saved_models/name/<version>`` glob would
    see it (TF Serving reads neither the graph nor the weights from ``assets/``);
    ``model.keras`` gets ``model.robustness.json``.
    """
    if report.model["kind"] == "keras":
        return None
    source = os.path.normpath(report.model["source"])
    if source.endswith(".keras"):
        path = source[: -len(".keras")] + ".robustness.json"
    else:
        os.makedirs(os.path.join(source, "assets"), exist_ok=True)
        path = os.path.join(source, "assets", "robustness.json")
    with open(path, "w") as file:
        file.write(report.to_json())
    return path


def report_markdown(report: RobustnessReport) -> str:
    """The report as Markdown: the accuracy table, masking checks, timings and configs."""
    return "\n".join(_markdown_lines(report)) + "\n"


def _percent(value: float) -> str:
    return f"{100.0 * value:.2f}"


def _markdown_lines(report: RobustnessReport) -> list[str]:
    data = report.data
    lines = [
        f"# Robustness report: {report.model['name']}",
        "",
        f"- Model: `{report.model['source']}` ({report.model['kind']})",
        f"- Data: {data['description']}; {data['n_examples']} examples; sha256 `{data['sha256'][:16]}`",
        f"- Threat model: {report.threat_model}; seed {report.seed}; "
        f"batch size {report.batch_size}; "
        f"PGD restarts {report.restarts}",
        f"- Clean accuracy: {_percent(report.clean_accuracy)}% ({report.n_clean_correct}/{data['n_examples']})",
        "",
    ]
    lines += _masking_warning_lines(report)
    attacks = report.attacks
    names = [report.result(attack, report.eps[0]).name for attack in attacks]
    lines += [
        "## Robust accuracy (%)",
        "",
        "A sample is robust if it is classified correctly both clean and under the attack; "
        "`ensemble` counts the samples that survive every attack.",
        "",
        "| eps | clean | " + " | ".join(names) + " | ensemble |",
        "|---" * (len(names) + 3) + "|",
    ]
    ensemble = {round(entry.eps, 12): entry for entry in report.ensemble}
    for eps in report.eps:
        cells = [_percent(report.result(attack, eps).robust_accuracy) for attack in attacks]
        lines.append(
            f"| {eps:g} | {_percent(report.clean_accuracy)} | "
            + " | ".join(cells)
            + f" | {_percent(ensemble[round(eps, 12)].robust_accuracy)} |"
        )
    lines += _own_ball_lines(report)
    breakdowns = [r for r in report.results if "robust_accuracy_after" in r.details]
    if breakdowns:
        lines += ["", "AutoAttack, robust accuracy after each of its attacks (cumulative):", ""]
    for result in breakdowns:
        steps = result.details["robust_accuracy_after"].items()
        lines.append(
            f"- eps {result.eps:g}: " + " -> ".join(f"{name} {_percent(accuracy)}" for name, accuracy in steps)
        )
    lines += ["", "## Gradient-masking checks", ""]
    for check in report.masking_checks:
        lines.append(f"- **{check.status.upper()}** `{check.name}`: {check.message}")
    lines += ["", "## Timings (s)", "", "| attack | eps | seconds |", "|---|---|---|"]
    lines += [f"| {r.name} | {r.eps:g} | {r.seconds:.2f} |" for r in report.results]
    lines += [
        "",
        f"Clean pass {report.timings['clean_seconds']:.2f} s, masking checks "
        f"{report.timings['masking_seconds']:.2f} s, "
        f"total {report.timings['total_seconds']:.2f} s.",
        "",
        f"## Attack configurations (at eps {max(report.eps):g})",
        "",
    ]
    configs = {r.name: r.config for r in report.results if r.eps == max(report.eps)}
    lines += [f"- {name}: `{json.dumps(json_ready(config), sort_keys=True)}`" for name, config in configs.items()]
    lines += [
        "",
        "Versions: " + ", ".join(f"{key} {value}" for key, value in report.versions.items()),
    ]
    return lines


def _own_ball_lines(report: RobustnessReport) -> list[str]:
    """A note for each attack that bounds another ball than the report's (FWA)."""
    notes = {}
    for result in report.results:
        ball = result.spec.ball(report.threat_model)
        if ball.value != report.threat_model:
            notes[result.name] = ball
    return [
        f"\n{name} bounds a {ball.value} ball: its eps is the transport cost (pixel distance x "
        "mass moved) relative to the image's total pixel mass, not a norm of x_adv - x."
        for name, ball in notes.items()
    ]


def _masking_warning_lines(report: RobustnessReport) -> list[str]:
    failed = [check for check in report.masking_checks if check.failed]
    if not failed:
        return []
    lines = ["> **WARNING: gradient masking suspected.** These numbers may overstate robustness:"]
    lines += [f"> - `{check.name}`: {check.message}" for check in failed]
    return lines + [""]
