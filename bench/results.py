"""Saving a bench's results: the figures with the date and the machine's core count, as the
tables in README.md quote them."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


def save(path: Path, payload: dict[str, Any]) -> None:
    stamp = {"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count()}
    path.write_text(json.dumps({**stamp, **payload}, indent=2) + "\n", encoding="utf-8")
