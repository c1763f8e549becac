"""Evaluate: robustness of standard AT and MIAT on the test split, the MI probe, the blessing."""

from __future__ import annotations

import json
import math
import pathlib

import keras

from mi_keras.evaluation import AttackSpec, DataSlice, evaluate_robustness
from mi_keras.evaluation.mi_probe import MIProbe
from pipeline.components.artifacts import ClassifierFiles, EstimatorFiles
from pipeline.components.comparison_table import BASELINE_LABEL, TRAINED_LABEL_SECTIONS, ComparisonTable, trained_label
from pipeline.components.evaluation_summaries import (
    write_accuracy_table,
    write_mi_histograms,
    write_robustness,
)
from pipeline.components.stage_data import StageData
from pipeline.orchestration.artifact import Artifact, ArtifactType
from pipeline.orchestration.stage import Inputs, Stage, StageContext, StageName, register_stage
from pipeline.settings import PipelineConfig

BLESSING_FILE = "blessing.json"
HEALTH_FILE = "training_health.json"  # the training's MIHealthMonitor verdict, beside each model's report


@register_stage("evaluate", order=60)
class Evaluate(Stage):
    """Like TFX's Evaluator: measures both models and blesses MIAT when it passes thresholds.

    Every configured attack (default FGSM, PGD-20, PGD-40, CW-inf, at the training eps)
    runs on the whole test split against the standard-AT and the MIAT classifiers (best
    epoch by validation, and the last epoch with ``evaluate.last_epoch``), with the
    gradient-masking checks of `mi_keras.evaluation`. The MI probe measures the natural and
    adversarial MI of robust and fooled samples under PGD-20. TensorBoard gets the accuracy
    per attack, a grid of clean vs adversarial images and histograms of the MI values.

    Outputs: ``evaluation`` (one robustness report per model, ``comparison.json`` / ``.md``
    and the MI probes) and ``blessing`` (``blessing.json``: whether MIAT's clean accuracy,
    its accuracy under ``evaluate.bless_attack`` and its masking checks pass, and whether it
    is better than chance: a constant or chance-level classifier is never blessed by default;
    it also carries MIAT's ``training_health``). Each model's folder also holds
    ``training_health.json``, the verdict of the `MIHealthMonitor` that watched its training;
    the export stage's metadata carries it with the rest of the training summary.
    """

    def tensorboard_run(self, config: PipelineConfig) -> str:
        return "evaluation"

    def upstream(self, config: PipelineConfig) -> tuple[StageName, ...]:
        return (StageName.INGEST, StageName.PRETRAIN, StageName.ESTIMATORS, StageName.TRAIN)

    def config_sections(self, config: PipelineConfig) -> tuple[str, ...]:
        return ("seed", "attack", "evaluate", *TRAINED_LABEL_SECTIONS)

    def run(self, context: StageContext, inputs: Inputs) -> list[Artifact]:
        config, settings = context.config, context.config.evaluate
        data = StageData(inputs[StageName.INGEST]["dataset"])
        test = data.arrays("test")
        output = context.output_dir / "evaluation"
        table = ComparisonTable(
            [attack.value for attack in settings.attacks],
            config.attack.eps,
            config.attack.threat_model.value,
            len(test[1]),
        )
        trained = trained_label(config.train)
        for label, key, path, best in self._models(inputs, trained, settings.last_epoch):
            print(f"[evaluate] {label}: {path}")
            report = evaluate_robustness(
                str(path),
                test,
                eps=config.attack.eps,
                threat_model=config.attack.threat_model,
                attacks=[attack.value for attack in settings.attacks],
                batch_size=settings.batch_size,
                seed=config.seed,
                restarts=settings.restarts,
                progress=context.verbose > 0,
                out_dir=str(output / key),
                save_next_to_model=False,
                description=f"{data.info['name']} test split",
                masking_checks=settings.masking_checks,
            )
            table.add(label, report)
            write_robustness(context.tensorboard_dir / key, report)
            if settings.mi_probe and best:
                self._probe(context, inputs, path, test, output / key, context.tensorboard_dir / key)
        table.save(output)
        print(table.to_markdown())
        health = self._training_health(inputs, output)
        write_accuracy_table(context.tensorboard_dir, table.to_markdown(), f"{data.info['name']} test split")
        blessed, reasons = _bless(table.row(trained), config, data.description["class_counts"]["test"])
        (output / BLESSING_FILE).write_text(
            json.dumps({"blessed": blessed, "reasons": reasons, "training_health": health["miat"]}, indent=2)
        )
        metrics = {f"{row.label}/clean": row.clean_accuracy for row in table.rows}
        metrics.update(
            {f"{row.label}/{attack}": value for row in table.rows for attack, value in row.robust_accuracy.items()}
        )
        context.log_metrics({**metrics, "blessed": float(blessed)})
        miat = table.row(trained)
        return [
            context.artifact(
                "evaluation",
                ArtifactType.EVALUATION,
                "evaluation",
                clean_accuracy=miat.clean_accuracy,
                **miat.robust_accuracy,
            ),
            context.artifact(
                "blessing", ArtifactType.BLESSING, f"evaluation/{BLESSING_FILE}", blessed=blessed, reasons=reasons
            ),
        ]

    @staticmethod
    def _training_health(inputs: Inputs, output: pathlib.Path) -> dict[str, dict | None]:
        """Each trained model's `MIHealthMonitor` verdict, written next to its evaluation and printed."""
        health = {}
        for key, stage in (("standard_at", StageName.PRETRAIN), ("miat", StageName.TRAIN)):
            verdict = ClassifierFiles.of(inputs[stage]["model"]).read_summary().get("health")
            health[key] = verdict
            (output / key).mkdir(parents=True, exist_ok=True)
            (output / key / HEALTH_FILE).write_text(json.dumps(verdict, indent=2))
            for finding in (verdict or {}).get("findings", []):
                print(f"[evaluate] {key} training health: {finding['message']}")
        return health

    @staticmethod
    def _models(inputs: Inputs, trained: str, last_epoch: bool) -> list[tuple[str, str, pathlib.Path, bool]]:
        """(label, output folder, classifier file, best epoch?) per evaluated model."""
        baseline = ClassifierFiles.of(inputs[StageName.PRETRAIN]["model"])
        miat = ClassifierFiles.of(inputs[StageName.TRAIN]["model"])
        models = [(BASELINE_LABEL, "standard_at", baseline.best, True), (trained, "miat", miat.best, True)]
        if last_epoch:
            models += [
                (f"{BASELINE_LABEL} (last epoch)", "standard_at_last", baseline.last, False),
                (f"{trained} (last epoch)", "miat_last", miat.last, False),
            ]
        return models

    @staticmethod
    def _probe(
        context: StageContext, inputs: Inputs, path: pathlib.Path, test, output: pathlib.Path, log_dir: pathlib.Path
    ) -> None:
        config = context.config
        data = DataSlice.from_source(test)  # one PGD pass feeds both the summary and the histograms
        batch_size = max(2, config.evaluate.batch_size)
        # The estimators were trained on the standard-AT model: its logits' spread is the reference.
        reference = keras.saving.load_model(ClassifierFiles.of(inputs[StageName.PRETRAIN]["model"]).best)
        probe = MIProbe(
            keras.saving.load_model(path),
            *EstimatorFiles.of(inputs[StageName.ESTIMATORS]["estimators"]).load(),
            AttackSpec.PGD20.build(config.attack.eps, config.attack.threat_model, seed=config.seed),
            batch_size=batch_size,
            seed=config.seed,
            progress=context.verbose > 0,
            reference_logit_scale=MIProbe.logit_scale(reference, data.x, batch_size),
        )
        per_sample = probe.measure(data)
        MIProbe.save(probe.summarize(per_sample, data), output / "mi_probe")
        write_mi_histograms(log_dir, per_sample)


