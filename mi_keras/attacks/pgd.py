"""Projected gradient descent under L-inf or L2 (Madry et al., 2018)."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from mi_keras.attacks.attack import Attack, logits_of, positive_integer
from mi_keras.attacks.geometry import fold_seed, project, random_start, steepest_ascent
from mi_keras.attacks.objectives import attack_objective
from mi_keras.enums import AttackLoss, RandomStart, ThreatModel


@keras.saving.register_keras_serializable(package="mi_keras")
class PGD(Attack):
    """Projected gradient ascent on a per-sample objective, inside the eps ball and [0, 1].

    Each iteration is ``x <- Proj(x + step_size * d)`` with ``d`` the sign of the gradient
    (L-inf) or the L2-normalised gradient (L2). The loop is a ``tf.while_loop``, so the attack
    compiles under XLA and its graph does not grow with ``steps``. The model runs with
    ``training=False`` (BatchNorm frozen), as in MIAT's training attack.

    Example:
    ```python
    from mi_keras.attacks import PGD
    from mi_keras.data import load_dataset
    from mi_keras.models import build_classifier

    test, info = load_dataset("digits", "test", batch_size=8)  # 8x8 digits: no download
    images, labels = next(iter(test))
    model = build_classifier("small_cnn", info.image_shape, info.num_classes, padding="same")
    attack = PGD(eps=8 / 255, steps=10)  # step eps/4, start x + 0.001 N(0, I)
    x_adv = attack(model, images, labels)
    ```

    Args:
        eps: ball radius.
        step_size: step length; defaults to ``eps / 4`` (the paper's setting). Must not
            exceed ``eps``.
        steps: number of iterations (>= 1).
        threat_model: ``"Linf"`` or ``"L2"``.
        random_start: ``"normal"`` (x + 0.001 N(0, I), the official code), ``"uniform"`` in
            the ball, or ``"none"``.
        loss: objective maximised: ``"ce"``, ``"margin"`` (CW), ``"kl"`` (TRADES) or ``"dlr"``.
        restarts: independent runs; per sample the fooled (then highest-loss) run is kept.
        seed: optional int for reproducible starts.
        name: optional display name.
    """

    def __init__(
        self,
        eps: float,
        step_size: float | None = None,
        steps: int = 10,
        threat_model: str | ThreatModel = ThreatModel.LINF,
        random_start: str | RandomStart = RandomStart.NORMAL,
        loss: str | AttackLoss = AttackLoss.CE,
        restarts: int = 1,
        seed: int | None = None,
        name: str | None = None,
    ):
        super().__init__(eps=eps, threat_model=threat_model, seed=seed, name=name)
        self.step_size = float(step_size) if step_size is not None else self.eps / 4
        if self.step_size <= 0 or self.step_size > self.eps + 1e-12:
            raise ValueError(f"`step_size` must be in (0, eps] = (0, {self.eps}]; got {self.step_size}.")
        self.steps = positive_integer(steps, "steps")
        self.restarts = positive_integer(restarts, "restarts")
        self.random_start = RandomStart.parse(random_start, "random_start")
        self.loss = AttackLoss.parse(loss, "loss")

    def perturb(self, model, x, y, seed):
        clean_probabilities = None
        if self.loss == AttackLoss.KL:
            clean_probabilities = tf.stop_gradient(tf.nn.softmax(logits_of(model, x)))
        best = None
        for restart in range(self.restarts):
            start = random_start(x, self.eps, self.threat_model, self.random_start, fold_seed(seed, restart))
            x_adv = self._ascend(model, start, x, y, clean_probabilities)
            if self.restarts == 1:
                return x_adv
            best = self._keep_better(model, best, x_adv, y, clean_probabilities)
        return best[0]

    def _ascend(self, model, start, x, y, clean_probabilities):
        def body(step, x_adv):
            with tf.GradientTape() as tape:
                tape.watch(x_adv)
                logits = logits_of(model, x_adv)
                objective = attack_objective(self.loss, logits, y, clean_probabilities)
                total = tf.reduce_sum(objective)
            # A model whose output ignores its input (gradient masking) gives zeros, not None.
            gradient = tape.gradient(total, x_adv, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            moved = x_adv + self.step_size * steepest_ascent(gradient, self.threat_model)
            return step + 1, project(moved, x, self.eps, self.threat_model)

        _, x_adv = tf.while_loop(lambda step, _: step < self.steps, body, (tf.constant(0), start))
        return x_adv

    def _keep_better(self, model, best, x_adv, y, clean_probabilities):
        logits = logits_of(model, x_adv)
        loss = attack_objective(self.loss, logits, y, clean_probabilities)
        fooled = tf.not_equal(tf.argmax(logits, -1, output_type=tf.int32), y)
        if best is None:
            return x_adv, loss, fooled
        best_x, best_loss, best_fooled = best
        better = (fooled & ~best_fooled) | ((fooled == best_fooled) & (loss > best_loss))
        mask = tf.reshape(better, [-1] + [1] * (len(x_adv.shape) - 1))
        return (
            tf.where(mask, x_adv, best_x),
            tf.where(better, loss, best_loss),
            fooled | best_fooled,
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "step_size": self.step_size,
            "steps": self.steps,
            "random_start": self.random_start.value,
            "loss": self.loss.value,
            "restarts": self.restarts,
        }
