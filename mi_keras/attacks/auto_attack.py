"""AutoAttack (Croce and Hein, 2020): a sample is robust only if it survives every attack."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from mi_keras.attacks.apgd import APGD
from mi_keras.attacks.apgd_targeted import APGDTargeted
from mi_keras.attacks.attack import Attack, logits_of, positive_integer
from mi_keras.attacks.fab import FAB
from mi_keras.attacks.geometry import fold_seed, perturbation_norm, where_samples
from mi_keras.attacks.square import Square
from mi_keras.enums import AttackLoss, ParsableEnum, ThreatModel

# Outputs farther than this outside the eps ball or the [0, 1] box are a bug in the attack.
_BALL_TOLERANCE = 1e-5


class AutoAttackVersion(ParsableEnum):
    """Which attack list AutoAttack runs."""

    STANDARD = "standard"  # APGD-CE, APGD-T, FAB-T, Square
    PLUS = "plus"  # + APGD-DLR and FAB with 5 restarts, APGD-CE with 5 restarts
    CUSTOM = "custom"  # the given `attacks`


@dataclasses.dataclass(frozen=True)
class AutoAttackResult:
    """What `AutoAttack.run` measured.

    Attributes:
        x_adv: ``[n, ...]`` float32: a fooling point for every non-robust sample (the clean
            input where the clean prediction is already wrong), the clean input elsewhere.
        robust: ``[n]`` bool: correct on the clean input and on every attack.
        clean_accuracy: accuracy on the clean inputs.
        robust_accuracy_after: attack name -> robust accuracy after that attack and all the
            previous ones (cumulative, in the order run), like the official report.
        seconds: attack name -> wall time of that attack.
        seed: the ``[2]`` int seed the run used (reproduce it by passing it back).
    """

    x_adv: np.ndarray
    robust: np.ndarray
    clean_accuracy: float
    robust_accuracy_after: dict[str, float]
    seconds: dict[str, float]
    seed: tuple[int, int]

    @property
    def robust_accuracy(self) -> float:
        return _mean(self.robust)


def _mean(flags: np.ndarray) -> float:
    return float(np.mean(flags)) if flags.size else 0.0


@keras.saving.register_keras_serializable(package="mi_keras")
class AutoAttack(Attack):
    """AutoAttack (Croce and Hein, ICML 2020), natively in TensorFlow.

    "standard" runs, in this order, APGD-CE (no restarts), APGD-T (9 target classes), FAB-T
    (9 target classes) and Square (5,000 queries), with 100 iterations for the gradient
    attacks; "plus" runs APGD-CE and APGD-DLR with 5 restarts, FAB (untargeted, 5 restarts),
    Square (5,000 queries), APGD-T and FAB-T (9 target classes); "custom" runs ``attacks``.

    `run` evaluates like the official code: each attack sees only the samples still robust,
    gathered eagerly between attacks and fed in chunks of ``batch_size`` to the attack's
    ``tf.function`` (one trace per attack, any chunk size); a sample is robust only if it is
    classified correctly on the clean input and survives every attack. It returns the
    per-attack cumulative robust accuracy and timings. Every output is checked to lie in the
    eps ball and [0, 1] (an attack that breaks this raises ``RuntimeError``).

    Calling the attack (``auto_attack(model, x, y)``) eagerly returns ``run(...).x_adv``.
    Called inside a ``tf.function``, each attack gets the samples still robust, gathered in
    the graph (one trace for any batch size): the same ensemble, without the per-attack
    report.

    Example:
    ```python
    from mi_keras.attacks import AutoAttack
    from mi_keras.data import load_dataset
    from mi_keras.models import build_classifier

    test, info = load_dataset("digits", "test", batch_size=8)  # 8x8 digits: no download
    images, labels = next(iter(test))
    model = build_classifier("small_cnn", info.image_shape, info.num_classes, padding="same")
    # The standard version at tiny size (the paper: steps=100, queries=5000).
    auto_attack = AutoAttack(eps=8 / 255, version="standard", steps=5, queries=20, n_target_classes=2, seed=0)
    result = auto_attack.run(model, images, labels)
    print(result.robust_accuracy, result.robust_accuracy_after)
    ```

    Args:
        eps: ball radius.
        threat_model: ``"Linf"`` or ``"L2"``.
        version: ``"standard"``, ``"plus"`` or ``"custom"``.
        attacks: for ``"custom"`` only: the `Attack` objects to run, in order; each must use
            this ``eps`` and ``threat_model``.
        steps: iterations of APGD, APGD-T and FAB (100 in the published versions).
        queries: Square's queries (5,000 in the published versions).
        n_target_classes: target classes of APGD-T and FAB-T (9; needs >= 10 classes).
        batch_size: largest chunk of samples given to an attack at once.
        seed: optional int; the same seed gives the same result.
        name: optional display name.
    """

    def __init__(
        self,
        eps: float,
        threat_model: str | ThreatModel = ThreatModel.LINF,
        version: str | AutoAttackVersion = AutoAttackVersion.STANDARD,
        attacks: Sequence[Attack] | None = None,
        steps: int = 100,
        queries: int = 5000,
        n_target_classes: int = 9,
        batch_size: int = 250,
        seed: int | None = None,
        name: str | None = None,
    ):
        super().__init__(eps=eps, threat_model=threat_model, seed=seed, name=name)
        self.version = AutoAttackVersion.parse(version, "version")
        self.steps = positive_integer(steps, "steps")
        self.queries = positive_integer(queries, "queries")
        self.n_target_classes = positive_integer(n_target_classes, "n_target_classes")
        self.batch_size = positive_integer(batch_size, "batch_size")
        if self.version == AutoAttackVersion.CUSTOM:
            self.attacks = self._checked_custom(attacks)
        else:
            if attacks is not None:
                raise ValueError(f"`attacks` is only used with version='custom'; got version='{self.version}'.")
            self.attacks = self._published_attacks()
        # (model id, attack id) -> (model, tf.function); keeping the model pins its id.
        self._functions: dict[tuple[int, Any], tuple[Any, Callable]] = {}

    def _checked_custom(self, attacks) -> list[Attack]:
        if not attacks:
            raise ValueError("version='custom' needs a non-empty list `attacks` of Attack objects.")
        checked = []
        for attack in attacks:
            if isinstance(attack, dict):
                attack = keras.saving.deserialize_keras_object(attack)
            if not isinstance(attack, Attack):
                raise ValueError(f"`attacks` must hold Attack objects; got {attack!r}.")
            if attack.threat_model != self.threat_model or abs(attack.eps - self.eps) > 1e-12:
                raise ValueError(
                    f"Every attack in `attacks` must use eps={self.eps} and threat_model="
                    f"'{self.threat_model}'; {attack.name} uses eps={attack.eps}, "
                    f"threat_model='{attack.threat_model}'."
                )
            checked.append(attack)
        return checked

    def _published_attacks(self) -> list[Attack]:
        """The official attack lists, with the official restarts and budgets."""
        common = {"eps": self.eps, "threat_model": self.threat_model}
        targets = {"n_target_classes": self.n_target_classes}
        if self.version == AutoAttackVersion.STANDARD:
            return [
                APGD(**common, loss=AttackLoss.CE, steps=self.steps, name="apgd-ce"),
                APGDTargeted(**common, steps=self.steps, **targets, name="apgd-t"),
                FAB(**common, steps=self.steps, targeted=True, **targets, name="fab-t"),
                Square(**common, queries=self.queries, name="square"),
            ]
        return [
            APGD(**common, loss=AttackLoss.CE, steps=self.steps, restarts=5, name="apgd-ce"),
            APGD(**common, loss=AttackLoss.DLR, steps=self.steps, restarts=5, name="apgd-dlr"),
            FAB(**common, steps=self.steps, restarts=5, name="fab"),
            Square(**common, queries=self.queries, name="square"),
            APGDTargeted(**common, steps=self.steps, **targets, name="apgd-t"),
            FAB(**common, steps=self.steps, targeted=True, **targets, name="fab-t"),
        ]

    def _base_seed(self, seed) -> tf.Tensor:
        if seed is not None:
            return tf.cast(tf.reshape(seed, [2]), tf.int64)
        if self.seed is not None:
            return tf.constant([self.seed, 0], tf.int64)
        return tf.random.uniform([2], 0, 2**31 - 1, dtype=tf.int64)

    def perturb(self, model, x, y, seed):
        if tf.executing_eagerly():
            return tf.constant(self.run(model, x, y, seed=seed).x_adv)
        robust = tf.equal(tf.argmax(logits_of(model, x), -1, output_type=tf.int32), y)
        x_adv = x
        for index, attack in enumerate(self.attacks):
            # Each attack sees only the samples still robust, as in `run`.
            rows = tf.where(robust)
            x_live, y_live = tf.gather_nd(x, rows), tf.gather_nd(y, rows)
            candidate = attack.perturb(model, x_live, y_live, fold_seed(seed, index))
            fooled = self._fools(model, candidate, x_live, y_live)
            x_adv = tf.tensor_scatter_nd_update(x_adv, rows, where_samples(fooled, candidate, x_live))
            robust = tf.tensor_scatter_nd_update(robust, rows, ~fooled)
        return x_adv

    def _fools(self, model, x_adv, x, y) -> tf.Tensor:
        """Misclassified and inside the eps ball and the box (tolerating float rounding)."""
        wrong = tf.not_equal(tf.argmax(logits_of(model, x_adv), -1, output_type=tf.int32), y)
        inside = perturbation_norm(x_adv - x, self.threat_model) <= self.eps + _BALL_TOLERANCE
        return wrong & inside

    def _compiled(self, model, key, build: Callable[[], Callable]) -> Callable:
        """A per-model cache of ``tf.function``s, so repeated runs do not retrace."""
        cache_key = (id(model), key)
        if cache_key not in self._functions:
            self._functions[cache_key] = (model, build())
        return self._functions[cache_key][1]

    def _attack_function(self, model, attack: Attack, example: np.ndarray) -> Callable:
        """The attack as a ``tf.function`` traced once for any batch size."""
        signature = [
            tf.TensorSpec([None, *example.shape[1:]], tf.float32),
            tf.TensorSpec([None], tf.int32),
            tf.TensorSpec([2], tf.int64),
        ]
        return self._compiled(
            model,
            id(attack),
            lambda: tf.function(lambda x, y, seed: attack(model, x, y, seed), input_signature=signature),
        )

    def _predict_function(self, model, example: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        """Predicted labels of ``[n, ...]`` inputs, computed in chunks of ``batch_size``."""
        signature = [tf.TensorSpec([None, *example.shape[1:]], tf.float32)]
        predict = self._compiled(
            model,
            "predict",
            lambda: tf.function(
                lambda x: tf.argmax(logits_of(model, x), -1, output_type=tf.int32),
                input_signature=signature,
            ),
        )

        def predicted(inputs: np.ndarray) -> np.ndarray:
            chunks = [predict(inputs[i : i + self.batch_size]).numpy() for i in range(0, len(inputs), self.batch_size)]
            return np.concatenate(chunks) if chunks else np.zeros(0, np.int32)

        return predicted

    def run(
        self,
        model,
        x,
        y,
        seed=None,
        callback: Callable[[str, float, float], None] | None = None,
    ) -> AutoAttackResult:
        """Runs the attacks in order on the still-robust samples and reports per attack.

        Args:
            model: a callable returning logits (run with ``training=False``).
            x: images in [0, 1], ``[n, ...]``.
            y: integer labels, ``[n]``.
            seed: optional ``[2]`` int seed overriding the constructor's ``seed``.
            callback: optional ``callback(attack_name, robust_accuracy, seconds)`` called after
                each attack (for progress bars).
        """
        x = np.asarray(x, np.float32)
        y = np.asarray(y).reshape(-1).astype(np.int32)
        if len(x) != len(y):
            raise ValueError(f"`x` and `y` must have the same length; got {len(x)} and {len(y)}.")
        base_seed = self._base_seed(seed)
        predicted = self._predict_function(model, x)
        robust = predicted(x) == y
        clean_accuracy = _mean(robust)
        x_adv = x.copy()
        after: dict[str, float] = {}
        seconds: dict[str, float] = {}
        for index, attack in enumerate(self.attacks):
            started = time.perf_counter()
            attack_fn = self._attack_function(model, attack, x)
            remaining = np.flatnonzero(robust)
            for chunk, start in enumerate(range(0, len(remaining), self.batch_size)):
                ids = remaining[start : start + self.batch_size]
                chunk_seed = fold_seed(fold_seed(base_seed, index), chunk)
                candidate = attack_fn(tf.constant(x[ids]), tf.constant(y[ids]), chunk_seed).numpy()
                self._check_inside(attack, candidate, x[ids])
                fooled = predicted(candidate) != y[ids]
                x_adv[ids[fooled]] = candidate[fooled]
                robust[ids[fooled]] = False
            key = self._unique_name(attack.name, after)
            after[key] = _mean(robust)
            seconds[key] = time.perf_counter() - started
            if callback is not None:
                callback(key, after[key], seconds[key])
        return AutoAttackResult(
            x_adv=x_adv,
            robust=robust,
            clean_accuracy=clean_accuracy,
            robust_accuracy_after=after,
            seconds=seconds,
            seed=tuple(int(v) for v in base_seed.numpy()),
        )

    def _check_inside(self, attack: Attack, candidate: np.ndarray, x: np.ndarray) -> None:
        if not candidate.size:
            return
        norms = perturbation_norm(tf.constant(candidate - x), self.threat_model).numpy()
        outside_box = candidate.min() < -_BALL_TOLERANCE or candidate.max() > 1 + _BALL_TOLERANCE
        if norms.max() > self.eps + _BALL_TOLERANCE or outside_box:
            raise RuntimeError(
                f"{attack.name} returned points outside the {self.threat_model} ball of radius "
                f"{self.eps} or the [0, 1] box (largest norm {norms.max():.6g}); this is a bug "
                "in that attack."
            )

    @staticmethod
    def _unique_name(name: str, taken: dict[str, float]) -> str:
        if name not in taken:
            return name
        suffix = 2
        while f"{name}#{suffix}" in taken:
            suffix += 1
        return f"{name}#{suffix}"

    def get_config(self) -> dict[str, Any]:
        custom = self.version == AutoAttackVersion.CUSTOM
        return {
            **super().get_config(),
            "version": self.version.value,
            "attacks": [keras.saving.serialize_keras_object(a) for a in self.attacks] if custom else None,
            "steps": self.steps,
            "queries": self.queries,
            "n_target_classes": self.n_target_classes,
            "batch_size": self.batch_size,
        }
