"""MIAT's tuned values: the names the tuner searches and the train stage uses."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping


@dataclasses.dataclass(frozen=True)
class TunedHyperparameters:
    """The best trial's alpha, lambda and (when searched) learning rate.

    The field names are the KerasTuner hyperparameter names (`MIATHyperModel` samples
    them), so the tuner, the artifact and the train stage share one vocabulary.

    Example:
    ```python
    tuned = TunedHyperparameters.from_values({"alpha": 3.2, "lam": 0.05})
    tuned.learning_rate  # None: not searched, the section's value applies
    ```

    Attributes:
        alpha: weight of the MI loss.
        lam: weight of the MI-difference term.
        learning_rate: the initial learning rate; None when it was not searched.
    """

    alpha: float
    lam: float
    learning_rate: float | None = None

    @classmethod
    def from_values(cls, values: Mapping[str, float]) -> TunedHyperparameters:
        """From KerasTuner's ``HyperParameters.values`` (or the artifact's JSON)."""
        names = {field.name for field in dataclasses.fields(cls)}
        unknown, missing = set(values) - names, {"alpha", "lam"} - set(values)
        if unknown or missing:
            raise ValueError(
                f"Tuned values must be {sorted(names)} (learning_rate optional); "
                f"got unknown {sorted(unknown)} and missing {sorted(missing)}."
            )
        return cls(**{name: float(value) for name, value in values.items()})

    def to_values(self) -> dict[str, float]:
        """The searched values only (no learning rate when it was not searched)."""
        return {key: value for key, value in dataclasses.asdict(self).items() if value is not None}
