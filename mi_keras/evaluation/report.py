"""The robustness report: JSON (schema below), a Markdown table and PNG plots.

JSON schema (version 1). Every key is required; no other key is allowed. Accuracies are
fractions in [0, 1]; ``eps`` values are in [0, 1] pixel units (L-inf) or L2 norms.

```
{
  "schema_version": 1,
  "created_utc": str,                     # ISO 8601
  "model": {"source": str,                # path, or "in-memory model 'name'"
            "kind": "keras" | "keras_file" | "saved_model",
            "name": str,
            "input_key": str | null,      # SavedModel signature input (else null)
            "output_key": str | null},    # SavedModel signature output (else null)
  "data": {"description": str, "n_examples": int, "input_shape": [int, ...],
           "label_counts": [int, ...], "sha256": str},   # sha256 of the float32 x then int32 y
  "threat_model": "Linf" | "L2",
  "eps": [float, ...],
  "seed": int, "batch_size": int, "restarts": int,
  "clean_accuracy": float, "n_clean_correct": int,
  "results": [{"attack": str,             # an AttackSpec value, e.g. "pgd40"
               "name": str,               # display name, e.g. "PGD-40"
               "eps": float,
               "robust_accuracy": float,  # correct on x AND on x_adv
               "n_robust": int, "n_examples": int,
               "seconds": float,          # crafting + scoring, tracing included
               "white_box": bool,
               "config": {...},           # the attack's get_config() (+ "surrogate" for transfer)
               "details": {...}}, ...],   # attack-specific extras, e.g. AutoAttack's per-attack
  "ensemble": [{"eps": float, "robust_accuracy": float, "n_robust": int,
                "attacks": [str, ...]}, ...],  # a sample counts only if it survives them all
  "masking_checks": [{"name": str, "status": "passed" | "failed" | "skipped",
                      "message": str, "details": {...}}, ...],
  "masking_passed": bool,                 # false when any check failed
  "timings": {"total_seconds": float, "clean_seconds": float, "masking_seconds": float},
  "versions": {"python": str, "numpy": str, "tensorflow": str, "keras": str, "mi_keras": str}
}
```
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
from typing import Any

import keras
import numpy as np
import tensorflow as tf

import mi_keras
from mi_keras.enums import ParsableEnum
from mi_keras.evaluation.attack_spec import AttackSpec

SCHEMA_VERSION = 1


class CheckStatus(ParsableEnum):
    """Outcome of one gradient-masking check."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"  # the check needs something this evaluation did not have


@dataclasses.dataclass
class AttackResult:
    """One attack at one eps. ``robust_accuracy`` counts samples correct on x and x_adv."""

    attack: str
    name: str
    eps: float
    robust_accuracy: float
    n_robust: int
    n_examples: int
    seconds: float
    white_box: bool
    config: dict[str, Any]
    details: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class EnsembleResult:
    """Per eps, the fraction of samples that survive every attack (and are clean-correct)."""

    eps: float
    robust_accuracy: float
    n_robust: int
    attacks: list[str]


@dataclasses.dataclass
class MaskingCheckResult:
    """One gradient-masking check; ``status`` is a `CheckStatus` value."""

    name: str
    status: str
    message: str
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status == CheckStatus.FAILED.value


