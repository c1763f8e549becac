"""The MI probe: natural and adversarial MI of natural and adversarial samples (paper Fig. 2, 4).

With ``n = x_adv - x`` (the adversarial pattern) and ``h`` the classifier, four per-sample
estimates are measured with the two trained `MIEstimator`s:

- ``I_N(x; h(x))``: natural MI of the natural sample;
- ``I_N(x; h(x_adv))``: natural MI of the adversarial sample;
- ``I_A(n; h(x))``: adversarial MI of the natural sample;
- ``I_A(n; h(x_adv))``: adversarial MI of the adversarial sample.

They are averaged over the "robust" samples (correct on ``x`` and ``x_adv``) and the "fooled"
ones (correct on ``x``, wrong on ``x_adv``: the samples MIAT's Eq. 6 selects). The paper's
claim is that fooled adversarial samples have a smaller natural MI and a larger adversarial
MI than their natural counterparts. Values are raw DV estimates in nats (the paper's figures
shift them so that the worst case is 0).

Command line (writes mi_probe.json and mi_probe.png under --out, prints the summary):
```
python -m mi_keras.evaluation.mi_probe --model MODEL --natural-estimator natural.keras \
    --adversarial-estimator adversarial.keras --dataset digits --attack pgd20 --eps 0.2 \
    --out reports/mi_probe
```
The estimators are the ``.keras`` files of the pipeline's estimators stage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from mi_keras.attacks.attack import Attack, logits_of
from mi_keras.attacks.geometry import fold_seed
from mi_keras.enums import EstimatorReading, Selection
from mi_keras.evaluation.attack_spec import AttackSpec
from mi_keras.evaluation.cli_data import add_data_arguments, load_data
from mi_keras.evaluation.data_slice import DataSlice
from mi_keras.evaluation.loaded_classifier import LoadedClassifier
from mi_keras.losses.selection import selection_masks
from mi_keras.mi.bounds import batch_bounds, scoring_batch_size
from mi_keras.mi.mi_terms import LABELS as MEASUREMENTS
from mi_keras.mi.mi_terms import mi_terms, pattern_features, score_against

GROUPS = ("robust", "fooled")
# A paired difference counts when its mean exceeds this many standard errors.
_READING_STANDARD_ERRORS = 2.0
# Below this share of the centred-rescaled logits' gain, the raw logits count as out of range.
_RAW_SHARE_READS = 0.5


class MIProbe:
    """Measures the MI estimates of a classifier's natural and adversarial samples.

    The DV bound uses the other samples of the batch as negatives, so every batch has at
    least 2 samples: a last batch of 1 is merged into the one before it.

    Example:
    ```python
    import numpy as np
    from mi_keras.data import load_dataset
    from mi_keras.models import build_classifier

    test, info = load_dataset("digits", "test", batch_size=None, take=32)  # tiny: a smoke run
    x, y = (np.stack(part) for part in zip(*test.as_numpy_iterator()))
    model = build_classifier("small_cnn", info.image_shape, info.num_classes, padding="same")
    from mi_keras.attacks import PGD
    from mi_keras.evaluation import MIProbe
    from mi_keras.mi import MIEstimator

    natural_estimator, adversarial_estimator = (MIEstimator.for_classifier((8, 8, 1), 10, units=16) for _ in range(2))
    probe = MIProbe(model, natural_estimator, adversarial_estimator, PGD(8 / 255, steps=4), progress=False)
    summary = probe.run((x, y), n_examples=32)  # the paper: 1000 test examples, PGD-40
    probe.save(summary, "reports/mi_probe")  # mi_probe.json, mi_probe.png
    ```

    Paper: Zhou et al., "Improving Adversarial Robustness via Mutual Information
    Estimation", ICML 2022 (Fig. 2 and Fig. 4).

    Args:
        classifier: the target model (returns logits).
        natural_estimator: `MIEstimator` of ``I(x; h(.))``.
        adversarial_estimator: `MIEstimator` of ``I(x_adv - x; h(.))``.
        attack: the attack producing ``x_adv``.
        batch_size: samples per estimator call (>= 2).
        seed: seed of the attack's random draws.
        progress: show a progress bar.
        reference_logit_scale: the spread (`logit_scale`) of the classifier the estimators
            were trained on; None leaves out the centred-rescaled control.
    """

    def __init__(
        self,
        classifier,
        natural_estimator,
        adversarial_estimator,
        attack: Attack,
        batch_size: int = 256,
        seed: int = 0,
        progress: bool = True,
        reference_logit_scale: float | None = None,
    ):
        if reference_logit_scale is not None and not reference_logit_scale > 0:
            raise ValueError(f"`reference_logit_scale` must be positive; got {reference_logit_scale}.")
        self.reference_logit_scale = reference_logit_scale
        self.classifier = classifier
        self.natural_estimator = natural_estimator
        self.adversarial_estimator = adversarial_estimator
        self.attack = attack
        self.batch_size = scoring_batch_size(batch_size)
        self.seed = seed
        self.progress = progress
        self._step = tf.function(self._measure, reduce_retracing=True)

    def _measure(self, x, y, seed):
        x_adv = self.attack(self.classifier, x, y, seed=seed)
        logits = logits_of(self.classifier, x)
        logits_adv = logits_of(self.classifier, x_adv)
        estimators = (self.natural_estimator, self.adversarial_estimator)
        features = pattern_features(*estimators, x, x_adv, training=False)
        terms = mi_terms(*estimators, *features, logits, logits_adv, training=False)
        masks = selection_masks(logits, logits_adv, y, Selection.LOGITS)
        groups = {name: masks[name] > 0 for name in ("robust", "fooled")}
        controls = control_logits(logits, self.reference_logit_scale)
        control_scores = score_against(self.natural_estimator, features[0], list(controls.values()), training=False)
        return {
            **terms._asdict(),
            **{f"natural_mi_natural_{name}": score for name, score in zip(controls, control_scores)},
            "logit_scale": _per_sample_scale(logits),
            "correct": masks["natural_correct"] > 0,
            "correct_adversarial": masks["adversarial_correct"] > 0,
            **groups,
        }

    def measure(self, data, n_examples: int | None = None) -> dict[str, np.ndarray]:
        """Per-sample arrays: the four measurements, the controls ``natural_mi_natural_batch_mean``
        (and ``natural_mi_natural_rescaled``), ``logit_scale``, and the boolean ``correct``,
        ``correct_adversarial``, ``robust`` and ``fooled`` (from `selection_masks`)."""
        data = DataSlice.from_source(data, n_examples, minimum_examples=2)
        base_seed = tf.constant([self.seed, 0], tf.int64)
        progbar = keras.utils.Progbar(len(data)) if self.progress else None
        columns: dict[str, list[np.ndarray]] = {}
        for index, (begin, end) in enumerate(batch_bounds(len(data), self.batch_size)):
            values = self._step(
                tf.constant(data.x[begin:end]),
                tf.constant(data.y[begin:end]),
                fold_seed(base_seed, index),
            )
            for key, value in values.items():
                columns.setdefault(key, []).append(value.numpy())
            if progbar is not None:
                progbar.add(end - begin)
        return {key: np.concatenate(parts) for key, parts in columns.items()}

    def run(self, data, n_examples: int | None = None, description: str | None = None) -> dict[str, Any]:
        """The JSON-ready summary: per group, the count and mean / std of each measurement."""
        data = DataSlice.from_source(data, n_examples, description, minimum_examples=2)
        return self.summarize(self.measure(data), data)

    def summarize(self, per_sample: dict[str, np.ndarray], data: DataSlice) -> dict[str, Any]:
        """The summary of `run` from arrays that `measure` already returned for ``data``."""
        masks = {group: per_sample[group] for group in GROUPS}
        masks["all"] = np.ones_like(per_sample["correct"])
        by_group = {group: _statistics(per_sample, mask) for group, mask in masks.items()}
        return {
            "attack": {
                "name": self.attack.name,
                "eps": self.attack.eps,
                "config": self.attack.get_config(),
            },
            "data": data.describe(),
            "seed": self.seed,
            "batch_size": self.batch_size,
            "n_examples": len(data),
            "clean_accuracy": float(np.mean(per_sample["correct"])),
            "measurements": list(MEASUREMENTS),
            "labels": dict(MEASUREMENTS),
            "groups": list(GROUPS),
            "by_group": by_group,
            "logit_controls": _logit_controls(per_sample, self.reference_logit_scale),
        }

    @staticmethod
    def logit_scale(classifier, x: np.ndarray, batch_size: int = 256) -> float:
        """The spread of a classifier's logits on ``x``: the root mean square of each sample's
        logits minus that sample's mean logit (what the rescaled control matches)."""
        scales = [
            _per_sample_scale(logits_of(classifier, tf.constant(x[begin:end])))
            for begin, end in batch_bounds(len(x), batch_size)
        ]
        return float(tf.sqrt(tf.reduce_mean(tf.square(tf.concat(scales, axis=0)))))

    @staticmethod
    def save(summary: dict[str, Any], directory: str | os.PathLike) -> dict[str, str]:
        """Writes ``mi_probe.json`` and the bar plot ``mi_probe.png``; returns their paths."""
        from mi_keras.evaluation.plots import plot_mi_probe

        os.makedirs(directory, exist_ok=True)
        paths = {
            "json": os.path.join(directory, "mi_probe.json"),
            "plot": os.path.join(directory, "mi_probe.png"),
        }
        with open(paths["json"], "w") as file:
            json.dump(summary, file, indent=2, allow_nan=False)
        plot_mi_probe(summary, paths["plot"])
        return paths


