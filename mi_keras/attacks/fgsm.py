"""Fast gradient sign method (Goodfellow et al., 2015) and its L2 form (FGM)."""

from __future__ import annotations

from typing import Any

import keras

from mi_keras.attacks.attack import Attack
from mi_keras.attacks.pgd import PGD
from mi_keras.enums import RandomStart, ThreatModel


@keras.saving.register_keras_serializable(package="mi_keras")
class FGSM(PGD):
    """One full step of size ``eps`` along the sign (L-inf) or normalised (L2) gradient of CE.

    Example:
    ```python
    from mi_keras.attacks import FGSM
    from mi_keras.data import load_dataset
    from mi_keras.models import build_classifier

    test, info = load_dataset("digits", "test", batch_size=8)  # 8x8 digits: no download
    images, labels = next(iter(test))
    model = build_classifier("small_cnn", info.image_shape, info.num_classes, padding="same")
    x_adv = FGSM(eps=0.3)(model, images, labels)
    ```
    """

    def __init__(
        self,
        eps: float,
        threat_model: str | ThreatModel = ThreatModel.LINF,
        seed: int | None = None,
        name: str | None = None,
    ):
        super().__init__(
            eps=eps,
            step_size=eps,
            steps=1,
            threat_model=threat_model,
            random_start=RandomStart.NONE,
            seed=seed,
            name=name,
        )

    def get_config(self) -> dict[str, Any]:
        # FGSM fixes every other PGD setting: its config is the base attack's.
        return Attack.get_config(self)
