"""A real ``groundset review`` process on a scored store, for the review page's tests."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

DOCUMENT = "The {site} plant opened in {year} and employs {staff} people in three shifts."


def scored_store(folder: Path, n: int = 60) -> Path:
    """``groundset score`` of answers that copy their document or invent: overlap tells them
    apart, so some pass the default thresholds and some do not."""
    rows = []
    for i in range(n):
        facts = {"site": f"Site {i}", "year": 1990 + i % 30, "staff": 100 + i}
        answer = (
            f"The {facts['site']} plant opened in {facts['year']}."
            if i % 2
            else f"The {facts['site']} factory was founded by engineers from abroad."
        )
        rows.append({"document": DOCUMENT.format(**facts), "answer": answer})
    data = folder / "answers.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    db = folder / "s.duckdb"
    command = [sys.executable, "-m", "groundset.core", "score", str(data), "--db", str(db),
               "--validators", "overlap", "--question-field", "", "--no-progress"]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, env=_env())
    return db


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "GROUNDSET_LOAD_PLUGINS": "", **extra}


@dataclass
class ReviewServer:
    process: subprocess.Popen[str]
    url: str
    token: str

    @property
    def base(self) -> str:
        return self.url.split("/?", 1)[0]

    def api(self, path: str, body: dict | None = None, token: str | None = "") -> httpx.Response:
        headers = {} if token is None else {"X-Groundset-Token": token or self.token}
        if body is None:
            return httpx.get(self.base + path, headers=headers, timeout=30)
        return httpx.post(self.base + path, json=body, headers=headers, timeout=30)

    def stop(self, sig: int = signal.SIGINT) -> str:
        """Stop the page (Ctrl-C, or ``sig``) and return what it printed."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        out, _ = self.process.communicate(timeout=60)
        return out


@contextmanager
def review_server(db: Path, *args: str, **env: str) -> Iterator[ReviewServer]:
    command = [sys.executable, "-m", "groundset.core", "review", "--db", str(db), *args]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(**env)
    )
    assert process.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                raise AssertionError(f"groundset review exited: {''.join(seen)}")
            seen.append(line)
            found = re.search(r"review page: (http://\S+token=(\S+))", line)
            if found:
                break
        else:
            raise AssertionError(f"no address within 60 s: {''.join(seen)}")
        server = ReviewServer(process, found.group(1), found.group(2))
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
