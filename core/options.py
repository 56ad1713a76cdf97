"""Turn a config table into a plugin's options dataclass, with errors that name the table and key.

Plugins declare options as a plain dataclass with defaults; this module checks unknown keys and
types so a typo in a TOML file is reported, not silently ignored."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from groundset.core.errors import ConfigError

__all__ = ["NoOptions", "build_options"]


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """Options of a plugin that takes none."""


def _allowed_types(annotation: Any) -> tuple[type, ...]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        found: list[type] = []
        for arg in typing.get_args(annotation):
            found.extend(_allowed_types(arg))
        return tuple(found)
    if annotation is type(None):
        return (type(None),)
    return (origin or annotation,)


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    allowed = _allowed_types(annotation)
    if Any in allowed:
        return value
    is_bool = isinstance(value, bool)
    if float in allowed and isinstance(value, int) and not is_bool:
        return float(value)
    if tuple in allowed and isinstance(value, list):
        return _items(tuple(value), annotation, where)
    if isinstance(value, allowed) and (bool in allowed or not is_bool):
        return _items(value, annotation, where)
    # None is the default of an optional key; TOML cannot write it, so it is not offered
    names = " or ".join(sorted({_toml_name(t) for t in allowed if t is not type(None)}))
    raise ConfigError(f"{where}: expected {names}, got {_toml_value(value)}")


#: the config file's words for Python's types: users write TOML, not Python
_TOML_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "an array",
    tuple: "an array",
    dict: "a table",
}


def _toml_name(kind: Any) -> str:
    return _TOML_NAMES.get(kind, getattr(kind, "__name__", str(kind)))


def _toml_value(value: Any) -> str:
    """A value as the config file spelled it: ``true``, ``the string 'hot'``, ``an array [1]``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the string {value!r}"
    return f"{_toml_name(type(value))} {value!r}"


def _items(value: Any, annotation: Any, where: str) -> Any:
    """Check the items of a list, tuple or dict against their declared type
    (``tuple[str, ...]``, ``list[float]``, ``dict[str, int]``)."""
    origin = typing.get_origin(annotation)
    choices = typing.get_args(annotation) if origin in (typing.Union, types.UnionType) else ()
    for choice in choices or (annotation,):
        kind, args = typing.get_origin(choice), typing.get_args(choice)
        if kind in (tuple, list) and isinstance(value, kind) and args:
            if kind is tuple and not (len(args) == 2 and args[1] is Ellipsis):
                return value  # fixed-length tuples are left to the plugin
            return kind(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if kind is dict and isinstance(value, dict) and len(args) == 2:
            return {k: _coerce(v, args[1], f"{where}.{k}") for k, v in value.items()}
    return value


def build_options(options_class: type, values: dict[str, Any] | None, where: str) -> Any:
    """Build ``options_class`` from ``values``; ``where`` names the config table in errors."""
    values = dict(values or {})
    hints = typing.get_type_hints(options_class)
    known = {f.name: f for f in dataclasses.fields(options_class)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        choices = ", ".join(sorted(known)) or "none"
        raise ConfigError(f"{where}: unknown option {unknown[0]!r} (known options: {choices})")
    coerced = {key: _coerce(value, hints[key], f"{where}.{key}") for key, value in values.items()}
    return options_class(**coerced)
