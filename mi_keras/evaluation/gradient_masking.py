"""Gradient-masking checks run with every evaluation (Athalye et al., 2018; Carlini et al., 2019).

A defense that hides its gradient (shattered, stochastic or vanishing gradients) looks robust
to gradient attacks without being robust. Each check below is a symptom listed in "On
Evaluating Adversarial Robustness" (Carlini et al., 2019, section 5): a failure does not prove
masking, but the numbers should not be trusted until it is explained.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from mi_keras.attacks import PGD
from mi_keras.attacks.attack import logits_of
from mi_keras.attacks.square import Square
from mi_keras.enums import ParsableEnum, RandomStart, ThreatModel
from mi_keras.evaluation.attack_runner import AttackRunner
from mi_keras.evaluation.attack_spec import AttackSpec
from mi_keras.evaluation.data_slice import DataSlice
from mi_keras.evaluation.report import AttackResult, CheckStatus, MaskingCheckResult
from mi_keras.objectives import cross_entropy, margin

# A per-sample input gradient whose largest entry is below this is counted as zero.
_ZERO_GRADIENT = 1e-20


class MaskingCheck(ParsableEnum):
    """The checks, in the order they are reported."""

    NON_ZERO_GRADIENT = "non_zero_gradient"
    DECREASES_WITH_EPS = "accuracy_decreases_with_eps"
    NEAR_ZERO_AT_LARGE_EPS = "near_zero_at_large_eps"
    BLACK_BOX_NOT_STRONGER = "black_box_not_stronger"
    MORE_STEPS_NOT_WEAKER = "more_steps_not_weaker"
    MORE_RESTARTS_NOT_WEAKER = "more_restarts_not_weaker"


class GradientMaskingChecker:
    """Runs the masking checks on the first ``n_examples`` of an evaluated slice.

    Checks (each "passed", "failed" or "skipped" with a reason):
    - ``non_zero_gradient``: the input gradient of the margin loss is non-zero for all but
      ``zero_gradient_max_fraction`` of the samples (the margin, unlike the cross-entropy,
      does not vanish on confidently classified samples).
    - ``accuracy_decreases_with_eps``: no attack's accuracy rises with eps by more than
      ``tolerance`` (needs two eps values).
    - ``near_zero_at_large_eps``: PGD-20 at ``large_eps`` (default 0.5 in L-inf, where every
      image can be turned mid-gray; ``0.5 * sqrt(dims)`` in L2) leaves at most
      ``large_eps_max_accuracy``.
    - ``black_box_not_stronger``: Square (``square_queries`` queries) and transfer attacks do
      not beat the best white-box attack at the same eps by more than ``tolerance``.
    - ``more_steps_not_weaker``: PGD with ``steps[1]`` steps is not weaker than with
      ``steps[0]`` (plus PGD-40 vs PGD-20 when the evaluation ran both).
    - ``more_restarts_not_weaker``: PGD with ``restarts`` restarts is not weaker than one run.

    The attacks it runs itself use the largest evaluated eps, a uniform random start and
    step eps / 4.

    Example:
    ```python
    import numpy as np
    from mi_keras.data import load_dataset
    from mi_keras.models import build_classifier

    test, info = load_dataset("digits", "test", batch_size=None, take=32)  # tiny: a smoke run
    x, y = (np.stack(part) for part in zip(*test.as_numpy_iterator()))
    model = build_classifier("small_cnn", info.image_shape, info.num_classes, padding="same")
    from mi_keras.evaluation import GradientMaskingChecker, evaluate_robustness

    checker = GradientMaskingChecker(n_examples=16, square_queries=20, steps=(2, 4), restarts=2)  # defaults: 200, 1000, (10, 40), 3
    report = evaluate_robustness(model, (x, y), eps=[0.3], attacks=["pgd20"], masking_checker=checker, progress=False)
    ```

    Args:
        n_examples: how many leading examples the checks' own attacks use.
        tolerance: allowed accuracy excess (a fraction, 0.02 = 2 points) before a failure.
        large_eps: radius of the "near zero" check; None picks the default above.
        large_eps_max_accuracy: the accuracy allowed at ``large_eps``.
        zero_gradient_max_fraction: the fraction of zero-gradient samples allowed.
        square_queries: query budget of the check's Square attack (0 skips it).
        steps: the (short, long) PGD step counts compared.
        restarts: the restart count compared with a single run.
    """

    def __init__(
        self,
        n_examples: int = 200,
        tolerance: float = 0.02,
        large_eps: float | None = None,
        large_eps_max_accuracy: float = 0.05,
        zero_gradient_max_fraction: float = 0.05,
        square_queries: int = 1000,
        steps: tuple[int, int] = (10, 40),
        restarts: int = 3,
    ):
        if not isinstance(n_examples, int) or n_examples < 1:
            raise ValueError(f"`n_examples` must be a positive integer; got {n_examples!r}.")
        for argument, value in (
            ("tolerance", tolerance),
            ("large_eps_max_accuracy", large_eps_max_accuracy),
            ("zero_gradient_max_fraction", zero_gradient_max_fraction),
        ):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"`{argument}` must be a fraction in [0, 1]; got {value}.")
        if large_eps is not None and large_eps <= 0:
            raise ValueError(f"`large_eps` must be > 0 or None; got {large_eps}.")
        if not isinstance(square_queries, int) or square_queries < 0:
            raise ValueError(f"`square_queries` must be an integer >= 0; got {square_queries!r}.")
        if len(steps) != 2 or not 1 <= steps[0] < steps[1]:
            raise ValueError(f"`steps` must be two increasing step counts >= 1; got {steps!r}.")
        if not isinstance(restarts, int) or restarts < 2:
            raise ValueError(f"`restarts` must be an integer >= 2; got {restarts!r}.")
        self.n_examples = n_examples
        self.tolerance = float(tolerance)
        self.large_eps = large_eps
        self.large_eps_max_accuracy = float(large_eps_max_accuracy)
        self.zero_gradient_max_fraction = float(zero_gradient_max_fraction)
        self.square_queries = square_queries
        self.steps = tuple(steps)
        self.restarts = restarts

    def get_config(self) -> dict:
        return {
            "n_examples": self.n_examples,
            "tolerance": self.tolerance,
            "large_eps": self.large_eps,
            "large_eps_max_accuracy": self.large_eps_max_accuracy,
            "zero_gradient_max_fraction": self.zero_gradient_max_fraction,
            "square_queries": self.square_queries,
            "steps": list(self.steps),
            "restarts": self.restarts,
        }

    def run(
        self,
        runner: AttackRunner,
        data: DataSlice,
        clean_correct: np.ndarray,
        threat_model: ThreatModel,
        results: list[AttackResult],
        robust_masks: dict[tuple[AttackSpec, float], np.ndarray],
    ) -> list[MaskingCheckResult]:
        """All checks, in `MaskingCheck` order.

        Args:
            runner: the evaluation's runner (target, batch size, seed).
            data: the evaluated slice.
            clean_correct: bool ``[n]``, the target is right on the clean sample.
            threat_model: the evaluated threat model.
            results: the evaluation's per-attack results.
            robust_masks: ``(AttackSpec, eps) -> bool [n]`` robust samples of each result.
        """
        context = _Context(self, runner, data, clean_correct, threat_model, results, robust_masks)
        return [
            self._non_zero_gradient(context),
            self._decreases_with_eps(context),
            self._near_zero_at_large_eps(context),
            self._black_box_not_stronger(context),
            self._more_steps_not_weaker(context),
            self._more_restarts_not_weaker(context),
        ]

    def _non_zero_gradient(self, context) -> MaskingCheckResult:
        margin_max, ce_max = context.gradient_magnitudes()
        zero_fraction = float(np.mean(margin_max <= _ZERO_GRADIENT))
        details = {
            "zero_fraction_margin": zero_fraction,
            "zero_fraction_cross_entropy": float(np.mean(ce_max <= _ZERO_GRADIENT)),
            "median_max_abs_gradient_margin": float(np.median(margin_max)),
            "n_examples": len(margin_max),
        }
        passed = zero_fraction <= self.zero_gradient_max_fraction
        message = (
            f"{100 * zero_fraction:.1f}% of the samples have an all-zero input gradient of the "
            f"margin loss (allowed {100 * self.zero_gradient_max_fraction:.1f}%)"
        )
        return _result(MaskingCheck.NON_ZERO_GRADIENT, passed, message, details)

    def _decreases_with_eps(self, context) -> MaskingCheckResult:
        eps_values = sorted({result.eps for result in context.results})
        if len(eps_values) < 2:
            return _skipped(MaskingCheck.DECREASES_WITH_EPS, "needs at least two eps values")
        violations = []
        for spec in dict.fromkeys(result.spec for result in context.results):
            same = [r for r in context.results if r.spec == spec]
            curve = sorted((r.eps, r.robust_accuracy) for r in same)
            for (eps_a, acc_a), (eps_b, acc_b) in zip(curve, curve[1:], strict=False):
                if acc_b > acc_a + self.tolerance:
                    violations.append({"attack": same[0].name, "eps": [eps_a, eps_b], "accuracy": [acc_a, acc_b]})
        message = (
            "every attack's accuracy falls (or stays) as eps grows"
            if not violations
            else "accuracy rises with eps for "
            + ", ".join(f"{v['attack']} ({v['eps'][0]:g} -> {v['eps'][1]:g})" for v in violations)
        )
        return _result(MaskingCheck.DECREASES_WITH_EPS, not violations, message, {"violations": violations})

    def _near_zero_at_large_eps(self, context) -> MaskingCheckResult:
        large_eps = self.large_eps or context.default_large_eps()
        accuracy = context.accuracy(context.robust(_pgd(large_eps, 20, 1, context.threat_model), "large_eps"))
        message = (
            f"PGD-20 at eps {large_eps:g} leaves {100 * accuracy:.1f}% accuracy "
            f"(allowed {100 * self.large_eps_max_accuracy:.1f}%)"
        )
        details = {"large_eps": large_eps, "accuracy": accuracy, "n_examples": context.n}
        return _result(
            MaskingCheck.NEAR_ZERO_AT_LARGE_EPS,
            accuracy <= self.large_eps_max_accuracy,
            message,
            details,
        )

    def _black_box_not_stronger(self, context) -> MaskingCheckResult:
        comparisons = []
        for result in context.results:
            if result.white_box:
                continue
            white_box = context.best_white_box(result.eps)
            if white_box is not None:
                comparisons.append(
                    _comparison(
                        result.name,
                        result.eps,
                        result.robust_accuracy,
                        *white_box,
                        len(context.clean_correct),
                    )
                )
        own = self._own_square_comparison(context)
        if own is not None:
            comparisons.append(own)
        if not comparisons:
            return _skipped(
                MaskingCheck.BLACK_BOX_NOT_STRONGER,
                "no black-box result to compare (Square queries set to 0, and no Square or transfer attack evaluated)",
            )
        beaten = [c for c in comparisons if c["black_box_accuracy"] < c["white_box_accuracy"] - self.tolerance]
        message = (
            "no black-box attack beats the best white-box attack"
            if not beaten
            else "black-box beats white-box: "
            + ", ".join(
                f"{c['black_box']} {100 * c['black_box_accuracy']:.1f}% < {c['white_box']} "
                f"{100 * c['white_box_accuracy']:.1f}% at eps {c['eps']:g}"
                for c in beaten
            )
        )
        return _result(MaskingCheck.BLACK_BOX_NOT_STRONGER, not beaten, message, {"comparisons": comparisons})

    def _own_square_comparison(self, context):
        eps = context.check_eps
        already_evaluated = any(r.attack == AttackSpec.SQUARE.value and np.isclose(r.eps, eps) for r in context.results)
        if self.square_queries == 0 or already_evaluated:
            return None
        square = Square(eps, threat_model=context.threat_model, queries=self.square_queries)
        square_accuracy = context.accuracy(context.robust(square, "square"))
        pgd_mask = context.robust(_pgd(eps, self.steps[1], 1, context.threat_model), "pgd_long")
        name, accuracy = f"PGD-{self.steps[1]}", context.accuracy(pgd_mask)
        evaluated = context.best_white_box(eps, subset=True)
        if evaluated is not None and evaluated[1] < accuracy:
            name, accuracy = evaluated
        return _comparison(
            f"Square ({self.square_queries} queries)",
            eps,
            square_accuracy,
            name,
            accuracy,
            context.n,
        )

    def _more_steps_not_weaker(self, context) -> MaskingCheckResult:
        short_steps, long_steps = self.steps
        eps = context.check_eps
        short = context.accuracy(context.robust(_pgd(eps, short_steps, 1, context.threat_model), "pgd_short"))
        long = context.accuracy(context.robust(_pgd(eps, long_steps, 1, context.threat_model), "pgd_long"))
        pairs = [_pair(eps, f"PGD-{short_steps}", f"PGD-{long_steps}", [short, long], context.n)]
        fewer, more = AttackSpec.PGD20, AttackSpec.PGD40
        if {fewer, more} <= {r.spec for r in context.results}:
            for eps_value in sorted({r.eps for r in context.results}):
                accuracies = [context.find(fewer, eps_value), context.find(more, eps_value)]
                if None not in accuracies:
                    pairs.append(
                        _pair(eps_value, fewer.display_name, more.display_name, accuracies, len(context.clean_correct))
                    )
        return self._monotone(MaskingCheck.MORE_STEPS_NOT_WEAKER, pairs)

    def _more_restarts_not_weaker(self, context) -> MaskingCheckResult:
        eps = context.check_eps
        steps = self.steps[0]
        # The same stream gives both runs the same first start: restarts can only add strength.
        single = context.accuracy(context.robust(_pgd(eps, steps, 1, context.threat_model), "pgd_short"))
        several = context.accuracy(context.robust(_pgd(eps, steps, self.restarts, context.threat_model), "pgd_short"))
        pairs = [_pair(eps, f"PGD-{steps}", f"PGD-{steps} x{self.restarts}", [single, several], context.n)]
        return self._monotone(MaskingCheck.MORE_RESTARTS_NOT_WEAKER, pairs)

    def _monotone(self, check: MaskingCheck, pairs: list[dict]) -> MaskingCheckResult:
        worse = [p for p in pairs if p["accuracy"][1] > p["accuracy"][0] + self.tolerance]
        if worse:
            message = "the stronger attack leaves MORE accuracy: " + "; ".join(map(_describe_pair, worse))
        else:
            message = "; ".join(map(_describe_pair, pairs))
        return _result(check, not worse, message, {"pairs": pairs})


def _pair(eps: float, fewer: str, more: str, accuracy: list[float], n_examples: int) -> dict:
    """A weaker and a stronger attack's accuracies, which a monotone check compares."""
    return {"eps": eps, "fewer": fewer, "more": more, "accuracy": accuracy, "n_examples": n_examples}


