"""The robustness report: what one evaluation measured, and its JSON form (schema version 1).

The dataclasses and typed dicts of this module are the schema: `RobustnessReport` and the
types of its fields, each field documented where it is declared. `validate_report` checks
a payload against the schema derived from them (every key required, no other key allowed,
types, accuracies in [0, 1], check statuses, ``masking_passed``). Accuracies are fractions
in [0, 1]; ``eps`` values are in [0, 1] pixel units (L-inf) or L2 norms. Writing the files
(JSON, Markdown, plots) is `mi_keras.evaluation.report_files`' job.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import platform
import types
import typing
from typing import Any, TypedDict

import keras
import numpy as np
import tensorflow as tf

import mi_keras
from mi_keras.enums import ParsableEnum
from mi_keras.evaluation.attack_spec import AttackSpec

SCHEMA_VERSION = 1
_IN_MEMORY = {"json": False}  # field metadata: kept in memory only, not part of the JSON


class CheckStatus(ParsableEnum):
    """Outcome of one gradient-masking check."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"  # the check needs something this evaluation did not have


class ModelDescription(TypedDict):
    """The evaluated model.

    Attributes:
        source: its path, or ``"in-memory model 'name'"``.
        kind: ``"keras"``, ``"keras_file"`` or ``"saved_model"`` (`ModelKind`).
        name: the model's name.
        input_key: the SavedModel signature's input (None otherwise).
        output_key: the SavedModel signature's output (None otherwise).
    """

    source: str
    kind: str
    name: str
    input_key: str | None
    output_key: str | None


class DataDescription(TypedDict):
    """The evaluated examples (`DataSlice.describe`).

    Attributes:
        description: what the data is.
        n_examples: how many examples.
        input_shape: ``[H, W, C]``.
        label_counts: examples per class.
        sha256: SHA-256 of the float32 images then the int32 labels.
    """

    description: str
    n_examples: int
    input_shape: list[int]
    label_counts: list[int]
    sha256: str


class Timings(TypedDict):
    """Wall-clock seconds.

    Attributes:
        total_seconds: the whole evaluation.
        clean_seconds: the clean pass.
        masking_seconds: the gradient-masking checks.
    """

    total_seconds: float
    clean_seconds: float
    masking_seconds: float


class Versions(TypedDict):
    """The software that measured.

    Attributes:
        python: Python's version.
        numpy: NumPy's version.
        tensorflow: TensorFlow's version.
        keras: Keras' version.
        mi_keras: mi_keras' version.
    """

    python: str
    numpy: str
    tensorflow: str
    keras: str
    mi_keras: str


@dataclasses.dataclass
class AttackResult:
    """One attack at one eps.

    Attributes:
        attack: the `AttackSpec` value, e.g. ``"pgd40"`` (see `spec`).
        name: the display name, e.g. ``"PGD-40"`` (``"Transfer (PGD-40)"`` for transfer).
        eps: the radius.
        robust_accuracy: the fraction of samples correct on x AND on x_adv.
        n_robust: how many samples that is.
        n_examples: how many samples were attacked.
        seconds: crafting and scoring, tracing included.
        white_box: whether the attack read the target's gradient.
        config: the attack's ``get_config()`` (plus ``"surrogate"`` for transfer).
        details: attack-specific extras, e.g. AutoAttack's accuracy after each attack.
    """

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

    @property
    def spec(self) -> AttackSpec:
        return AttackSpec(self.attack)


@dataclasses.dataclass
class EnsembleResult:
    """Per eps, the samples that survive every attack (and are clean-correct).

    Attributes:
        eps: the radius.
        robust_accuracy: the fraction of samples no attack fooled.
        n_robust: how many samples that is.
        attacks: the display names of the attacks taken together.
    """

    eps: float
    robust_accuracy: float
    n_robust: int
    attacks: list[str]


@dataclasses.dataclass
class MaskingCheckResult:
    """One gradient-masking check.

    Attributes:
        name: the check (a `MaskingCheck` value).
        status: a `CheckStatus` value.
        message: what was measured, in words.
        details: the check's numbers.
    """

    name: str
    status: str
    message: str
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status == CheckStatus.FAILED.value