@dataclasses.dataclass
class RobustnessReport:
    """Everything one evaluation measured; `save` writes JSON, Markdown and PNG plots.

    The JSON holds the numbers (see the module docstring for its schema). The example
    images are kept in memory for the plots only: ``clean_examples`` is (images, labels,
    predictions) and ``adversarial_examples`` maps an attack name to (images, predictions)
    at the largest eps.

    Example:
    ```python
    report = evaluate_robustness(model, (x, y), eps=[0.1, 0.3])
    print(report.to_markdown())
    report.save("reports/mnist")  # report.json, report.md, accuracy_vs_eps.png, examples.png
    ```
    """

    model: dict[str, Any]
    data: dict[str, Any]
    threat_model: str
    eps: list[float]
    seed: int
    batch_size: int
    restarts: int
    clean_accuracy: float
    n_clean_correct: int
    results: list[AttackResult]
    ensemble: list[EnsembleResult]
    masking_checks: list[MaskingCheckResult]
    timings: dict[str, float]
    versions: dict[str, str] = dataclasses.field(default_factory=lambda: package_versions())
    created_utc: str = dataclasses.field(
        default_factory=lambda: datetime.datetime.now(datetime.timezone.utc).isoformat()
    )
    schema_version: int = SCHEMA_VERSION
    clean_examples: tuple[np.ndarray, np.ndarray, np.ndarray] | None = dataclasses.field(
        default=None, repr=False
    )
    adversarial_examples: dict[str, tuple[np.ndarray, np.ndarray]] = dataclasses.field(
        default_factory=dict, repr=False
    )

    @property
    def masking_passed(self) -> bool:
        return not any(check.failed for check in self.masking_checks)

    @property
    def attack_names(self) -> list[str]:
        return list(dict.fromkeys(result.name for result in self.results))

    def result(self, name: str, eps: float) -> AttackResult:
        """The result of the attack with display name ``name`` at ``eps``."""
        for result in self.results:
            if result.name == name and np.isclose(result.eps, eps):
                return result
        raise ValueError(f"No result for attack {name!r} at eps {eps}; have {self.attack_names}.")

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "created_utc": self.created_utc,
            "model": self.model,
            "data": self.data,
            "threat_model": self.threat_model,
            "eps": [float(eps) for eps in self.eps],
            "seed": self.seed,
            "batch_size": self.batch_size,
            "restarts": self.restarts,
            "clean_accuracy": float(self.clean_accuracy),
            "n_clean_correct": int(self.n_clean_correct),
            "results": [dataclasses.asdict(result) for result in self.results],
            "ensemble": [dataclasses.asdict(entry) for entry in self.ensemble],
            "masking_checks": [dataclasses.asdict(check) for check in self.masking_checks],
            "masking_passed": self.masking_passed,
            "timings": {key: float(value) for key, value in self.timings.items()},
            "versions": self.versions,
        }

    def to_json(self) -> str:
        payload = _json_ready(self.to_dict())
        validate_report(payload)
        return json.dumps(payload, indent=2, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> RobustnessReport:
        """Reads a report written by `to_json` (validated; example images are not stored)."""
        payload = json.loads(text)
        validate_report(payload)
        payload = dict(payload)
        payload.pop("masking_passed")
        payload["results"] = [AttackResult(**result) for result in payload["results"]]
        payload["ensemble"] = [EnsembleResult(**entry) for entry in payload["ensemble"]]
        payload["masking_checks"] = [
            MaskingCheckResult(**check) for check in payload["masking_checks"]
        ]
        return cls(**payload)

    def to_markdown(self) -> str:
        return "\n".join(_markdown_lines(self)) + "\n"

    def save(self, directory: str | os.PathLike) -> dict[str, str]:
        """Writes ``report.json``, ``report.md`` and the PNG plots; returns their paths."""
        from mi_keras.evaluation import plots

        os.makedirs(directory, exist_ok=True)
        paths = {
            "json": os.path.join(directory, "report.json"),
            "markdown": os.path.join(directory, "report.md"),
            "accuracy_plot": os.path.join(directory, "accuracy_vs_eps.png"),
        }
        with open(paths["json"], "w") as file:
            file.write(self.to_json())
        with open(paths["markdown"], "w") as file:
            file.write(self.to_markdown())
        plots.plot_accuracy_vs_eps(self, paths["accuracy_plot"])
        if self.clean_examples is not None and self.adversarial_examples:
            paths["examples_plot"] = os.path.join(directory, "examples.png")
            plots.plot_examples(self, paths["examples_plot"])
        return paths

    def save_next_to_model(self) -> str | None:
        """Writes the JSON with the evaluated file or SavedModel; None for in-memory models.

        ``saved_models/name/1`` gets ``saved_models/name/1/assets/robustness.json``: inside
        the version, never beside it, where a ``saved_models/name/<version>`` glob would
        see it (TF Serving reads neither the graph nor the weights from ``assets/``);
        ``model.keras`` gets ``model.robustness.json``.
        """
        if self.model["kind"] == "keras":
            return None
        source = os.path.normpath(self.model["source"])
        if source.endswith(".keras"):
            path = source[: -len(".keras")] + ".robustness.json"
        else:
            os.makedirs(os.path.join(source, "assets"), exist_ok=True)
            path = os.path.join(source, "assets", "robustness.json")
        with open(path, "w") as file:
            file.write(self.to_json())
        return path


def package_versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "mi_keras": mi_keras.__version__,
    }