def control_logits(logits: tf.Tensor, reference_scale: float | None) -> dict[str, tf.Tensor]:
    """The control inputs of the natural estimator: ``batch_mean`` (every row the batch's mean
    logits) and, given ``reference_scale``, ``rescaled`` (each row centred, the batch scaled so
    that its root mean square is ``reference_scale``; the predicted classes are unchanged)."""
    logits = tf.cast(logits, tf.float32)
    controls = {"batch_mean": tf.broadcast_to(tf.reduce_mean(logits, axis=0, keepdims=True), tf.shape(logits))}
    if reference_scale is not None:
        centred = logits - tf.reduce_mean(logits, axis=-1, keepdims=True)
        # The floor keeps a constant batch (a collapsed classifier) finite: it stays all zeros.
        spread = tf.sqrt(tf.reduce_mean(tf.square(centred)) + 1e-12)
        controls["rescaled"] = centred * (reference_scale / spread)
    return controls


def _per_sample_scale(logits: tf.Tensor) -> tf.Tensor:
    logits = tf.cast(logits, tf.float32)
    centred = logits - tf.reduce_mean(logits, axis=-1, keepdims=True)
    return tf.sqrt(tf.reduce_mean(tf.square(centred), axis=-1))


def _paired_difference(values: np.ndarray, baseline: np.ndarray) -> dict[str, float]:
    difference = values.astype(np.float64) - baseline
    standard_error = float(difference.std(ddof=1) / np.sqrt(len(difference)))
    return {"mean": float(difference.mean()), "standard_error": standard_error}


