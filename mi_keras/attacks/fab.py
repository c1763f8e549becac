"""FAB (Croce and Hein, 2020): the fast adaptive boundary attack, untargeted or targeted."""

from __future__ import annotations

import math
from typing import Any

import keras
import tensorflow as tf

from mi_keras.attacks.apgd_targeted import ranked_target
from mi_keras.attacks.attack import Attack, logits_of, positive_integer
from mi_keras.attacks.geometry import (
    fold_seed,
    keep_samples,
    perturbation_norm,
    random_unit_direction,
    where_samples,
)
from mi_keras.enums import ThreatModel

_BIG = 1e10  # "no adversarial found yet" and the excluded true class, as in the official code
_R_BIG = 1e12  # the sentinel of the L2 projection's breakpoints


def _binary_search(is_above, length: int, rows) -> tf.Tensor:
    """Largest index in ``[0, length - 1)`` where ``is_above(index)`` holds, per row.

    The official FAB projections' bisection: ``ceil(log2(length))`` halvings, all rows at once.
    """
    lower = tf.zeros(rows)
    upper = tf.fill(rows, float(length - 1))
    for _ in range(math.ceil(math.log2(length))):
        middle = tf.floor((lower + upper) / 2.0)
        above = is_above(tf.cast(middle, tf.int32))
        lower = tf.where(above, middle, lower)
        upper = tf.where(above, upper, middle)
    return tf.cast(lower, tf.int32)


