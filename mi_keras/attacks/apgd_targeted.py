"""APGD-T: Auto-PGD on the targeted DLR loss, run against the top-k other classes in turn."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from mi_keras.attacks.apgd import APGD
from mi_keras.attacks.attack import positive_integer
from mi_keras.enums import AttackLoss, ThreatModel
from mi_keras.objectives import targeted_dlr


def ranked_target(clean_logits: tf.Tensor, rank: tf.Tensor) -> tf.Tensor:
    """The class with the ``rank``-th highest clean logit (rank 1 = runner-up), per sample."""
    order = tf.argsort(clean_logits, axis=-1, direction="DESCENDING", stable=True)
    return tf.cast(tf.gather(order, rank, axis=-1), tf.int32)


@keras.saving.register_keras_serializable(package="mi_keras")
class APGDTargeted(APGD):
    """APGD-T (Croce and Hein, 2020): targeted-DLR APGD against each of the top classes.

    For each target rank ``t = 1 .. n_target_classes`` (the classes with the highest clean
    logits after the predicted one, as in the official code), ``restarts`` APGD runs maximise
    the targeted DLR loss ``-(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2)`` on the samples still
    robust. The step-size schedule is APGD's (see `APGD`). Needs at least 4 classes and
    ``n_target_classes <= num_classes - 1``.

    Example:
    ```python
    from mi_keras.attacks import APGDTargeted
    from mi_keras.data import load_dataset
    from mi_keras.models import build_classifier

    test, info = load_dataset("digits", "test", batch_size=8)  # 8x8 digits: no download
    images, labels = next(iter(test))
    model = build_classifier("small_cnn", info.image_shape, info.num_classes, padding="same")
    attack = APGDTargeted(eps=8 / 255, steps=10, n_target_classes=3, seed=0)  # AutoAttack: 100 steps, 9 targets
    x_adv = attack(model, images, labels)
    ```

    Args:
        eps: ball radius.
        threat_model: ``"Linf"`` or ``"L2"``.
        steps: iterations per run (100 in AutoAttack).
        restarts: runs per target class (1 in AutoAttack).
        n_target_classes: how many target classes to try (9 in AutoAttack).
        rho: the oscillation threshold of the checkpoint test, in (0, 1).
        seed: optional int for reproducible starting points.
        name: optional display name.
    """

    def __init__(
        self,
        eps: float,
        threat_model: str | ThreatModel = ThreatModel.LINF,
        steps: int = 100,
        restarts: int = 1,
        n_target_classes: int = 9,
        rho: float = 0.75,
        seed: int | None = None,
        name: str | None = None,
    ):
        super().__init__(
            eps=eps,
            threat_model=threat_model,
            loss=AttackLoss.DLR,
            steps=steps,
            restarts=restarts,
            rho=rho,
            seed=seed,
            name=name,
        )
        self.n_target_classes = positive_integer(n_target_classes, "n_target_classes")

    def _num_runs(self) -> int:
        return self.n_target_classes * self.restarts

    def _target_of_run(self, clean_logits, run):
        return ranked_target(clean_logits, run // self.restarts + 1)

    def _objective(self, logits, y, target):
        return targeted_dlr(logits, y, target)

    def _check_num_classes(self, num_classes: int | None) -> None:
        if num_classes is None:
            return
        if num_classes < 4 or self.n_target_classes > num_classes - 1:
            raise ValueError(
                f"APGD-T needs at least 4 classes and `n_target_classes` <= num_classes - 1 "
                f"= {num_classes - 1}; got n_target_classes={self.n_target_classes} for "
                f"{num_classes} classes."
            )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["loss"]
        return {**config, "n_target_classes": self.n_target_classes}
