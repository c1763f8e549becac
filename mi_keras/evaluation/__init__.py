"""Robustness evaluation: the attack suite and its report, masking checks, MI probe, transfer.

`python -m mi_keras.evaluation --help` runs the suite from the command line.
"""

from mi_keras.evaluation.attack_runner import AttackRunner
from mi_keras.evaluation.attack_spec import AttackSpec, default_attacks
from mi_keras.evaluation.data_slice import DataSlice
from mi_keras.evaluation.gradient_masking import GradientMaskingChecker, MaskingCheck
from mi_keras.evaluation.loaded_classifier import LoadedClassifier, ModelKind
from mi_keras.evaluation.mi_probe import MIProbe
from mi_keras.evaluation.report import (
    AttackResult,
    CheckStatus,
    EnsembleResult,
    MaskingCheckResult,
    RobustnessReport,
    validate_report,
)
from mi_keras.evaluation.report_files import report_markdown, save_report, save_report_next_to_model
from mi_keras.evaluation.robustness_suite import RobustnessSuite, evaluate_robustness
from mi_keras.evaluation.transfer import evaluate_transfer

__all__ = [
    "AttackResult",
    "AttackRunner",
    "AttackSpec",
    "CheckStatus",
    "DataSlice",
    "EnsembleResult",
    "GradientMaskingChecker",
    "LoadedClassifier",
    "MIProbe",
    "MaskingCheck",
    "MaskingCheckResult",
    "ModelKind",
    "RobustnessReport",
    "RobustnessSuite",
    "default_attacks",
    "evaluate_robustness",
    "evaluate_transfer",
    "report_markdown",
    "save_report",
    "save_report_next_to_model",
    "validate_report",
]