def _take(values: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
    """``values[row, index[row]]`` for ``[rows, n]`` values and ``[rows]`` indices."""
    return tf.gather(values, index, axis=1, batch_dims=1)


def project_linf_hyperplane_box(points, normals, offsets):
    """Minimal L-inf step ``d`` with ``<w, t + d> = b`` and ``t + d`` in [0, 1] (FAB, Sec. 3.1).

    Batched port of the official ``projection_linf``: rows are ``[rows, dims]`` points ``t``,
    hyperplane normals ``w`` and offsets ``b`` (``[rows]``). Rows without a feasible point get
    the box point closest to the hyperplane, as in the official code.
    """
    t, w, b = points, normals, offsets
    dims = t.shape[1]
    rows = tf.shape(t)[:1]
    sign = tf.where(tf.reduce_sum(w * t, 1) - b >= 0, 1.0, -1.0)
    w = w * sign[:, None]
    b = b * sign
    a = tf.cast(w < 0, tf.float32)
    nonzero = tf.cast(tf.not_equal(w, 0.0), tf.float32)
    d = (a - t) * nonzero
    p = a - t * (2.0 * a - 1.0)
    ascending = tf.argsort(p, axis=1)
    b = b - tf.reduce_sum(w * t, 1)
    b0 = tf.reduce_sum(w * d, 1)
    descending = tf.reverse(ascending, axis=[1])
    ws = tf.gather(w, descending, axis=1, batch_dims=1)
    bs2 = -ws * tf.gather(d, descending, axis=1, batch_dims=1)
    s = tf.cumsum(tf.abs(ws), axis=1)
    sb = tf.cumsum(bs2, axis=1) + b0[:, None]
    b2 = sb[:, -1] - s[:, -1] * _take(p, ascending[:, 0])
    beyond_all = b - b2 > 0
    inside = (b - b0 > 0) & (b - b2 <= 0)

    def is_above(index):
        return b - (_take(sb, index) - _take(s, index) * _take(p, _take(descending, index))) > 0

    lower = _binary_search(is_above, dims, rows)
    lambda_all = tf.maximum((b - sb[:, -1]) / (-s[:, -1]), 0.0)[:, None]
    lambda_opt = tf.maximum((b - _take(sb, lower)) / (-_take(s, lower)), 0.0)[:, None]
    d_inside = tf.minimum(lambda_opt, d) * a + tf.maximum(-lambda_opt, d) * (1.0 - a)
    d = tf.where(beyond_all[:, None], (2.0 * a - 1.0) * lambda_all, tf.where(inside[:, None], d_inside, d))
    return d * nonzero


def project_l2_hyperplane_box(points, normals, offsets):
    """Minimal L2 step ``d`` with ``<w, t + d> = b`` and ``t + d`` in [0, 1] (FAB, Sec. 3.1).

    Batched port of the official ``projection_l2`` (same arguments as the L-inf version).
    """
    t, w, b = points, normals, offsets
    dims = t.shape[1]
    rows = tf.shape(t)[:1]
    c = tf.reduce_sum(w * t, 1) - b
    w = tf.where((c < 0)[:, None], -w, w)
    c = tf.abs(c)
    tiny = tf.abs(w) < 1e-8
    safe_w = tf.where(tiny, 1.0, w)
    r = tf.clip_by_value(tf.maximum(t / safe_w, (t - 1.0) / safe_w), -_R_BIG, _R_BIG)
    r = tf.where(tiny | tf.equal(r, -_R_BIG), _R_BIG, r)
    order = tf.argsort(r, axis=1)
    rs = tf.gather(r, order, axis=1, batch_dims=1)
    rs2 = tf.concat([rs[:, 1:], tf.zeros_like(rs[:, :1])], 1)
    rs = tf.where(tf.equal(rs, _R_BIG), 0.0, rs)
    rs2 = tf.where(tf.equal(rs2, _R_BIG), 0.0, rs2)
    w3s = tf.gather(tf.square(w), order, axis=1, batch_dims=1)
    w5 = tf.reduce_sum(w3s, 1, keepdims=True)
    ws = w5 - tf.cumsum(w3s, axis=1)
    keep = tf.cast(~tiny, tf.float32)
    d = -(r * w) * keep
    s = tf.concat([-w5 * rs[:, :1], tf.cumsum((rs - rs2) * ws, axis=1) - w5 * rs[:, :1]], 1)
    on_plane_first = s[:, 0] + c < 0
    box_reaches = tf.reduce_sum(d * w, 1) + c > 0
    inside = ~on_plane_first & ~box_reaches

    lower = _binary_search(lambda index: _take(s, index) + c > 0, dims, rows)
    alpha_first = c / tf.maximum(w5[:, 0], 1e-30)
    ws_lower = _take(ws, lower)
    alpha = tf.where(
        tf.equal(ws_lower, 0.0),
        0.0,
        (_take(s, lower) + c) / tf.where(tf.equal(ws_lower, 0.0), 1.0, ws_lower) + _take(rs, lower),
    )
    clipped = tf.cast(alpha[:, None] > r, tf.float32)
    d_inside = d * clipped - alpha[:, None] * w * (1.0 - clipped)
    d = tf.where(on_plane_first[:, None], -alpha_first[:, None] * w, tf.where(inside[:, None], d_inside, d))
    return d * keep


@keras.saving.register_keras_serializable(package="mi_keras")
class FAB(Attack):
    """FAB (Croce and Hein, 2020), L-inf or L2, untargeted or targeted ("FAB-T").

    "Minimally distorted adversarial examples with a fast adaptive boundary attack" (ICML 2020),
    as in the official AutoAttack code. Each iteration linearises the decision boundary
    closest to the current point (untargeted: over all classes, using the full Jacobian;
    targeted: the boundary with the target class), projects both the current point and the
    original input onto that hyperplane intersected with the [0, 1] box (exact batched
    projections, `project_linf_hyperplane_box` / `project_l2_hyperplane_box`), extrapolates
    by ``eta`` and mixes the two with the adaptive weight ``alpha <= alpha_max``. When the point
    is adversarial it is kept if it is the smallest found so far and pulled back towards the
    input by ``beta``.

    FAB minimises the perturbation norm; a sample counts as fooled here only when an
    adversarial point with norm <= ``eps`` is found, and then the first such point is returned
    (the official code runs on and returns the smallest: the robust accuracy is the same).
    Other samples are returned unchanged. The first run starts at the input, further restarts
    at a random point at distance ``eps / 2``. The targeted version tries the top
    ``n_target_classes`` classes by clean logit, ``restarts`` runs each.

    Work is spent only where it can change the outcome: each run computes on the samples still
    robust (as the official code), and a sample leaves a run at the iteration that puts it
    within ``eps``. Restart points are drawn for the whole batch and picked by index, so a
    sample's iterates do not depend on the others. One trace serves every batch size.

    Example:
    ```python
    from mi_keras.attacks import FAB
    from mi_keras.data import load_dataset
    from mi_keras.models import build_classifier

    test, info = load_dataset("digits", "test", batch_size=8)  # 8x8 digits: no download
    images, labels = next(iter(test))
    model = build_classifier("small_cnn", info.image_shape, info.num_classes, padding="same")
    fab_t = FAB(eps=8 / 255, targeted=True, n_target_classes=2, steps=5, seed=0)  # AutoAttack's FAB-T: 9 targets, 100 steps
    x_adv = fab_t(model, images, labels)
    ```

    Args:
        eps: ball radius (success threshold and restart radius).
        threat_model: ``"Linf"`` or ``"L2"``.
        steps: iterations per run (100 in AutoAttack).
        restarts: runs (per target class when targeted).
        targeted: False for FAB, True for FAB-T.
        n_target_classes: target classes tried by FAB-T (9 in AutoAttack).
        alpha_max: largest weight of the step from the original input, in [0, 1].
        eta: overshooting factor, >= 1.
        beta: backward-step factor, in (0, 1].
        seed: optional int for reproducible restarts.
        name: optional display name.
    """

    def __init__(
        self,
        eps: float,
        threat_model: str | ThreatModel = ThreatModel.LINF,
        steps: int = 100,
        restarts: int = 1,
        targeted: bool = False,
        n_target_classes: int = 9,
        alpha_max: float = 0.1,
        eta: float = 1.05,
        beta: float = 0.9,
        seed: int | None = None,
        name: str | None = None,
    ):
        super().__init__(eps=eps, threat_model=threat_model, seed=seed, name=name)
        self.steps = positive_integer(steps, "steps")
        self.restarts = positive_integer(restarts, "restarts")
        self.n_target_classes = positive_integer(n_target_classes, "n_target_classes")
        if not 0.0 <= alpha_max <= 1.0:
            raise ValueError(f"`alpha_max` must be in [0, 1]; got {alpha_max!r}.")
        if eta < 1.0:
            raise ValueError(f"`eta` must be >= 1; got {eta!r}.")
        if not 0.0 < beta <= 1.0:
            raise ValueError(f"`beta` must be in (0, 1]; got {beta!r}.")
        self.targeted = bool(targeted)
        self.alpha_max = float(alpha_max)
        self.eta = float(eta)
        self.beta = float(beta)

    def perturb(self, model, x, y, seed):
        clean_logits = logits_of(model, x)
        num_classes = clean_logits.shape[-1]
        if self.targeted and num_classes is not None and self.n_target_classes > num_classes - 1:
            raise ValueError(
                f"`n_target_classes` must be <= num_classes - 1 = {num_classes - 1}; got {self.n_target_classes}."
            )
        robust = tf.equal(tf.argmax(clean_logits, -1, output_type=tf.int32), y)
        runs = self.restarts * (self.n_target_classes if self.targeted else 1)

        def body(run, x_adv, robust):
            # A run computes only on the samples still robust, as the official code does.
            rows = tf.where(robust)
            live_logits = tf.gather_nd(clean_logits, rows)
            target = ranked_target(live_logits, run // self.restarts + 1) if self.targeted else None
            # Drawn for the whole batch, so a sample's restart depends on its index only.
            direction = random_unit_direction(tf.shape(x), self.threat_model, fold_seed(seed, run))
            found, distance = self._single_run(
                model,
                tf.gather_nd(x, rows),
                tf.gather_nd(y, rows),
                target,
                run % self.restarts > 0,
                tf.gather_nd(direction, rows),
            )
            success = distance <= self.eps
            x_kept = where_samples(success, found, tf.gather_nd(x_adv, rows))
            return (
                run + 1,
                tf.tensor_scatter_nd_update(x_adv, rows, x_kept),
                tf.tensor_scatter_nd_update(robust, rows, ~success),
            )

        _, x_adv, _ = tf.while_loop(
            lambda run, _, robust: (run < runs) & tf.reduce_any(robust),
            body,
            (tf.constant(0), x, robust),
        )
        return x_adv

    def _boundary_terms(self, model, x_k, y, target):
        """Logit differences ``f_j - f_y`` and their input gradients: ``[B, J]``, ``[B, J, D]``."""
        batch = tf.shape(x_k)[0]
        with tf.GradientTape() as tape:
            tape.watch(x_k)
            logits = logits_of(model, x_k)
            if self.targeted:
                difference = (_take(logits, target) - _take(logits, y))[:, None]
                total = tf.reduce_sum(difference)
            else:
                difference = logits - _take(logits, y)[:, None]
        if self.targeted:
            gradient = tape.gradient(total, x_k, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            return difference, tf.reshape(gradient, [batch, 1, math.prod(x_k.shape[1:])])
        jacobian = tape.batch_jacobian(difference, x_k, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        true_class = tf.one_hot(y, tf.shape(logits)[-1], on_value=True, off_value=False)
        difference = tf.where(true_class, _BIG, difference)
        return difference, tf.reshape(jacobian, [batch, logits.shape[-1], math.prod(x_k.shape[1:])])

    def _single_run(self, model, x, y, target, random_start, direction):
        """One FAB run on the samples given: the adversarial kept per sample and its norm (1e10 if
        none). A sample leaves the run once it has an adversarial within ``eps``."""
        batch = tf.shape(x)[0]
        start = tf.where(random_start, tf.clip_by_value(x + 0.5 * self.eps * direction, 0.0, 1.0), x)
        live = {"index": tf.range(batch), "x": x, "y": y, "x_k": start, "best": x, "distance": tf.fill([batch], _BIG)}
        if target is not None:
            live["target"] = target
        outcome = (x, tf.fill([batch], _BIG))

        def body(i, live, outcome):
            live = self._iteration(model, live)
            settled = live["distance"] <= self.eps
            rows = tf.boolean_mask(live["index"], settled)[:, None]
            found, distance = outcome
            outcome = (
                tf.tensor_scatter_nd_update(found, rows, tf.boolean_mask(live["best"], settled)),
                tf.tensor_scatter_nd_update(distance, rows, tf.boolean_mask(live["distance"], settled)),
            )
            # Dropping the settled samples copies the state: skip it when none settled.
            live = tf.cond(tf.reduce_any(settled), lambda: keep_samples(live, ~settled), lambda: live)
            return i + 1, live, outcome

        _, live, (found, distance) = tf.while_loop(
            lambda i, live, _: (i < self.steps) & (tf.size(live["index"]) > 0), body, (tf.constant(0), live, outcome)
        )
        rows = live["index"][:, None]
        return (
            tf.tensor_scatter_nd_update(found, rows, live["best"]),
            tf.tensor_scatter_nd_update(distance, rows, live["distance"]),
        )

    def _iteration(self, model, live):
        """One FAB step of the live samples; returns their updated state."""
        threat_model = self.threat_model
        x, y, x_k = live["x"], live["y"], live["x_k"]
        shape = tf.shape(x)
        batch = shape[0]
        dims = math.prod(x.shape[1:])
        flat_x = tf.reshape(x, [-1, dims])
        project = project_linf_hyperplane_box if threat_model == ThreatModel.LINF else project_l2_hyperplane_box
        dual_order = 1 if threat_model == ThreatModel.LINF else 2
        difference, gradient = self._boundary_terms(model, x_k, y, live.get("target"))
        dual_norm = tf.norm(gradient, ord=dual_order, axis=-1)
        closest = tf.argmin(tf.abs(difference) / (dual_norm + 1e-12), axis=1, output_type=tf.int32)
        w = tf.gather(gradient, closest, axis=1, batch_dims=1)
        flat_k = tf.reshape(x_k, [-1, dims])
        b = -_take(difference, closest) + tf.reduce_sum(w * flat_k, 1)
        to_plane = project(tf.concat([flat_k, flat_x], 0), tf.concat([w, w], 0), tf.concat([b, b], 0))
        step_norms = tf.maximum(perturbation_norm(to_plane, threat_model), 1e-8)
        from_current, from_input = step_norms[:batch], step_norms[batch:]
        alpha = tf.clip_by_value(from_current / (from_current + from_input), 0.0, self.alpha_max)
        alpha = alpha[:, None]
        moved = (flat_k + self.eta * to_plane[:batch]) * (1.0 - alpha) + (flat_x + self.eta * to_plane[batch:]) * alpha
        x_k = tf.reshape(tf.clip_by_value(moved, 0.0, 1.0), shape)

        predicted = tf.argmax(logits_of(model, x_k), -1, output_type=tf.int32)
        adversarial = tf.not_equal(predicted, y)
        norm = perturbation_norm(x_k - x, threat_model)
        smaller = adversarial & (norm < live["distance"])
        return {
            **live,
            "x_k": where_samples(adversarial, x + (x_k - x) * self.beta, x_k),
            "best": where_samples(smaller, x_k, live["best"]),
            "distance": tf.where(smaller, norm, live["distance"]),
        }

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "steps": self.steps,
            "restarts": self.restarts,
            "targeted": self.targeted,
            "n_target_classes": self.n_target_classes,
            "alpha_max": self.alpha_max,
            "eta": self.eta,
            "beta": self.beta,
        }
