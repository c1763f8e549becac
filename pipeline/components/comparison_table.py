"""The final comparison: clean and per-attack robust accuracy of each evaluated model."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from mi_keras.enums import BaseLoss
from mi_keras.evaluation import AttackSpec, RobustnessReport
from pipeline.settings import DefenseMethod, MIATConfig

BASELINE_LABEL = "Standard AT"  # the row of the standard-AT (pretrain) classifier
# The config fields that name the trained row; the stages that print it declare them.
TRAINED_LABEL_SECTIONS = ("train.method", "train.base_loss")
_NAMID_LABELS = {BaseLoss.CE: "MIAT", BaseLoss.TRADES: "NAMID_T", BaseLoss.MART: "NAMID_M"}


def trained_label(train: MIATConfig) -> str:
    """The row of the trained (train stage) classifier: WMIM, or the MI defense by its base
    loss (MIAT with cross-entropy, NAMID_T with TRADES, NAMID_M with MART)."""
    return "WMIM" if train.method == DefenseMethod.WMIM else _NAMID_LABELS[train.base_loss]


@dataclasses.dataclass
class ComparisonRow:
    """One model: its label, clean accuracy and robust accuracy per attack (fractions)."""

    label: str
    clean_accuracy: float
    robust_accuracy: dict[str, float]
    masking_passed: bool


class ComparisonTable:
    """Standard AT vs MIAT (and their last epochs) on the test split, at the training eps.

    Example:
    ```python
    table = ComparisonTable(["fgsm", "pgd20"], eps=0.3, threat_model="Linf", n_examples=360)
    table.add("Standard AT", report)
    print(table.to_markdown())
    ```

    Args:
        attacks: attack names (`AttackSpec` values), in column order.
        eps: the evaluated radius.
        threat_model: ``"Linf"`` or ``"L2"``.
        n_examples: number of test examples evaluated.
    """

    def __init__(self, attacks: list[str], eps: float, threat_model: str, n_examples: int):
        self.attacks = [AttackSpec.parse(attack, "attacks").value for attack in attacks]
        self.eps = eps
        self.threat_model = threat_model
        self.n_examples = n_examples
        self.rows: list[ComparisonRow] = []

    def add(self, label: str, report: RobustnessReport) -> None:
        robust = {result.attack: result.robust_accuracy for result in report.results}
        self.rows.append(
            ComparisonRow(
                label, report.clean_accuracy, {attack: robust[attack] for attack in self.attacks}, report.masking_passed
            )
        )

    def row(self, label: str) -> ComparisonRow:
        for row in self.rows:
            if row.label == label:
                return row
        raise KeyError(f"No row {label!r}; rows are {[row.label for row in self.rows]}.")

    def to_markdown(self) -> str:
        names = [AttackSpec(attack).display_name for attack in self.attacks]
        lines = [
            f"Accuracy (%) on {self.n_examples} test examples, {self.threat_model} eps = {self.eps:g}",
            "",
            "| model | clean | " + " | ".join(names) + " |",
            "|---" * (len(names) + 2) + "|",
        ]
        for row in self.rows:
            flag = " (masking check failed)" if not row.masking_passed else ""
            cells = [f"{100 * row.robust_accuracy[attack]:.2f}" for attack in self.attacks]
            lines.append(f"| {row.label}{flag} | {100 * row.clean_accuracy:.2f} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "attacks": self.attacks,
            "eps": self.eps,
            "threat_model": self.threat_model,
            "n_examples": self.n_examples,
            "rows": [dataclasses.asdict(row) for row in self.rows],
        }

    def save(self, directory: str | os.PathLike) -> None:
        with open(os.path.join(directory, "comparison.json"), "w") as file:
            json.dump(self.to_dict(), file, indent=2)
        with open(os.path.join(directory, "comparison.md"), "w") as file:
            file.write(self.to_markdown() + "\n")

    @classmethod
    def load(cls, directory: str | os.PathLike) -> ComparisonTable:
        with open(os.path.join(directory, "comparison.json")) as file:
            payload = json.load(file)
        table = cls(payload["attacks"], payload["eps"], payload["threat_model"], payload["n_examples"])
        table.rows = [ComparisonRow(**row) for row in payload["rows"]]
        return table