def validate_report(payload: dict[str, Any]) -> None:
    """Raises ValueError naming the first field that breaks the documented schema."""
    _validate(payload, _SCHEMA, "report")
    if payload["schema_version"] != SCHEMA_VERSION:
        raise ValueError(
            f"report.schema_version must be {SCHEMA_VERSION}; got {payload['schema_version']}."
        )
    fractions = [("clean_accuracy", payload["clean_accuracy"])]
    fractions += [
        (f"results[{i}].robust_accuracy", r["robust_accuracy"])
        for i, r in enumerate(payload["results"])
    ]
    fractions += [
        (f"ensemble[{i}].robust_accuracy", e["robust_accuracy"])
        for i, e in enumerate(payload["ensemble"])
    ]
    for field, value in fractions:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"report.{field} must be a fraction in [0, 1]; got {value}.")
    statuses = {status.value for status in CheckStatus}
    for index, check in enumerate(payload["masking_checks"]):
        if check["status"] not in statuses:
            raise ValueError(
                f"report.masking_checks[{index}].status must be one of {sorted(statuses)}; "
                f"got {check['status']!r}."
            )
    failed = any(check["status"] == CheckStatus.FAILED.value for check in payload["masking_checks"])
    if payload["masking_passed"] == failed:
        raise ValueError("report.masking_passed contradicts the statuses of report.masking_checks.")


_NULLABLE_STR = (str, type(None))
_SCHEMA = {
    "schema_version": int,
    "created_utc": str,
    "model": {
        "source": str,
        "kind": str,
        "name": str,
        "input_key": _NULLABLE_STR,
        "output_key": _NULLABLE_STR,
    },
    "data": {
        "description": str,
        "n_examples": int,
        "input_shape": [int],
        "label_counts": [int],
        "sha256": str,
    },
    "threat_model": str,
    "eps": [float],
    "seed": int,
    "batch_size": int,
    "restarts": int,
    "clean_accuracy": float,
    "n_clean_correct": int,
    "results": [
        {
            "attack": str,
            "name": str,
            "eps": float,
            "robust_accuracy": float,
            "n_robust": int,
            "n_examples": int,
            "seconds": float,
            "white_box": bool,
            "config": dict,
            "details": dict,
        }
    ],
    "ensemble": [{"eps": float, "robust_accuracy": float, "n_robust": int, "attacks": [str]}],
    "masking_checks": [{"name": str, "status": str, "message": str, "details": dict}],
    "masking_passed": bool,
    "timings": {"total_seconds": float, "clean_seconds": float, "masking_seconds": float},
    "versions": {"python": str, "numpy": str, "tensorflow": str, "keras": str, "mi_keras": str},
}


def _validate(value, schema, path: str) -> None:
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            raise ValueError(f"{path} must be an object; got {type(value).__name__}.")
        missing, extra = set(schema) - set(value), set(value) - set(schema)
        if missing or extra:
            raise ValueError(
                f"{path} has missing keys {sorted(missing)} and unknown keys {sorted(extra)}."
            )
        for key, subschema in schema.items():
            _validate(value[key], subschema, f"{path}.{key}")
    elif isinstance(schema, list):
        if not isinstance(value, list):
            raise ValueError(f"{path} must be a list; got {type(value).__name__}.")
        for index, item in enumerate(value):
            _validate(item, schema[0], f"{path}[{index}]")
    elif not _is_instance(value, schema):
        raise ValueError(f"{path} must be {_type_name(schema)}; got {value!r}.")


def _is_instance(value, expected) -> bool:
    expected = expected if isinstance(expected, tuple) else (expected,)
    if isinstance(value, bool):  # bool is an int subclass; accept it only where bool is meant
        return bool in expected
    if isinstance(value, int) and float in expected:
        return True
    return isinstance(value, expected)


def _type_name(expected) -> str:
    expected = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join("null" if kind is type(None) else kind.__name__ for kind in expected)


