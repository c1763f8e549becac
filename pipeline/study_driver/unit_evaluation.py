"""Evaluates one unit's models on test subsets that every unit of a study shares."""

from __future__ import annotations

import hashlib
import math
import pathlib
from typing import Any

import keras
import numpy as np

from mi_keras.data.splits import stratified_split
from mi_keras.evaluation import AttackSpec, DataSlice, evaluate_robustness
from mi_keras.evaluation.gradient_masking import GradientMaskingChecker
from mi_keras.evaluation.mi_probe import MIProbe
from pipeline.components.artifacts import EstimatorFiles
from pipeline.settings import PipelineConfig
from pipeline.study_driver.study import StudyEvaluation

# Streams of the subset draws, so each subset is fixed by (subset_seed, stream) alone.
_PGD_STREAM, _AUTOATTACK_STREAM, _PROBE_STREAM = 11, 12, 13


def accuracy_record(correct: int, total: int) -> dict[str, float | int]:
    """An accuracy with its subset size and binomial standard error ``sqrt(p (1 - p) / n)``."""
    accuracy = correct / total
    return {"accuracy": accuracy, "n": total, "standard_error": math.sqrt(accuracy * (1 - accuracy) / total)}


def fixed_subsets(labels: np.ndarray, settings: StudyEvaluation) -> dict[str, np.ndarray]:
    """Class-balanced test subsets drawn under ``settings.subset_seed``: PGD, then inside it AA and the probe."""
    everything = np.arange(len(labels))
    pgd = everything
    if settings.pgd_examples is not None and settings.pgd_examples < len(labels):
        pgd = stratified_split(labels, settings.pgd_examples, [settings.subset_seed, _PGD_STREAM])[1]

    def inside_pgd(count: int, stream: int) -> np.ndarray:
        if count >= len(pgd):
            return pgd
        return pgd[stratified_split(labels[pgd], count, [settings.subset_seed, stream])[1]]

    return {
        "pgd": pgd,
        "autoattack": inside_pgd(settings.autoattack_examples, _AUTOATTACK_STREAM),
        "mi_probe": inside_pgd(settings.mi_probe_examples, _PROBE_STREAM),
    }


class UnitEvaluator:
    """The study protocol for one unit's models (docs/results.md shows what it produced).

    - clean accuracy on the whole test split;
    - PGD-40 (step eps / 4, uniform random start) on the PGD subset, for the best-by-
      validation and the last-epoch model; the gradient-masking checks on the best;
    - the MI probe (natural and adversarial MI of robust and fooled samples, PGD-20) on the
      best, with the dataset-seed's estimators, so every method is probed by the same pair,
      and its logit controls (does the natural estimator still read the classifier?);
    - AutoAttack "standard" (APGD-CE, APGD-T, FAB-T, Square 5,000) on its own subset.

    Args:
        settings: the study's `StudyEvaluation`.
        config: the unit's pipeline config (eps, threat model, seed).
        test: the test split ``(x, y)``.
        estimators: the estimators stage's output.
        estimators_target: the classifier the estimators were trained on (the dataset-seed's
            standard-AT model): the reference spread of the probe's logit controls.
        progress: show progress bars.
    """

    def __init__(
        self,
        settings: StudyEvaluation,
        config: PipelineConfig,
        test: tuple[np.ndarray, np.ndarray],
        estimators: EstimatorFiles,
        estimators_target: pathlib.Path,
        progress: bool = False,
    ):
        self.settings = settings
        self.config = config
        self.test = test
        self.estimators = estimators
        self.estimators_target = estimators_target
        self.progress = progress
        self.subsets = fixed_subsets(test[1], settings)

    def describe_subsets(self) -> dict[str, Any]:
        """Each subset's size and the SHA-256 of its indices (equal in every unit of a study)."""
        return {
            name: {
                "n": int(len(indices)),
                "indices_sha256": hashlib.sha256(indices.astype(np.int64).tobytes()).hexdigest(),
            }
            for name, indices in self.subsets.items()
        }

    def training_unit(self, best: pathlib.Path, last: pathlib.Path | None) -> dict[str, Any]:
        """The best-by-validation model in full, the last-epoch one (None: there is none) by clean and PGD."""
        return {
            "best": {**self._clean_and_pgd(best, masking=True), "mi_probe": self._mi_probe(best)},
            "last": self._clean_and_pgd(last, masking=False) if last is not None else None,
        }

    def autoattack(self, model_path: pathlib.Path) -> dict[str, Any]:
        report = self._robustness(model_path, self.subsets["autoattack"], AttackSpec.AUTOATTACK, masking=False)
        result = report.results[0]
        return {
            "autoattack": accuracy_record(result.n_robust, result.n_examples),
            "clean_on_subset": accuracy_record(report.n_clean_correct, result.n_examples),
            "per_attack": result.details,
            "seconds": result.seconds,
        }

    def _clean_and_pgd(self, model_path: pathlib.Path, masking: bool) -> dict[str, Any]:
        report = self._robustness(model_path, self.subsets["pgd"], AttackSpec.PGD40, masking=masking)
        pgd = report.results[0]
        record = {
            "clean": self._clean(model_path),
            "clean_on_pgd_subset": accuracy_record(report.n_clean_correct, pgd.n_examples),
            "pgd40": accuracy_record(pgd.n_robust, pgd.n_examples),
        }
        if masking:
            record["masking_checks"] = [
                {"name": check.name, "status": check.status, "message": check.message}
                for check in report.masking_checks
            ]
        return record

    def _clean(self, model_path: pathlib.Path) -> dict[str, float | int]:
        x, y = self.test
        classifier = keras.saving.load_model(model_path)
        logits = classifier.predict(x, batch_size=self.settings.batch_size, verbose=0)
        return accuracy_record(int(np.sum(np.argmax(logits, axis=-1) == y)), len(y))

    def _robustness(self, model_path: pathlib.Path, indices: np.ndarray, attack: AttackSpec, masking: bool):
        x, y = self.test
        checker = GradientMaskingChecker(
            n_examples=self.settings.masking_examples, square_queries=self.settings.masking_square_queries
        )
        return evaluate_robustness(
            str(model_path),
            (x[indices], y[indices]),
            eps=self.config.attack.eps,
            threat_model=self.config.attack.threat_model,
            attacks=[attack],
            batch_size=self.settings.batch_size,
            seed=self.settings.subset_seed,
            progress=self.progress,
            save_next_to_model=False,
            masking_checks=masking,
            masking_checker=checker,
        )

    def _mi_probe(self, model_path: pathlib.Path) -> dict[str, Any]:
        x, y = self.test
        indices = self.subsets["mi_probe"]
        reference = keras.saving.load_model(self.estimators_target)
        probe = MIProbe(
            keras.saving.load_model(model_path),
            *self.estimators.load(),
            AttackSpec.PGD20.build(
                self.config.attack.eps, self.config.attack.threat_model, seed=self.settings.subset_seed
            ),
            batch_size=self.settings.batch_size,
            seed=self.settings.subset_seed,
            progress=self.progress,
            reference_logit_scale=MIProbe.logit_scale(reference, x[indices], self.settings.batch_size),
        )
        data = DataSlice(x[indices], y[indices], "study MI-probe subset")
        summary = probe.summarize(probe.measure(data), data)
        keys = ("attack", "n_examples", "clean_accuracy", "labels", "by_group", "logit_controls")
        return {key: summary[key] for key in keys}