class _Context:
    """One run of the checks: the subset, and the attacks already run on it (memoised)."""

    def __init__(self, checker, runner, data, clean_correct, threat_model, results, robust_masks):
        self.checker = checker
        self.runner = runner
        self.threat_model = ThreatModel.parse(threat_model, "threat_model")
        self.results = results
        self.robust_masks = robust_masks
        self.clean_correct = clean_correct
        self.n = min(checker.n_examples, len(data))
        self.x, self.y = data.x[: self.n], data.y[: self.n]
        self.check_eps = max(result.eps for result in results) if results else None
        self._cache = {}

    def accuracy(self, mask: np.ndarray) -> float:
        return float(np.mean(mask))

    def robust(self, attack, stream: str) -> np.ndarray:
        key = (stream, repr(attack))
        if key not in self._cache:
            outcome = self.runner.run(
                attack,
                self.x,
                self.y,
                stream=f"masking/{stream}",
                label=f"masking check: {attack.name}",
            )
            self._cache[key] = outcome.correct & self.clean_correct[: self.n]
        return self._cache[key]

    def find(self, spec: AttackSpec, eps: float) -> float | None:
        for result in self.results:
            if result.spec == spec and np.isclose(result.eps, eps):
                return result.robust_accuracy
        return None

    def best_white_box(self, eps: float, subset: bool = False):
        """(name, accuracy) of the strongest evaluated white-box attack at eps, or None.

        Only attacks bounded by the suite's own ball count (FWA's Wasserstein ball does not).
        """
        candidates = [
            (result.name, self.robust_masks[(result.spec, result.eps)])
            for result in self.results
            if result.white_box
            and np.isclose(result.eps, eps)
            and AttackSpec(result.attack).ball(self.threat_model) == self.threat_model
        ]
        if not candidates:
            return None
        scored = [(name, self.accuracy(mask[: self.n] if subset else mask)) for name, mask in candidates]
        return min(scored, key=lambda item: item[1])

    def default_large_eps(self) -> float:
        if self.threat_model == ThreatModel.LINF:
            return 0.5
        return 0.5 * math.sqrt(float(np.prod(self.x.shape[1:])))

    def gradient_magnitudes(self) -> tuple[np.ndarray, np.ndarray]:
        """Per sample, the largest absolute input-gradient entry of the margin and the CE."""
        target = self.runner.target

        @tf.function(reduce_retracing=True)
        def magnitudes(images, labels):
            with tf.GradientTape(persistent=True) as tape:
                tape.watch(images)
                logits = logits_of(target, images)
                margin_loss = tf.reduce_sum(margin(logits, labels))
                ce_loss = tf.reduce_sum(cross_entropy(logits, labels))
            return (
                # A model cut off from its input (tf.stop_gradient) has a None gradient: zero.
                _largest_entry(tape.gradient(margin_loss, images, unconnected_gradients="zero")),
                _largest_entry(tape.gradient(ce_loss, images, unconnected_gradients="zero")),
            )

        margins, ces = [], []
        for begin in range(0, self.n, self.runner.batch_size):
            stop = begin + self.runner.batch_size
            margin_max, ce_max = magnitudes(tf.constant(self.x[begin:stop]), tf.constant(self.y[begin:stop]))
            margins.append(margin_max.numpy())
            ces.append(ce_max.numpy())
        return np.concatenate(margins), np.concatenate(ces)


