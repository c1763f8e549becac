"""CW-inf: PGD on the Carlini-Wagner margin loss, bounded in L-inf (as in TRADES and MART)."""

from __future__ import annotations

from typing import Any

import keras

from mi_keras.attacks.pgd import PGD
from mi_keras.enums import AttackLoss, RandomStart, ThreatModel


@keras.saving.register_keras_serializable(package="mi_keras")
class CWLinf(PGD):
    """PGD that maximises ``max_{j != y} z_j - z_y`` instead of the cross-entropy.

    Example:
    ```python
    x_adv = CWLinf(eps=8 / 255, steps=20)(model, images, labels)
    ```
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
            threat_model=ThreatModel.LINF,
            random_start=random_start,
            loss=AttackLoss.MARGIN,
            restarts=restarts,
            seed=seed,
            name=name,
        )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["threat_model"], config["loss"]
        return config
