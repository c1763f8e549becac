"""PNG plots of evaluation results, drawn with Matplotlib's Agg canvas (no display, no pyplot).

Using `matplotlib.figure.Figure` directly leaves the user's global backend untouched.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from mi_keras.evaluation.report import RobustnessReport


def plot_accuracy_vs_eps(report: RobustnessReport, path: str | os.PathLike) -> None:
    """Robust accuracy (%) against eps, one line per attack, plus clean and ensemble."""
    figure = Figure(figsize=(6.4, 4.4))
    axes = figure.add_subplot()
    eps_values = sorted(report.eps)
    for attack in report.attacks:
        results = [report.result(attack, eps) for eps in eps_values]
        accuracies = [100 * result.robust_accuracy for result in results]
        axes.plot([0.0, *eps_values], [100 * report.clean_accuracy, *accuracies], marker="o", label=results[0].name)
    ensemble = {round(entry.eps, 12): entry.robust_accuracy for entry in report.ensemble}
    axes.plot(
        [0.0, *eps_values],
        [100 * report.clean_accuracy, *(100 * ensemble[round(eps, 12)] for eps in eps_values)],
        color="black",
        linestyle="--",
        marker="s",
        label="ensemble",
    )
    axes.set_xlabel(f"eps ({report.threat_model})")
    axes.set_ylabel("robust accuracy (%)")
    axes.set_ylim(-2, 102)
    axes.set_title(f"{report.model['name']}: {report.data['n_examples']} examples")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    _write(figure, path)


def plot_examples(report: RobustnessReport, path: str | os.PathLike) -> None:
    """A grid: the clean images on the first row, each attack's adversarial images below.

    Titles give the predicted label, red when wrong; the adversarial rows are the largest
    evaluated eps.
    """
    clean_images, labels, clean_predictions = report.clean_examples
    rows = [("clean", clean_images, clean_predictions)]
    rows += [
        (report.result(spec, max(report.eps)).name, images, predictions)
        for spec, (images, predictions) in report.adversarial_examples.items()
    ]
    columns = len(clean_images)
    figure = Figure(figsize=(1.3 * columns + 1.2, 1.45 * len(rows)))
    for row, (name, images, predictions) in enumerate(rows):
        for column in range(columns):
            axes = figure.add_subplot(len(rows), columns, row * columns + column + 1)
            image = np.clip(images[column], 0.0, 1.0)
            if image.shape[-1] == 1:
                axes.imshow(image[..., 0], cmap="gray", vmin=0.0, vmax=1.0)
            else:
                axes.imshow(image)
            wrong = predictions[column] != labels[column]
            title = f"y {labels[column]}, pred {predictions[column]}" if row == 0 else f"pred {predictions[column]}"
            axes.set_title(title, fontsize=7, color="red" if wrong else "black")
            axes.set_xticks([])
            axes.set_yticks([])
            if column == 0:
                axes.set_ylabel(name, fontsize=8)
    figure.suptitle(f"eps {max(report.eps):g} ({report.threat_model})", fontsize=9)
    _write(figure, path)


def plot_mi_probe(summary: dict, path: str | os.PathLike) -> None:
    """Bar plot of the MI probe: four measurements, robust vs fooled samples side by side."""
    groups = summary["groups"]
    measurements = summary["measurements"]
    figure = Figure(figsize=(7.2, 4.2))
    axes = figure.add_subplot()
    positions = np.arange(len(measurements))
    width = 0.8 / len(groups)
    for index, group in enumerate(groups):
        stats = summary["by_group"][group]
        means = [stats[name]["mean"] if stats["count"] else np.nan for name in measurements]
        errors = [stats[name]["std"] if stats["count"] else 0.0 for name in measurements]
        axes.bar(
            positions + (index - (len(groups) - 1) / 2) * width,
            means,
            width,
            yerr=errors,
            capsize=3,
            label=f"{group} (n={stats['count']})",
        )
    axes.set_xticks(positions)
    axes.set_xticklabels([summary["labels"][name] for name in measurements], fontsize=8)
    axes.set_ylabel("MI estimate (nats)")
    axes.axhline(0.0, color="black", linewidth=0.6)
    axes.legend(fontsize="small")
    axes.set_title(f"MI probe ({summary['attack']['name']}, eps {summary['attack']['eps']:g})")
    _write(figure, path)


def _write(figure: Figure, path: str | os.PathLike) -> None:
    FigureCanvasAgg(figure)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def plot_standard_mi_radar(summary: dict, path: str | os.PathLike) -> None:
    """The proof of concept's radar chart (paper Fig. 2): one axis per attack, one closed
    line per standard-MI measurement, offset values (worst sample = 0)."""
    names = [row["name"] for row in summary["attacks"]]
    angles = np.linspace(0.0, 2 * np.pi, len(names), endpoint=False)
    figure = Figure(figsize=(5.6, 5.2))
    axes = figure.add_subplot(projection="polar")
    for key, label in summary["labels"].items():
        values = [row["offset"][key] for row in summary["attacks"]]
        axes.plot([*angles, angles[0]], [*values, values[0]], marker="o", label=label)
        axes.fill([*angles, angles[0]], [*values, values[0]], alpha=0.12)
    axes.set_xticks(angles)
    axes.set_xticklabels(names, fontsize=8)
    axes.set_title("Standard MI (offset: worst sample = 0)", fontsize=9)
    axes.legend(fontsize="x-small", loc="lower right", bbox_to_anchor=(1.15, -0.1))
    _write(figure, path)