def _largest_entry(gradient: tf.Tensor) -> tf.Tensor:
    return tf.reduce_max(tf.abs(tf.reshape(gradient, [tf.shape(gradient)[0], -1])), axis=-1)


def _describe_pair(pair: dict) -> str:
    fewer, more = pair["accuracy"]
    return f"{pair['more']} {100 * more:.1f}% vs {pair['fewer']} {100 * fewer:.1f}% at eps {pair['eps']:g}"


def _pgd(eps: float, steps: int, restarts: int, threat_model: ThreatModel) -> PGD:
    return PGD(
        eps,
        steps=steps,
        threat_model=threat_model,
        random_start=RandomStart.UNIFORM,
        restarts=restarts,
        name=f"PGD-{steps}" + (f" x{restarts}" if restarts > 1 else ""),
    )


def _comparison(black_box, eps, black_box_accuracy, white_box, white_box_accuracy, n_examples) -> dict:
    return {
        "black_box": black_box,
        "eps": float(eps),
        "black_box_accuracy": float(black_box_accuracy),
        "white_box": white_box,
        "white_box_accuracy": float(white_box_accuracy),
        "n_examples": int(n_examples),
    }


def _result(check: MaskingCheck, passed: bool, message: str, details: dict) -> MaskingCheckResult:
    status = CheckStatus.PASSED if passed else CheckStatus.FAILED
    return MaskingCheckResult(check.value, status.value, message, details)


def _skipped(check: MaskingCheck, reason: str) -> MaskingCheckResult:
    return MaskingCheckResult(check.value, CheckStatus.SKIPPED.value, reason, {})