@dataclasses.dataclass
class RobustnessReport:
    """Everything one evaluation measured; `to_json` / `from_json` are its JSON form.

    `mi_keras.evaluation.report_files` writes it as JSON, Markdown and PNG plots.

    Example:
    ```python
    import numpy as np
    from mi_keras.data import load_dataset
    from mi_keras.models import build_classifier

    test, info = load_dataset("digits", "test", batch_size=None, take=32)  # tiny: a smoke run
    x, y = (np.stack(part) for part in zip(*test.as_numpy_iterator()))
    model = build_classifier("small_cnn", info.image_shape, info.num_classes, padding="same")
    from mi_keras.evaluation import AttackSpec, GradientMaskingChecker, evaluate_robustness, save_report

    checker = GradientMaskingChecker(n_examples=16, square_queries=20, steps=(2, 4), restarts=2)  # defaults: 200, 1000, (10, 40), 3
    report = evaluate_robustness(model, (x, y), eps=[0.1, 0.3], attacks=["pgd40"], masking_checker=checker, progress=False)
    report.result(AttackSpec.PGD40, 0.3).robust_accuracy
    save_report(report, "reports/digits")  # report.json, report.md, accuracy_vs_eps.png, examples.png
    ```

    Attributes:
        model: the evaluated model (`ModelDescription`).
        data: the evaluated examples (`DataDescription`).
        threat_model: ``"Linf"`` or ``"L2"``.
        eps: the evaluated radii.
        seed: seed of the attacks' random draws.
        batch_size: examples per attack call.
        restarts: random restarts of the PGD-family attacks.
        clean_accuracy: the fraction of samples classified correctly.
        n_clean_correct: how many samples that is.
        results: one `AttackResult` per attack and eps.
        ensemble: one `EnsembleResult` per eps.
        masking_checks: one `MaskingCheckResult` per gradient-masking check.
        timings: `Timings`.
        versions: `Versions`.
        created_utc: when, ISO 8601.
        schema_version: the JSON schema's version.
        clean_examples: (images, labels, predictions) for the plots; in memory only.
        adversarial_examples: `AttackSpec` -> (images, predictions) at the largest eps,
            for the plots; in memory only.
        masking_passed: (in the JSON, from the checks) false when any check failed.
    """

    model: ModelDescription
    data: DataDescription
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
    timings: Timings
    versions: Versions = dataclasses.field(default_factory=lambda: package_versions())
    created_utc: str = dataclasses.field(
        default_factory=lambda: datetime.datetime.now(datetime.timezone.utc).isoformat()
    )
    schema_version: int = SCHEMA_VERSION
    clean_examples: tuple[np.ndarray, np.ndarray, np.ndarray] | None = dataclasses.field(
        default=None, repr=False, metadata=_IN_MEMORY
    )
    adversarial_examples: dict[AttackSpec, tuple[np.ndarray, np.ndarray]] = dataclasses.field(
        default_factory=dict, repr=False, metadata=_IN_MEMORY
    )

    @property
    def masking_passed(self) -> bool:
        return not any(check.failed for check in self.masking_checks)

    @property
    def attacks(self) -> list[AttackSpec]:
        """The evaluated attacks, in column order."""
        return list(dict.fromkeys(result.spec for result in self.results))

    def result(self, attack: str | AttackSpec, eps: float) -> AttackResult:
        """The result of ``attack`` (an `AttackSpec` or its value, e.g. ``"pgd40"``) at ``eps``."""
        spec = AttackSpec.parse(attack, "attack")
        for result in self.results:
            if result.spec == spec and np.isclose(result.eps, eps):
                return result
        raise ValueError(
            f"No result for attack {spec.value!r} at eps {eps}; have {[attack.value for attack in self.attacks]}."
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON fields as plain values (`masking_passed` included)."""
        values = {name: getattr(self, name) for name in json_fields(RobustnessReport)}
        values["masking_passed"] = self.masking_passed
        return json_ready(values)

    def to_json(self) -> str:
        payload = self.to_dict()
        validate_report(payload)
        return json.dumps(payload, indent=2, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> RobustnessReport:
        """Reads a report written by `to_json` (validated; example images are not stored)."""
        payload = json.loads(text)
        validate_report(payload)
        hints = typing.get_type_hints(cls)
        return cls(**{name: _from_plain(hints[name], payload[name]) for name in json_fields(cls)})


def package_versions() -> Versions:
    return Versions(
        python=platform.python_version(),
        numpy=np.__version__,
        tensorflow=tf.__version__,
        keras=keras.__version__,
        mi_keras=mi_keras.__version__,
    )


def json_fields(owner: type) -> list[str]:
    """The JSON keys a dataclass or typed dict of this module declares, in order."""
    if dataclasses.is_dataclass(owner):
        return [field.name for field in dataclasses.fields(owner) if field.metadata.get("json", True)]
    return list(typing.get_type_hints(owner))


def report_schema() -> dict[str, Any]:
    """The schema `validate_report` checks, derived from `RobustnessReport`'s declarations."""
    return {**_schema_of(RobustnessReport), "masking_passed": bool}


def validate_report(payload: dict[str, Any]) -> None:
    """Raises ValueError naming the first field that breaks the schema (`report_schema`)."""
    _validate(payload, report_schema(), "report")
    if payload["schema_version"] != SCHEMA_VERSION:
        raise ValueError(f"report.schema_version must be {SCHEMA_VERSION}; got {payload['schema_version']}.")
    fractions = [("clean_accuracy", payload["clean_accuracy"])]
    fractions += [(f"results[{i}].robust_accuracy", r["robust_accuracy"]) for i, r in enumerate(payload["results"])]
    fractions += [(f"ensemble[{i}].robust_accuracy", e["robust_accuracy"]) for i, e in enumerate(payload["ensemble"])]
    for field, value in fractions:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"report.{field} must be a fraction in [0, 1]; got {value}.")
    statuses = {status.value for status in CheckStatus}
    for index, check in enumerate(payload["masking_checks"]):
        if check["status"] not in statuses:
            raise ValueError(
                f"report.masking_checks[{index}].status must be one of {sorted(statuses)}; got {check['status']!r}."
            )
    failed = any(check["status"] == CheckStatus.FAILED.value for check in payload["masking_checks"])
    if payload["masking_passed"] == failed:
        raise ValueError("report.masking_passed contradicts the statuses of report.masking_checks.")