def _json_ready(value):
    """Converts NumPy scalars and arrays, tuples and enums into plain JSON values."""
    if isinstance(value, dict):
        return {str(key): _json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(item) for item in value]
    if isinstance(value, np.ndarray):
        return _json_ready(value.tolist())
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, ParsableEnum):
        return value.value
    return value


def _percent(value: float) -> str:
    return f"{100.0 * value:.2f}"


def _markdown_lines(report: RobustnessReport) -> list[str]:
    data = report.data
    lines = [
        f"# Robustness report: {report.model['name']}",
        "",
        f"- Model: `{report.model['source']}` ({report.model['kind']})",
        f"- Data: {data['description']}; {data['n_examples']} examples; "
        f"sha256 `{data['sha256'][:16]}`",
        f"- Threat model: {report.threat_model}; seed {report.seed}; "
        f"batch size {report.batch_size}; "
        f"PGD restarts {report.restarts}",
        f"- Clean accuracy: {_percent(report.clean_accuracy)}% "
        f"({report.n_clean_correct}/{data['n_examples']})",
        "",
    ]
    lines += _masking_warning_lines(report)
    names = report.attack_names
    lines += [
        "## Robust accuracy (%)",
        "",
        "A sample is robust if it is classified correctly both clean and under the attack; "
        "`ensemble` counts the samples that survive every attack.",
        "",
        "| eps | clean | " + " | ".join(names) + " | ensemble |",
        "|---" * (len(names) + 3) + "|",
    ]
    ensemble = {round(entry.eps, 12): entry for entry in report.ensemble}
    for eps in report.eps:
        cells = [_percent(report.result(name, eps).robust_accuracy) for name in names]
        lines.append(
            f"| {eps:g} | {_percent(report.clean_accuracy)} | "
            + " | ".join(cells)
            + f" | {_percent(ensemble[round(eps, 12)].robust_accuracy)} |"
        )
    lines += _own_ball_lines(report)
    breakdowns = [r for r in report.results if "robust_accuracy_after" in r.details]
    if breakdowns:
        lines += ["", "AutoAttack, robust accuracy after each of its attacks (cumulative):", ""]
    for result in breakdowns:
        steps = result.details["robust_accuracy_after"].items()
        lines.append(
            f"- eps {result.eps:g}: "
            + " -> ".join(f"{name} {_percent(accuracy)}" for name, accuracy in steps)
        )
    lines += ["", "## Gradient-masking checks", ""]
    for check in report.masking_checks:
        lines.append(f"- **{check.status.upper()}** `{check.name}`: {check.message}")
    lines += ["", "## Timings (s)", "", "| attack | eps | seconds |", "|---|---|---|"]
    lines += [f"| {r.name} | {r.eps:g} | {r.seconds:.2f} |" for r in report.results]
    lines += [
        "",
        f"Clean pass {report.timings['clean_seconds']:.2f} s, masking checks "
        f"{report.timings['masking_seconds']:.2f} s, "
        f"total {report.timings['total_seconds']:.2f} s.",
        "",
        f"## Attack configurations (at eps {max(report.eps):g})",
        "",
    ]
    configs = {r.name: r.config for r in report.results if r.eps == max(report.eps)}
    lines += [
        f"- {name}: `{json.dumps(_json_ready(config), sort_keys=True)}`"
        for name, config in configs.items()
    ]
    lines += [
        "",
        "Versions: " + ", ".join(f"{key} {value}" for key, value in report.versions.items()),
    ]
    return lines


def _own_ball_lines(report: RobustnessReport) -> list[str]:
    """A note for each attack that bounds another ball than the report's (FWA)."""
    notes = {}
    for result in report.results:
        ball = AttackSpec(result.attack).ball(report.threat_model)
        if ball.value != report.threat_model:
            notes[result.name] = ball
    return [
        f"\n{name} bounds a {ball.value} ball: its eps is the transport cost (pixel distance x "
        "mass moved) relative to the image's total pixel mass, not a norm of x_adv - x."
        for name, ball in notes.items()
    ]


def _masking_warning_lines(report: RobustnessReport) -> list[str]:
    failed = [check for check in report.masking_checks if check.failed]
    if not failed:
        return []
    lines = ["> **WARNING: gradient masking suspected.** These numbers may overstate robustness:"]
    lines += [f"> - `{check.name}`: {check.message}" for check in failed]
    return lines + [""]
