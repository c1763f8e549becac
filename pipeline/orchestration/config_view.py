"""What a stage may read of the config: the sections it declares, and nothing else."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the engine reads any dataclass of sections; this one is the pipeline's
    from pipeline.settings import PipelineConfig


class UndeclaredConfigError(RuntimeError):
    """A stage read a config section (or field) it does not declare in `Stage.config_sections`.

    A programming error, not bad input: the stage's cache key would miss that setting.
    """


class ConfigView:
    """A `PipelineConfig` restricted to declared keys; reading any other key raises.

    ``keys`` are top-level names (``"seed"``, ``"train"``) or ``"section.field"``
    (``"train.method"``): a dotted key opens that one field of the section. ``deterministic``
    may be read wherever ``seed`` is declared (it changes the numbers a seed gives). `to_dict`
    returns exactly the declared values: the stage's cache key covers them, and a stage that
    records "its config" (the export's metadata) records what the key covers.

    Example:
    ```python
    view = ConfigView(config, "export", ("attack", "export", "train.method"))
    view.attack.eps        # declared
    view.train.method      # declared field
    view.train.epochs      # UndeclaredConfigError naming the stage and train.epochs
    ```

    Args:
        config: the full config.
        stage: the reading stage's name, for the error message.
        keys: the declared keys.
    """

    def __init__(self, config: PipelineConfig, stage: str, keys: tuple[str, ...]):
        top_level = {item.name for item in dataclasses.fields(config)}
        fields: dict[str, set[str] | None] = {}
        for key in keys:
            section, _, field = key.partition(".")
            if section not in top_level:
                raise ValueError(f"Stage {stage!r} declares unknown config key {key!r}.")
            if field and field not in {item.name for item in dataclasses.fields(getattr(config, section))}:
                raise ValueError(f"Stage {stage!r} declares unknown config key {key!r}.")
            if field:
                if fields.get(section, set()) is not None:
                    fields.setdefault(section, set()).add(field)
            else:
                fields[section] = None
        if "seed" in fields:
            fields.setdefault("deterministic", None)
        self._config = config
        self._stage = stage
        self._keys = tuple(keys)
        self._fields = fields
        self._top_level = top_level

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in self._top_level:
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}.")
        if name not in self._fields:
            raise UndeclaredConfigError(
                f"Stage {self._stage!r} reads config.{name}, which its config_sections {list(self._keys)} do not "
                f"declare: declare {name!r} (or the fields it reads) so that its cache key covers it."
            )
        value = getattr(self._config, name)
        fields = self._fields[name]
        return value if fields is None else _SectionView(value, self._stage, name, fields)

    def replace(self, **changes: Any) -> ConfigView:
        """A view of ``dataclasses.replace(config, **changes)``; the changed keys become readable."""
        keys = tuple(dict.fromkeys((*self._keys, *changes)))
        return ConfigView(dataclasses.replace(self._config, **changes), self._stage, keys)

    def to_dict(self) -> dict[str, Any]:
        """The declared values, JSON-ready (``deterministic`` only when set: older keys stay valid)."""
        values = self._config.to_dict()
        declared: dict[str, Any] = {}
        for name, fields in self._fields.items():
            if name == "deterministic" and "deterministic" not in self._keys and not values[name]:
                continue
            value = values[name]
            declared[name] = value if fields is None else {field: value[field] for field in sorted(fields)}
        return declared


class _SectionView:
    """One section with only its declared fields readable."""

    def __init__(self, section: Any, stage: str, name: str, fields: set[str]):
        self._section = section
        self._stage = stage
        self._name = name
        self._fields = fields

    def __getattr__(self, field: str) -> Any:
        if field.startswith("_"):
            raise AttributeError(field)
        if field not in self._fields:
            raise UndeclaredConfigError(
                f"Stage {self._stage!r} reads config.{self._name}.{field}, which its config_sections do not "
                f"declare (of {self._name!r} only {sorted(self._fields)}): declare it so that its cache key covers it."
            )
        return getattr(self._section, field)