def _schema_of(hint):
    """A type hint as `_validate` reads it: a dict per record, ``[item]`` per list, else types."""
    if dataclasses.is_dataclass(hint) or typing.is_typeddict(hint):
        hints = typing.get_type_hints(hint)
        return {name: _schema_of(hints[name]) for name in json_fields(hint)}
    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if origin is list:
        return [_schema_of(arguments[0])]
    if origin is dict:
        return dict
    if origin in (typing.Union, types.UnionType):
        return tuple(arguments)
    return hint


def _from_plain(hint, value):
    """A JSON value back into the declared type (records of lists become dataclasses)."""
    if typing.get_origin(hint) is list and dataclasses.is_dataclass(typing.get_args(hint)[0]):
        item = typing.get_args(hint)[0]
        return [item(**entry) for entry in value]
    return value


def _validate(value, schema, path: str) -> None:
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            raise ValueError(f"{path} must be an object; got {type(value).__name__}.")
        missing, extra = set(schema) - set(value), set(value) - set(schema)
        if missing or extra:
            raise ValueError(f"{path} has missing keys {sorted(missing)} and unknown keys {sorted(extra)}.")
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


def json_ready(value):
    """Converts dataclasses, NumPy scalars and arrays, tuples and enums into plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return json_ready({name: getattr(value, name) for name in json_fields(type(value))})
    if isinstance(value, dict):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, ParsableEnum):
        return value.value
    return value
