"""PGD on the Carlini-Wagner margin with a fixed threat model: the base of CW-inf and CW-L2."""

from __future__ import annotations

from typing import Any

from mi_keras.attacks.pgd import PGD
from mi_keras.enums import AttackLoss, RandomStart


class MarginPGD(PGD):
    """PGD maximising ``max_{j != y} z_j - z_y`` in the ball of ``fixed_threat_model``.

    Subclasses set ``fixed_threat_model``; their configs carry neither the norm nor the loss.

    Args:
        eps: ball radius.
        step_size: step length, in (0, eps]; defaults to ``eps / 4``.
        steps: iterations, >= 1.
        random_start: ``"uniform"`` (in the ball), ``"normal"`` or ``"none"``.
        restarts: independent runs; per sample the fooled (then highest-margin) run is kept.
        seed: optional int for reproducible starts.
        name: optional display name.
    """

    def __init__(
        self,
        eps: float,
        step_size: float | None = None,
        steps: int = 20,
        random_start: str | RandomStart = RandomStart.UNIFORM,
        restarts: int = 1,
        seed: int | None = None,
        name: str | None = None,
    ):
        super().__init__(
            eps=eps,
            step_size=step_size,
            steps=steps,
            threat_model=self.fixed_threat_model,
            random_start=random_start,
            loss=AttackLoss.MARGIN,
            restarts=restarts,
            seed=seed,
            name=name,
        )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["loss"]
        return config