def _exceeds(difference: dict[str, float]) -> bool:
    return difference["mean"] > max(0.0, _READING_STANDARD_ERRORS * difference["standard_error"])


def _logit_controls(per_sample: dict[str, np.ndarray], reference_scale: float | None) -> dict[str, Any]:
    """Raw ``I_N(x; h(x))`` against its controls, paired per sample over every example.

    Gains are over the constant (batch-mean) logits. The estimator ``reads`` the classifier
    when the raw gain is significant and, given the rescaled control, at least
    `_RAW_SHARE_READS` of the rescaled gain; ``out_of_range`` when only the rescaled logits
    reach that; ``blind`` when neither gains significantly.
    """
    constant = per_sample["natural_mi_natural_batch_mean"]
    raw_gain = _paired_difference(per_sample["natural_mi_natural"], constant)
    record: dict[str, Any] = {
        "logit_scale": float(np.sqrt(np.mean(np.square(per_sample["logit_scale"])))),
        "reference_logit_scale": reference_scale,
        "batch_mean": float(constant.mean()),
        "raw_gain": raw_gain,
        "rescaled_gain": None,
    }
    reading = EstimatorReading.READS if _exceeds(raw_gain) else EstimatorReading.BLIND
    if reference_scale is not None:
        rescaled_gain = _paired_difference(per_sample["natural_mi_natural_rescaled"], constant)
        record["rescaled_gain"] = rescaled_gain
        if _exceeds(rescaled_gain) and raw_gain["mean"] < _RAW_SHARE_READS * rescaled_gain["mean"]:
            reading = EstimatorReading.OUT_OF_RANGE
    record["reading"] = reading.value
    return record


def _statistics(per_sample: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, Any]:
    count = int(mask.sum())
    stats: dict[str, Any] = {"count": count}
    for name in MEASUREMENTS:
        values = per_sample[name][mask]
        # An empty group has no mean: null in JSON, not a made-up 0.
        stats[name] = {
            "mean": float(values.mean()) if count else None,
            "std": float(values.std()) if count else None,
        }
    return stats


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mi_keras.evaluation.mi_probe",
        description="Natural and adversarial MI of robust and fooled samples (mi-keras).",
    )
    parser.add_argument("--model", required=True, help="a .keras file or a SavedModel directory")
    parser.add_argument("--natural-estimator", required=True, help="the natural MI estimator (.keras)")
    parser.add_argument("--adversarial-estimator", required=True, help="the adversarial MI estimator (.keras)")
    add_data_arguments(parser)
    parser.add_argument(
        "--attack",
        default="pgd20",
        help="one of " + ", ".join(spec.value for spec in AttackSpec if spec != AttackSpec.TRANSFER),
    )
    parser.add_argument(
        "--reference-model",
        help="the classifier the estimators were trained on (the pipeline's pretrain model): "
        "adds the centred-rescaled control to the logit controls",
    )
    parser.add_argument("--eps", type=float, required=True, help="attack radius")
    parser.add_argument("--threat-model", default="Linf", help="Linf or L2")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="directory for mi_probe.json and mi_probe.png")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        attack = AttackSpec.parse(args.attack, "--attack").build(
            args.eps, args.threat_model, seed=args.seed, batch_size=args.batch_size
        )
        data = load_data(args)
        estimators = [keras.saving.load_model(path) for path in (args.natural_estimator, args.adversarial_estimator)]
        classifier = LoadedClassifier.load(args.model)
        reference = LoadedClassifier.load(args.reference_model) if args.reference_model else None
    except ValueError as error:
        parser.error(str(error))
    probe = MIProbe(
        classifier,
        *estimators,
        attack,
        batch_size=args.batch_size,
        seed=args.seed,
        progress=not args.no_progress,
        reference_logit_scale=MIProbe.logit_scale(reference, data.x, args.batch_size) if reference else None,
    )
    summary = probe.run(data)
    if args.out:
        MIProbe.save(summary, args.out)
    print(json.dumps({key: summary[key] for key in ("by_group", "logit_controls")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
