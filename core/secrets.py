"""Credentials in configs: ``"$env:NAME"`` takes a value from the environment when a plugin is
built, and options a plugin marks secret are never stored, logged or shown, only their
references. A config can then be committed, and the store shared, without leaking a key."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from groundset.core.errors import ConfigError

__all__ = ["ENV_PREFIX", "REDACTED", "SECRET_NAMES", "redact", "resolve_env", "scrub"]

ENV_PREFIX = "$env:"
REDACTED = "***"
#: option names treated as secret in every plugin's table, at any depth
SECRET_NAMES = frozenset(
    {"api_key", "apikey", "token", "bearer_token", "access_token", "password", "secret"}
)


def resolve_env(values: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``values`` with every ``"$env:NAME"`` replaced by the variable's value; a variable that
    is not set is an error naming the option and the variable, not a silent empty string."""
    resolved = dict(values)
    for key, value in values.items():
        if isinstance(value, str) and value.startswith(ENV_PREFIX):
            name = value[len(ENV_PREFIX) :].strip()
            if not name:
                raise ConfigError(f"{where}.{key}: {value!r} names no variable ($env:NAME)")
            if not os.environ.get(name):
                raise ConfigError(
                    f"{where}.{key} reads the environment variable {name}, which is not set"
                )
            resolved[key] = os.environ[name]
    return resolved


def redact(values: Mapping[str, Any], secret_names: Iterable[str] = ()) -> dict[str, Any]:
    """``values`` fit to record, nested tables included: a secret given literally becomes
    ``"***"``; an ``$env:`` reference stays, since it names the variable, not the secret."""
    secret = SECRET_NAMES | set(secret_names)

    def clean(key: str, value: Any) -> Any:
        if isinstance(value, Mapping):
            return redact(value, secret_names)
        if key not in secret or value in (None, ""):
            return value
        if isinstance(value, str) and value.startswith(ENV_PREFIX):
            return value
        return REDACTED

    return {key: clean(key, value) for key, value in values.items()}


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every secret value in it replaced by ``"***"`` (for error messages)."""
    for value in secrets:
        if value and len(value) >= 4:
            text = text.replace(value, REDACTED)
    return text
