"""FWA: projected gradient ascent in a Wasserstein ball (Wu et al., ICML 2020)."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from mi_keras.attacks.attack import Attack, logits_of, positive_integer
from mi_keras.attacks.transport import (
    identity_plan,
    project_plan,
    transported_image,
    window_cost,
)
from mi_keras.enums import ThreatModel
from mi_keras.objectives import cross_entropy


@keras.saving.register_keras_serializable(package="mi_keras")
class FWA(Attack):
    """The fast Wasserstein attack of Wu, Wang and Yu ("Stronger and faster Wasserstein
    adversarial attacks", ICML 2020): PGD on a transport plan with the dual projection.

    The attack moves pixel mass instead of adding noise. It ascends the cross-entropy over
    a local transport plan (each pixel may send mass into its ``kernel_size x kernel_size``
    window, see `mi_keras.attacks.transport`): each of ``steps`` iterations divides the
    gradient with respect to the plan by its largest entry per sample, takes a step of
    ``step_size``, and projects back onto the plans whose transport cost is at most
    ``eps * sum(x)`` (the radius is relative to the image's total pixel mass) by bisection
    on the dual multiplier (``dual_steps`` halvings at most, stopping at
    ``cost_tolerance`` / ``interval_tolerance``). The model sees the transported image
    clipped to [0, 1]. With ``clip=False`` (the reference code's choice) the transported
    image itself is returned: it keeps ``x``'s mass and is within the Wasserstein ball, but
    a pixel where mass piles up may exceed 1. With ``clip=True`` the output is clipped to
    [0, 1] and the ball bounds the transport before clipping.

    Defaults are the MIAT evaluation's FWA-40: a 4 x 4 window (an even window spans offsets
    -2..1), step ``eps / 4`` (the code used 0.007 at eps 8/255), 40 steps, 15 dual halvings
    and both tolerances 1e-4, with the radius set to the L-inf column's eps (8/255 on
    CIFAR-10). See ``docs/wasserstein.md``.

    Example:
    ```python
    from mi_keras.attacks import FWA
    from mi_keras.data import load_dataset
    from mi_keras.models import build_classifier

    test, info = load_dataset("digits", "test", batch_size=8)  # 8x8 digits: no download
    images, labels = next(iter(test))
    model = build_classifier("small_cnn", info.image_shape, info.num_classes, padding="same")
    x_adv = FWA(eps=8 / 255, steps=5)(model, images, labels)  # FWA-40: steps=40
    ```

    Args:
        eps: Wasserstein radius as a fraction of the image's total pixel mass, > 0.
        step_size: step on the plan after the gradient is scaled to a largest entry of 1;
            defaults to ``eps / 4``.
        steps: gradient steps, >= 1.
        kernel_size: side of the transport window, >= 2.
        dual_steps: most bisection halvings per projection, >= 1.
        cost_tolerance: stop bisecting once every sample's cost is within this of its
            budget (in pixel-mass x pixel-distance units).
        interval_tolerance: stop bisecting once every multiplier's interval is shorter.
        clip: clip the returned image to [0, 1] (see above).
        seed: unused (the attack is deterministic); kept for the `Attack` contract.
        name: optional display name.
    """

    fixed_threat_model = ThreatModel.WASSERSTEIN

    def __init__(
        self,
        eps: float,
        step_size: float | None = None,
        steps: int = 40,
        kernel_size: int = 4,
        dual_steps: int = 15,
        cost_tolerance: float = 1e-4,
        interval_tolerance: float = 1e-4,
        clip: bool = False,
        seed: int | None = None,
        name: str | None = None,
    ):
        super().__init__(eps=eps, threat_model=self.fixed_threat_model, seed=seed, name=name)
        self.step_size = float(step_size) if step_size is not None else self.eps / 4
        if self.step_size <= 0:
            raise ValueError(f"`step_size` must be > 0; got {self.step_size}.")
        self.steps = positive_integer(steps, "steps")
        self.kernel_size = positive_integer(kernel_size, "kernel_size")
        if self.kernel_size < 2:
            raise ValueError(f"`kernel_size` must be >= 2 (1 allows no move at all); got {kernel_size!r}.")
        self.dual_steps = positive_integer(dual_steps, "dual_steps")
        if cost_tolerance < 0 or interval_tolerance < 0:
            raise ValueError(
                "`cost_tolerance` and `interval_tolerance` must be >= 0; got "
                f"{cost_tolerance!r} and {interval_tolerance!r}."
            )
        self.cost_tolerance = float(cost_tolerance)
        self.interval_tolerance = float(interval_tolerance)
        self.clip = bool(clip)

    def perturb(self, model, x, y, seed):
        if len(x.shape) != 4 or None in x.shape[1:3]:
            raise ValueError(f"FWA needs images of static shape [batch, H, W, C]; got {x.shape}.")
        cost, inside = window_cost(x.shape[1], x.shape[2], self.kernel_size)
        cost, inside = tf.constant(cost), tf.constant(inside)
        x = tf.maximum(x, 0.0)  # mass must be non-negative
        budget = self.eps * tf.reduce_sum(x, axis=[1, 2, 3])

        def body(step, plan):
            with tf.GradientTape() as tape:
                tape.watch(plan)
                image = tf.clip_by_value(transported_image(plan, self.kernel_size), 0.0, 1.0)
                total = tf.reduce_sum(cross_entropy(logits_of(model, image), y))
            gradient = tape.gradient(total, plan, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            largest = tf.reduce_max(tf.abs(gradient), axis=[1, 2, 3, 4], keepdims=True)
            moved = plan + self.step_size * gradient / (largest + 1e-12)
            projected = project_plan(
                moved,
                x,
                cost,
                inside,
                budget,
                self.dual_steps,
                self.cost_tolerance,
                self.interval_tolerance,
            )
            return step + 1, projected

        _, plan = tf.while_loop(
            lambda step, _: step < self.steps,
            body,
            (tf.constant(0), identity_plan(x, self.kernel_size)),
        )
        x_adv = transported_image(plan, self.kernel_size)
        return tf.clip_by_value(x_adv, 0.0, 1.0) if self.clip else x_adv

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "step_size": self.step_size,
            "steps": self.steps,
            "kernel_size": self.kernel_size,
            "dual_steps": self.dual_steps,
            "cost_tolerance": self.cost_tolerance,
            "interval_tolerance": self.interval_tolerance,
            "clip": self.clip,
        }
