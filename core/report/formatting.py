"""Values as the terminal summary, the HTML page and the charts all write them."""

from __future__ import annotations

import html
from typing import Any

from groundset.core.report.model import RunReport

__all__ = ["e", "fmt", "oneline", "pct", "run_title", "seconds", "status_counts"]


def fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    value = float(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if abs(value) >= 100:
        return f"{value:.1f}"
    return f"{value:.{digits}g}"


def pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} s"


def oneline(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def status_counts(r: RunReport) -> str:
    """``ok 7, parse_failed 2``."""
    return ", ".join(f"{s} {n}" for s, n in sorted(r.status_counts.items())) or "none"


def run_title(r: RunReport) -> str:
    parts = [f"run {r.run_id}" + (f" ({r.name})" if r.name else ""), r.status, r.strategy]
    if r.model_id:
        parts.append(r.model_id)
    return " | ".join([*parts, r.created])


def e(value: Any) -> str:
    """HTML-escape anything, quotes included (text and attribute values)."""
    return html.escape(str(value), quote=True)
