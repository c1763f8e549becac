"""The evaluation entry point: every attack at every eps, the ensemble and the masking checks."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from mi_keras.enums import ThreatModel
from mi_keras.evaluation.attack_runner import AttackRunner
from mi_keras.evaluation.attack_spec import AttackSpec, default_attacks, parse_attack_list
from mi_keras.evaluation.data_slice import DataSlice
from mi_keras.evaluation.gradient_masking import GradientMaskingChecker
from mi_keras.evaluation.loaded_classifier import LoadedClassifier
from mi_keras.evaluation.report import AttackResult, EnsembleResult, RobustnessReport
from mi_keras.evaluation.report_files import save_report, save_report_next_to_model

logger = logging.getLogger("mi_keras.evaluation")


class RobustnessSuite:
    """A configured evaluation protocol (docs/method.md, section 8), reusable across models.

    Every attack runs on every sample at every eps (so each column is the attack's own robust
    accuracy); a sample is robust when the target is right on ``x`` and on ``x_adv``; the
    ensemble counts the samples robust to all attacks. The gradient-masking checks run after
    the attacks and a failure is logged as a WARNING and flagged in the report.

    Example:
    ```python
    import numpy as np
    from mi_keras.data import load_dataset
    from mi_keras.models import build_classifier

    test, info = load_dataset("digits", "test", batch_size=None, take=32)  # tiny: a smoke run
    x, y = (np.stack(part) for part in zip(*test.as_numpy_iterator()))
    model = build_classifier("small_cnn", info.image_shape, info.num_classes, padding="same")
    from mi_keras.export import export_classifier, next_version_dir

    export_dir = export_classifier(model, next_version_dir("saved_models/digits"))  # saved_models/digits/1
    from mi_keras.evaluation import GradientMaskingChecker, RobustnessSuite, report_markdown

    checker = GradientMaskingChecker(n_examples=16, square_queries=20, steps=(2, 4), restarts=2)  # defaults: 200, 1000, (10, 40), 3
    # CIFAR-10: eps=[8 / 255], attacks=["pgd40", "autoattack"], n_examples=1000.
    suite = RobustnessSuite(eps=[0.3], attacks=["pgd20"], batch_size=500, masking_checker=checker)
    report = suite.evaluate(export_dir, (x, y), n_examples=32)
    print(report_markdown(report))
    ```

    Args:
        eps: one radius or a list of radii.
        threat_model: ``"Linf"`` or ``"L2"``.
        attacks: `AttackSpec` members or names (``"pgd40"``) or a comma-separated string;
            None uses `default_attacks(threat_model)`.
        batch_size: examples per attack call.
        seed: seed of every random draw; the same seed gives the same report numbers.
        restarts: random restarts of PGD-20, PGD-40 and CW-inf.
        surrogate: model or path the ``transfer`` attack crafts on (required with it).
        transfer_attack: the attack crafted on the surrogate (default PGD-40).
        masking_checker: the checks' settings; None uses `GradientMaskingChecker()`.
        masking_checks: run the gradient-masking checks (turning them off is not advised:
            the report then cannot flag a masked model).
        keep_examples: how many images the examples plot shows.
        output_key: SavedModel signature output with the logits (see `LoadedClassifier`).
        input_key: SavedModel signature input with the images.
        jit_compile: compile the attacks with XLA (faster on GPUs, slower on CPUs).
        progress: show progress bars.
    """

    def __init__(
        self,
        eps: float | Sequence[float],
        threat_model: str | ThreatModel = ThreatModel.LINF,
        attacks: Sequence[str | AttackSpec] | str | None = None,
        batch_size: int = 250,
        seed: int = 0,
        restarts: int = 1,
        surrogate=None,
        transfer_attack: str | AttackSpec = AttackSpec.PGD40,
        masking_checker: GradientMaskingChecker | None = None,
        masking_checks: bool = True,
        keep_examples: int = 8,
        output_key: str | None = None,
        input_key: str | None = None,
        jit_compile: bool = False,
        progress: bool = True,
    ):
        eps_values = [eps] if isinstance(eps, (int, float)) else list(eps)
        if not eps_values or any(not isinstance(value, (int, float)) or value <= 0 for value in eps_values):
            raise ValueError(f"`eps` must be a positive number or a non-empty list of them; got {eps!r}.")
        self.eps = sorted({float(value) for value in eps_values})
        self.threat_model = ThreatModel.parse(threat_model, "threat_model")
        if self.threat_model == ThreatModel.WASSERSTEIN:
            raise ValueError(
                "A suite is L-inf or L2; FWA's Wasserstein ball runs inside an L-inf suite, "
                "as in the paper (threat_model='Linf', attacks=['fwa40'])."
            )
        self.attacks = parse_attack_list(attacks) if attacks is not None else default_attacks(self.threat_model)
        self.transfer_attack = AttackSpec.parse(transfer_attack, "transfer_attack")
        if self.transfer_attack == AttackSpec.TRANSFER:
            raise ValueError("`transfer_attack` must be the attack run on the surrogate, not 'transfer'.")
        if AttackSpec.TRANSFER in self.attacks and surrogate is None:
            raise ValueError("The 'transfer' attack needs a `surrogate` model or path to craft on.")
        for spec in self.attacks:
            crafted = self.transfer_attack if spec == AttackSpec.TRANSFER else spec
            # Builds each attack once up front, so a bad combination fails before any work.
            crafted.build(self.eps[0], self.threat_model, restarts, seed, batch_size)
        if not isinstance(keep_examples, int) or keep_examples < 0:
            raise ValueError(f"`keep_examples` must be an integer >= 0; got {keep_examples!r}.")
        self.batch_size = batch_size
        self.seed = seed
        self.restarts = restarts
        self.surrogate = surrogate
        self.masking_checker = (masking_checker or GradientMaskingChecker()) if masking_checks else None
        self.keep_examples = keep_examples
        self.output_key = output_key
        self.input_key = input_key
        self.jit_compile = jit_compile
        self.progress = progress

    def evaluate(
        self, model_or_path, data, n_examples: int | None = None, description: str | None = None
    ) -> RobustnessReport:
        """Evaluates one model on the first ``n_examples`` of ``data``.

        Args:
            model_or_path: a Keras model, a ``.keras`` path or a SavedModel directory.
            data: a ``(x, y)`` pair, a `tf.data.Dataset` of (image, label) or a `DataSlice`.
            n_examples: how many leading examples to evaluate (all when None).
            description: what the data is, for the report.
        """
        started = time.perf_counter()
        classifier = LoadedClassifier.load(model_or_path, self.output_key, self.input_key)
        data = DataSlice.from_source(data, n_examples, description)
        runner = AttackRunner(classifier, self.batch_size, self.seed, self.jit_compile, self.progress)
        clean_started = time.perf_counter()
        clean_predictions = runner.predict(data.x)
        clean_correct = clean_predictions == data.y
        clean_seconds = time.perf_counter() - clean_started

        results, masks, examples = self._attack_all(runner, data, clean_correct)
        ensemble = [self._ensemble(eps, clean_correct, masks, results) for eps in self.eps]

        masking_started = time.perf_counter()
        checks = []
        if self.masking_checker is not None:
            checks = self.masking_checker.run(runner, data, clean_correct, self.threat_model, results, masks)
        masking_seconds = time.perf_counter() - masking_started
        for check in checks:
            if check.failed:
                logger.warning("Gradient-masking check %s FAILED: %s", check.name, check.message)

        return RobustnessReport(
            model=classifier.describe(),
            data=data.describe(),
            threat_model=self.threat_model.value,
            eps=self.eps,
            seed=self.seed,
            batch_size=self.batch_size,
            restarts=self.restarts,
            clean_accuracy=float(np.mean(clean_correct)),
            n_clean_correct=int(np.sum(clean_correct)),
            results=results,
            ensemble=ensemble,
            masking_checks=checks,
            timings={
                "total_seconds": time.perf_counter() - started,
                "clean_seconds": clean_seconds,
                "masking_seconds": masking_seconds,
            },
            clean_examples=(
                data.x[: self.keep_examples],
                data.y[: self.keep_examples],
                clean_predictions[: self.keep_examples],
            ),
            adversarial_examples=examples,
        )

    def _attack_all(self, runner, data, clean_correct):
        """Every attack at every eps: the results, the robust masks and the example images."""
        surrogate = LoadedClassifier.load(self.surrogate) if AttackSpec.TRANSFER in self.attacks else None
        results, masks, examples = [], {}, {}
        for eps in self.eps:
            for spec in self.attacks:
                result, robust, outcome = self._run(runner, spec, eps, data, clean_correct, surrogate)
                results.append(result)
                masks[(spec, eps)] = robust
                if eps == self.eps[-1] and self.keep_examples:
                    examples[spec] = (outcome.examples, outcome.predictions)
        return results, masks, examples

    def _run(self, runner, spec, eps, data, clean_correct, surrogate):
        crafted = self.transfer_attack if spec == AttackSpec.TRANSFER else spec
        attack = crafted.build(eps, self.threat_model, self.restarts, self.seed, self.batch_size)
        name = spec.display_name if spec != AttackSpec.TRANSFER else f"Transfer ({crafted.display_name})"
        outcome = runner.run(
            attack,
            data.x,
            data.y,
            stream=f"{spec.value}@{eps!r}",
            crafting_model=surrogate if spec == AttackSpec.TRANSFER else None,
            keep_examples=self.keep_examples,
            label=f"{name}, eps {eps:g}",
        )
        robust = outcome.correct & clean_correct
        config: dict[str, Any] = attack.get_config()
        details = dict(outcome.details)
        if spec == AttackSpec.TRANSFER:
            config["surrogate"] = surrogate.describe()
            # How strong the attack was where it was crafted (white-box on the surrogate).
            details["surrogate_accuracy_on_x_adv"] = float(np.mean(outcome.crafting_correct))
        result = AttackResult(
            attack=spec.value,
            name=name,
            eps=eps,
            robust_accuracy=float(np.mean(robust)),
            n_robust=int(np.sum(robust)),
            n_examples=len(robust),
            seconds=outcome.seconds,
            white_box=spec.white_box,
            config=config,
            details=details,
        )
        return result, robust, outcome

    def _ensemble(self, eps, clean_correct, masks, results) -> EnsembleResult:
        survived = clean_correct.copy()
        for spec, mask_eps in masks:
            if mask_eps == eps:
                survived &= masks[(spec, eps)]
        return EnsembleResult(
            eps=eps,
            robust_accuracy=float(np.mean(survived)),
            n_robust=int(np.sum(survived)),
            attacks=[result.name for result in results if result.eps == eps],
        )


def evaluate_robustness(
    model_or_path,
    dataset_or_arrays,
    eps: float | Sequence[float],
    threat_model: str | ThreatModel = ThreatModel.LINF,
    attacks: Sequence[str | AttackSpec] | str | None = None,
    n_examples: int | None = None,
    batch_size: int = 250,
    seed: int = 0,
    restarts: int = 1,
    progress: bool = True,
    out_dir: str | None = None,
    save_next_to_model: bool = False,
    description: str | None = None,
    masking_checker: GradientMaskingChecker | None = None,
    **suite_kwargs,
) -> RobustnessReport:
    """Evaluates a model and returns (and optionally saves) its `RobustnessReport`.

    Example:
    ```python
    import numpy as np
    from mi_keras.data import load_dataset
    from mi_keras.models import build_classifier

    test, info = load_dataset("digits", "test", batch_size=None, take=32)  # tiny: a smoke run
    x, y = (np.stack(part) for part in zip(*test.as_numpy_iterator()))
    model = build_classifier("small_cnn", info.image_shape, info.num_classes, padding="same")
    from mi_keras.export import export_classifier, next_version_dir

    export_dir = export_classifier(model, next_version_dir("saved_models/digits"))  # saved_models/digits/1
    from mi_keras.evaluation import GradientMaskingChecker, evaluate_robustness

    checker = GradientMaskingChecker(n_examples=16, square_queries=20, steps=(2, 4), restarts=2)  # defaults: 200, 1000, (10, 40), 3
    report = evaluate_robustness(
        export_dir, (x, y), eps=[0.1, 0.3], attacks=["pgd20", "pgd40"],  # add "autoattack" for the real run
        n_examples=32, out_dir="reports/digits", masking_checker=checker, progress=False,
    )
    ```

    Args:
        model_or_path: a Keras model, a ``.keras`` file or a SavedModel directory.
        dataset_or_arrays: a ``(x, y)`` pair or a `tf.data.Dataset` of (image, label).
        eps: one radius or a list.
        threat_model: ``"Linf"`` or ``"L2"``.
        attacks: attack names or `AttackSpec` members; None is the protocol's default list.
        n_examples: how many leading examples to evaluate (all when None).
        batch_size: examples per attack call.
        seed: seed of every random draw.
        restarts: PGD-family restarts.
        progress: show progress bars.
        out_dir: where to write report.json, report.md and the plots (nothing when None).
        save_next_to_model: also write the JSON with the model when a path is given (off by
            default: an exported version folder is not rewritten unless asked)
            (`report_files.save_report_next_to_model`: ``<model>.robustness.json`` for a .keras
            file, ``<SavedModel>/assets/robustness.json``).
        description: what the data is.
        masking_checker: the masking checks' settings; None uses `GradientMaskingChecker()`.
        **suite_kwargs: other `RobustnessSuite` arguments (surrogate, output_key, ...).
    """
    suite = RobustnessSuite(
        eps,
        threat_model=threat_model,
        attacks=attacks,
        batch_size=batch_size,
        seed=seed,
        restarts=restarts,
        masking_checker=masking_checker,
        progress=progress,
        **suite_kwargs,
    )
    report = suite.evaluate(model_or_path, dataset_or_arrays, n_examples, description)
    if out_dir is not None:
        save_report(report, out_dir)
    if save_next_to_model:
        save_report_next_to_model(report)
    return report