def _bless(row, config: PipelineConfig, test_class_counts: list[int]) -> tuple[bool, list[str]]:
    """Whether MIAT passes the thresholds, and one line per check."""
    settings = config.evaluate
    robust = row.robust_accuracy[settings.bless_attack.value]
    checks = [
        (
            row.clean_accuracy >= settings.min_clean_accuracy,
            f"clean accuracy {row.clean_accuracy:.4f} (threshold {settings.min_clean_accuracy})",
        ),
        (
            robust >= settings.min_robust_accuracy,
            f"{settings.bless_attack.display_name} accuracy {robust:.4f} (threshold {settings.min_robust_accuracy})",
        ),
    ]
    if settings.require_above_chance:
        checks.append(_above_chance(row.clean_accuracy, test_class_counts))
    if settings.masking_checks and settings.require_masking_passed:
        checks.append((row.masking_passed, "gradient-masking checks " + ("passed" if row.masking_passed else "FAILED")))
    reasons = [f"{'pass' if passed else 'FAIL'}: {text}" for passed, text in checks]
    return all(passed for passed, _ in checks), reasons


def _above_chance(clean_accuracy: float, class_counts: list[int]) -> tuple[bool, str]:
    """Clean accuracy against chance: the majority-class share, which a constant prediction
    reaches, plus three standard errors of a classifier at that rate on this many examples."""
    count = sum(class_counts)
    chance = max(class_counts) / count
    needed = chance + 3 * math.sqrt(chance * (1 - chance) / count)
    if clean_accuracy > needed:
        return True, f"clean accuracy {clean_accuracy:.4f} is above chance ({chance:.4f}; needs > {needed:.4f})"
    return False, (
        f"clean accuracy {clean_accuracy:.4f} is no better than chance ({chance:.4f}, the majority class's share "
        f"of {count} test examples; needs > {needed:.4f}): constant or chance predictions"
    )
