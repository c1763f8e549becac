"""Typed config values: one conversion for Python config files and ``--set key=value`` strings.

A field's type annotation decides what it accepts. Strings (from the command line) are parsed;
other values (from a Python config file) are checked. Every error names the config key.
"""

from __future__ import annotations

import enum
import json
import types
import typing
from typing import Any

_NONE_WORDS = ("none", "null")
_TRUE_WORDS = ("true", "yes", "on", "1")
_FALSE_WORDS = ("false", "no", "off", "0")


class ConfigError(ValueError):
    """An invalid pipeline setting; the message names every offending key."""


def coerce(value: Any, annotation: Any, key: str) -> Any:
    """Returns ``value`` converted to ``annotation``; raises `ConfigError` naming ``key``."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [member for member in typing.get_args(annotation) if member is not type(None)]
        if value is None or (isinstance(value, str) and value.strip().lower() in _NONE_WORDS):
            return None
        (member,) = members
        return coerce(value, member, key)
    if origin is tuple:
        return _coerce_tuple(value, typing.get_args(annotation)[0], key)
    if origin is dict or annotation is dict:
        return _coerce_dict(value, key)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        try:
            return annotation.parse(value, key)
        except ValueError as error:
            raise ConfigError(str(error)) from None
    scalar = _SCALARS.get(annotation)
    if scalar is None:
        raise TypeError(f"Config key {key!r} has an unsupported type {annotation!r}.")
    return scalar(value, key)


def _coerce_bool(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    raise ConfigError(f"Config key {key!r} expects true or false; got {value!r}.")


def _coerce_int(value: Any, key: str) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"Config key {key!r} expects an integer; got {value!r}.")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ConfigError(f"Config key {key!r} expects an integer; got {value!r}.")


def _coerce_float(value: Any, key: str) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"Config key {key!r} expects a number; got {value!r}.")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        # "8/255" is how papers write eps; accept it.
        numerator, _, denominator = value.strip().partition("/")
        try:
            number = float(numerator)
            return number / float(denominator) if denominator else number
        except (ValueError, ZeroDivisionError):
            pass
    raise ConfigError(f"Config key {key!r} expects a number (e.g. 0.3 or 8/255); got {value!r}.")


def _coerce_str(value: Any, key: str) -> str:
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise ConfigError(f"Config key {key!r} expects a non-empty string; got {value!r}.")


def _coerce_tuple(value: Any, item_type: Any, key: str) -> tuple:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            value = _json(text, key)
        else:
            value = [item for item in text.split(",") if item.strip()]
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"Config key {key!r} expects a comma-separated list; got {value!r}.")
    return tuple(coerce(item, item_type, key) for item in value)


def _coerce_dict(value: Any, key: str) -> dict:
    if isinstance(value, str):
        value = _json(value, key)
    if not isinstance(value, dict):
        raise ConfigError(f'Config key {key!r} expects a JSON object, e.g. \'{{"padding": "same"}}\'; got {value!r}.')
    return dict(value)


def _json(text: str, key: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"Config key {key!r}: {text!r} is not valid JSON ({error.msg}).") from None


_SCALARS = {bool: _coerce_bool, int: _coerce_int, float: _coerce_float, str: _coerce_str}
