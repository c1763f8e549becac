"""CW-inf: PGD on the Carlini-Wagner margin loss, bounded in L-inf (as in TRADES and MART)."""

from __future__ import annotations

import keras

from mi_keras.attacks.margin_pgd import MarginPGD
from mi_keras.enums import ThreatModel


@keras.saving.register_keras_serializable(package="mi_keras")
class CWLinf(MarginPGD):
    """PGD that maximises ``max_{j != y} z_j - z_y`` instead of the cross-entropy.

    Example:
    ```python
    x_adv = CWLinf(eps=8 / 255, steps=20)(model, images, labels)
    ```
    """

    fixed_threat_model = ThreatModel.LINF
