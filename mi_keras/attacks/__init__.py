"""Adversarial attacks: ``attack(model, x, y) -> x_adv``, batched and ``tf.function``-safe."""

from mi_keras.attacks.apgd import APGD
from mi_keras.attacks.apgd_targeted import APGDTargeted
from mi_keras.attacks.attack import Attack
from mi_keras.attacks.auto_attack import AutoAttack, AutoAttackResult, AutoAttackVersion
from mi_keras.attacks.cw_l2 import CWL2
from mi_keras.attacks.cw_linf import CWLinf
from mi_keras.attacks.ddn import DDN
from mi_keras.attacks.fab import FAB
from mi_keras.attacks.fgsm import FGSM
from mi_keras.attacks.fwa import FWA
from mi_keras.attacks.pgd import PGD
from mi_keras.attacks.square import Square
from mi_keras.attacks.ti_dim import TIDIM

__all__ = [
    "APGD",
    "APGDTargeted",
    "Attack",
    "AutoAttack",
    "AutoAttackResult",
    "AutoAttackVersion",
    "CWL2",
    "CWLinf",
    "DDN",
    "FAB",
    "FGSM",
    "FWA",
    "PGD",
    "Square",
    "TIDIM",
]
