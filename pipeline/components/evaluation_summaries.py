"""TensorBoard summaries of an evaluation: the accuracy table, image grids, MI histograms."""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from mi_keras.evaluation import RobustnessReport
from mi_keras.evaluation.mi_probe import GROUPS, MEASUREMENTS

# Small images (8x8 digits) are scaled up so that TensorBoard shows them legibly.
_MIN_DISPLAY_SIZE = 64


def write_accuracy_table(log_dir: str | os.PathLike, markdown: str, description: str) -> None:
    """The evaluation's comparison table (one row per model: clean and robust accuracies) as
    one ``accuracy`` entry of TensorBoard's Text dashboard, which renders the Markdown table."""
    with tf.summary.create_file_writer(str(log_dir)).as_default():
        tf.summary.text("accuracy", markdown, step=0, description=description)


def write_robustness(log_dir: str | os.PathLike, report: RobustnessReport) -> None:
    """A grid of clean vs adversarial test images of one model (its accuracies go to the table
    of `write_accuracy_table`, not to one-point line charts).

    The grid's first row holds clean test images, each following row the same images
    under one attack (at the largest evaluated eps).
    """
    with tf.summary.create_file_writer(str(log_dir)).as_default():
        if report.clean_examples is not None and report.adversarial_examples:
            rows = [report.clean_examples[0], *(images for images, _ in report.adversarial_examples.values())]
            largest = max(report.eps)
            names = ", ".join(["clean", *(report.result(spec, largest).name for spec in report.adversarial_examples)])
            tf.summary.image("clean_vs_adversarial", image_grid(rows)[None], step=0, description=f"Rows: {names}.")


def write_mi_histograms(log_dir: str | os.PathLike, per_sample: dict[str, np.ndarray]) -> None:
    """Histograms of the four MI measurements, over robust and over fooled test samples."""
    groups = {group: per_sample[group] for group in GROUPS}
    with tf.summary.create_file_writer(str(log_dir)).as_default():
        for name, label in MEASUREMENTS.items():
            for group, mask in groups.items():
                if mask.any():
                    tf.summary.histogram(
                        f"mi/{name}/{group}",
                        per_sample[name][mask],
                        step=0,
                        description=f"{label} on {group} samples (nats).",
                    )


def image_grid(rows: list[np.ndarray]) -> np.ndarray:
    """Tiles ``rows`` (each ``[n, H, W, C]`` in [0, 1]) into one ``[rows*H', n*W', C]`` image."""
    count = min(len(images) for images in rows)
    height, width, channels = rows[0].shape[1:]
    scale = max(1, -(-_MIN_DISPLAY_SIZE // max(height, width)))
    tiles = [np.concatenate(list(images[:count]), axis=1) for images in rows]
    grid = np.concatenate(tiles, axis=0).repeat(scale, axis=0).repeat(scale, axis=1)
    return (
        np.clip(grid, 0.0, 1.0).astype(np.float32).reshape(len(rows) * height * scale, count * width * scale, channels)
    )
