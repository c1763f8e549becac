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
    from mi_keras.attacks import CWLinf
    from mi_keras.data import load_dataset
    from mi_keras.models import build_classifier

    test, info = load_dataset("digits", "test", batch_size=8)  # 8x8 digits: no download
    images, labels = next(iter(test))
    model = build_classifier("small_cnn", info.image_shape, info.num_classes, padding="same")
    x_adv = CWLinf(eps=8 / 255, steps=20)(model, images, labels)
    ```
    """

    fixed_threat_model = ThreatModel.LINF
