"""Auto-PGD (Croce and Hein, 2020): step-size-free PGD with momentum and checkpoints."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from mi_keras.attacks.attack import Attack, logits_of, positive_integer
from mi_keras.attacks.geometry import (
    fold_seed,
    keep_samples,
    project,
    random_unit_direction,
    steepest_ascent,
    where_samples,
)
from mi_keras.attacks.objectives import attack_objective
from mi_keras.enums import AttackLoss, ThreatModel

_SUPPORTED_LOSSES = (AttackLoss.CE, AttackLoss.DLR)


def checkpoint_schedule(steps: int) -> tuple[np.ndarray, np.ndarray]:
    """APGD's checkpoints as two ``[steps]`` arrays: ``is_checkpoint`` and the window length.

    Checkpoints follow p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06),
    in the integer form of the official code: the first window is ``max(int(0.22 N), 1)``
    iterations and each next window is ``max(int(0.03 N), 1)`` shorter, but never shorter than
    ``max(int(0.06 N), 1)``. For N = 100 this gives 22, 41, 57, 70, 80, 87, 93, 99, exactly the
    paper's ``ceil(p_j N)``.
    """
    window = max(int(0.22 * steps), 1)
    shrink = max(int(0.03 * steps), 1)
    shortest = max(int(0.06 * steps), 1)
    is_checkpoint = np.zeros(steps, dtype=bool)
    window_length = np.zeros(steps, dtype=np.float32)
    iteration = window - 1
    while iteration < steps:
        is_checkpoint[iteration] = True
        window_length[iteration] = window
        window = max(window - shrink, shortest)
        iteration += window
    return is_checkpoint, window_length


@keras.saving.register_keras_serializable(package="mi_keras")
class APGD(Attack):
    """Auto-PGD, untargeted, on the cross-entropy ("APGD-CE") or DLR ("APGD-DLR") loss.

    Follows Croce and Hein (2020), "Reliable evaluation of adversarial robustness with an
    ensemble of diverse parameter-free attacks" (ICML), Algorithm 1, as in the official
    AutoAttack code:

    - start at a random point on the boundary of the eps ball, clipped to [0, 1];
    - first step size ``2 * eps`` (L-inf and L2), then
      ``z = P(x_k + eta * d(grad))`` and
      ``x_{k+1} = P(x_k + 0.75 (z - x_k) + 0.25 (x_k - x_{k-1}))``
      (no momentum on the first step), with ``d`` the sign (L-inf) or normalised gradient (L2);
    - at each checkpoint (see `checkpoint_schedule`) the step size of a sample is halved and the
      sample restarts from its best point when the loss increased in at most a fraction ``rho``
      of the window's steps (the paper says "fewer than"; the official code, followed here,
      "at most"), or when the step was not halved at the previous checkpoint and the best loss
      did not improve since;
    - per sample, the first fooling point found is returned (the official code keeps iterating
      and returns the last one: the robust accuracy is the same); for a sample never fooled, the
      highest-loss point over all runs (the official code returns the clean input there; the
      robust accuracy is the same, and the point is more useful, e.g. for training). Samples
      misclassified already are returned unchanged.

    Work is spent only where it can change the outcome: each run (restart, or target class of
    APGD-T) computes on the samples still robust, as in the official code, and inside a run a
    sample leaves the computation at the iteration that fools it (the official code keeps it
    to the end of the run). A sample's iterates do not depend on the other samples: its
    starting point is drawn for the whole batch and picked by its index. Everything runs in
    ``tf.while_loop``s on gathered samples of dynamic count, so one trace serves every batch
    size, inside ``tf.function`` and under XLA.

    Deviation from the official code (not the paper): the loss-increase count of the first
    window compares the first iterate with the starting point's loss (the official code
    compares it with an uninitialised zero).

    Example:
    ```python
    from mi_keras.attacks import APGD
    from mi_keras.data import load_dataset
    from mi_keras.models import build_classifier

    test, info = load_dataset("digits", "test", batch_size=8)  # 8x8 digits: no download
    images, labels = next(iter(test))
    model = build_classifier("small_cnn", info.image_shape, info.num_classes, padding="same")
    attack = APGD(eps=8 / 255, loss="ce", steps=10, seed=0)  # the paper: 100 steps
    x_adv = attack(model, images, labels)
    ```

    Args:
        eps: ball radius.
        threat_model: ``"Linf"`` or ``"L2"``.
        loss: ``"ce"`` or ``"dlr"`` (the untargeted DLR loss; needs >= 3 classes).
        steps: iterations per restart (100 in AutoAttack).
        restarts: random restarts (1 in AutoAttack "standard", 5 in "plus").
        rho: the oscillation threshold of the checkpoint test, in (0, 1).
        seed: optional int for reproducible starting points.
        name: optional display name.
    """

    def __init__(
        self,
        eps: float,
        threat_model: str | ThreatModel = ThreatModel.LINF,
        loss: str | AttackLoss = AttackLoss.CE,
        steps: int = 100,
        restarts: int = 1,
        rho: float = 0.75,
        seed: int | None = None,
        name: str | None = None,
    ):
        super().__init__(eps=eps, threat_model=threat_model, seed=seed, name=name)
        self.loss = AttackLoss.parse(loss, "loss")
        if self.loss not in _SUPPORTED_LOSSES:
            raise ValueError(f"`loss` must be 'ce' or 'dlr' for APGD; got {loss!r}.")
        self.steps = positive_integer(steps, "steps")
        self.restarts = positive_integer(restarts, "restarts")
        if not 0.0 < rho < 1.0:
            raise ValueError(f"`rho` must be in (0, 1); got {rho!r}.")
        self.rho = float(rho)

    # Hooks that the targeted variant overrides.
    def _num_runs(self) -> int:
        return self.restarts

    def _target_of_run(self, clean_logits: tf.Tensor, run: tf.Tensor) -> tf.Tensor | None:
        return None

    def _objective(self, logits: tf.Tensor, y: tf.Tensor, target: tf.Tensor | None) -> tf.Tensor:
        return attack_objective(self.loss, logits, y)

    def _check_num_classes(self, num_classes: int | None) -> None:
        if self.loss == AttackLoss.DLR and num_classes is not None and num_classes < 3:
            raise ValueError(f"The DLR loss needs at least 3 classes; the model has {num_classes}.")

    def perturb(self, model, x, y, seed):
        clean_logits = logits_of(model, x)
        self._check_num_classes(clean_logits.shape[-1])
        robust = tf.equal(tf.argmax(clean_logits, -1, output_type=tf.int32), y)

        def body(run, x_adv, robust, loss_best):
            # A run computes only on the samples still robust, as the official code does.
            rows = tf.where(robust)
            # Drawn for the whole batch, so a sample's start depends on its index only.
            direction = random_unit_direction(tf.shape(x), self.threat_model, fold_seed(seed, run))
            target = self._target_of_run(tf.gather_nd(clean_logits, rows), run)
            fooled, x_found, loss = self._single_run(
                model, tf.gather_nd(x, rows), tf.gather_nd(y, rows), target, tf.gather_nd(direction, rows)
            )
            higher = fooled | (loss > tf.gather_nd(loss_best, rows))
            x_kept = where_samples(higher, x_found, tf.gather_nd(x_adv, rows))
            return (
                run + 1,
                tf.tensor_scatter_nd_update(x_adv, rows, x_kept),
                tf.tensor_scatter_nd_update(robust, rows, ~fooled),
                tf.tensor_scatter_nd_update(loss_best, rows, tf.where(higher, loss, tf.gather_nd(loss_best, rows))),
            )

        _, x_adv, _, _ = tf.while_loop(
            lambda run, _, robust, __: (run < self._num_runs()) & tf.reduce_any(robust),
            body,
            (tf.constant(0), x, robust, tf.fill(tf.shape(y), -np.inf)),
        )
        return x_adv

    def _loss_and_gradient(self, model, x_adv, y, target):
        with tf.GradientTape() as tape:
            tape.watch(x_adv)
            logits = logits_of(model, x_adv)
            loss = self._objective(logits, y, target)
            total = tf.reduce_sum(loss)
        # A model that hides its gradient (tf.stop_gradient) gets a zero one, not a crash.
        gradient = tape.gradient(total, x_adv, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return logits, loss, gradient

    def _single_run(self, model, x, y, target, direction):
        """One APGD run from ``x + eps * direction``, on the samples given.

        Each iteration computes only on the samples not fooled yet: a fooled sample keeps its
        first fooling point and leaves the run's state. Returns ``(fooled, point, loss)`` per
        sample, the point being the fooling one or, for a sample never fooled, the highest-loss
        one with its loss (the loss of a fooled sample is its fooling point's).
        """
        eps, threat_model = self.eps, self.threat_model
        is_checkpoint, window_length = (tf.constant(a) for a in checkpoint_schedule(self.steps))
        start = project(x + eps * direction, x, eps, threat_model)
        logits, loss, gradient = self._loss_and_gradient(model, start, y, target)
        fooled = tf.not_equal(tf.argmax(logits, -1, output_type=tf.int32), y)
        batch = tf.shape(x)[:1]
        live = {
            "index": tf.range(batch[0]),
            "x": x,
            "y": y,
            "x_k": start,
            "x_previous": start,
            "gradient": gradient,
            "step": tf.fill(batch, 2.0 * eps),
            "x_best": start,
            "gradient_best": gradient,
            "loss_best": loss,
            "loss_previous": loss,
            "increases": tf.zeros(batch),
            "loss_at_check": loss,
            "reduced_at_check": tf.ones(batch, tf.bool),
        }
        if target is not None:
            live["target"] = target
        live = keep_samples(live, ~fooled)
        outcome = (fooled, start, loss)

        def body(i, live, outcome):
            x_new, fooled_now, live = self._iteration(model, i, live, is_checkpoint, window_length)
            rows = tf.boolean_mask(live["index"], fooled_now)[:, None]
            fooled, found, found_loss = outcome
            outcome = (
                tf.tensor_scatter_nd_update(fooled, rows, tf.ones_like(rows[:, 0], tf.bool)),
                tf.tensor_scatter_nd_update(found, rows, tf.boolean_mask(x_new, fooled_now)),
                tf.tensor_scatter_nd_update(found_loss, rows, tf.boolean_mask(live["loss_previous"], fooled_now)),
            )
            # Dropping the fooled samples copies the state: skip it when none was fooled.
            live = tf.cond(tf.reduce_any(fooled_now), lambda: keep_samples(live, ~fooled_now), lambda: live)
            return i + 1, live, outcome

        _, live, (fooled, found, found_loss) = tf.while_loop(
            lambda i, live, _: (i < self.steps) & (tf.size(live["index"]) > 0), body, (tf.constant(0), live, outcome)
        )
        rows = live["index"][:, None]
        return (
            fooled,
            tf.tensor_scatter_nd_update(found, rows, live["x_best"]),
            tf.tensor_scatter_nd_update(found_loss, rows, live["loss_best"]),
        )

    def _iteration(self, model, i, live, is_checkpoint, window_length):
        """One APGD step of the live samples: ``(new point, fooled by it, updated state)``."""
        eps, threat_model = self.eps, self.threat_model
        x, x_k = live["x"], live["x_k"]
        momentum = tf.where(i > 0, 0.75, 1.0)
        step_b = tf.reshape(live["step"], [-1] + [1] * (len(x.shape) - 1))
        z = project(x_k + step_b * steepest_ascent(live["gradient"], threat_model), x, eps, threat_model)
        x_new = project(
            x_k + momentum * (z - x_k) + (1.0 - momentum) * (x_k - live["x_previous"]),
            x,
            eps,
            threat_model,
        )
        logits, loss, gradient_new = self._loss_and_gradient(model, x_new, live["y"], live.get("target"))
        fooled_now = tf.not_equal(tf.argmax(logits, -1, output_type=tf.int32), live["y"])

        improved = loss > live["loss_best"]
        x_best = where_samples(improved, x_new, live["x_best"])
        gradient_best = where_samples(improved, gradient_new, live["gradient_best"])
        loss_best = tf.where(improved, loss, live["loss_best"])
        increases = live["increases"] + tf.cast(loss > live["loss_previous"], tf.float32)

        # Checkpoint: halve the step and restart from the best point where progress stalled.
        at_check = tf.gather(is_checkpoint, i)
        oscillating = increases <= self.rho * tf.gather(window_length, i)
        stalled = ~live["reduced_at_check"] & (live["loss_at_check"] >= loss_best)
        reduce = at_check & (oscillating | stalled)
        return (
            x_new,
            fooled_now,
            {
                **live,
                "x_k": where_samples(reduce, x_best, x_new),
                "x_previous": x_k,
                "gradient": where_samples(reduce, gradient_best, gradient_new),
                "step": tf.where(reduce, live["step"] / 2.0, live["step"]),
                "x_best": x_best,
                "gradient_best": gradient_best,
                "loss_best": loss_best,
                "loss_previous": loss,
                "increases": tf.where(at_check, tf.zeros_like(increases), increases),
                "loss_at_check": tf.where(at_check, loss_best, live["loss_at_check"]),
                "reduced_at_check": tf.where(at_check, reduce, live["reduced_at_check"]),
            },
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "loss": self.loss.value,
            "steps": self.steps,
            "restarts": self.restarts,
            "rho": self.rho,
        }
