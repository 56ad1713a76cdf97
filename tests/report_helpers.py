"""What the report tests share: a store with two runs of the mock backend, the CLI, SQL over the
store, an HTML parser for the report page, and headless Chromium."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from groundset.core.cli import cli
from groundset.core.store import Store

GOOD = (
    "[question]: How much did IBM pay for Red Hat?\\n[answer]: IBM paid $190.00 per share in cash."
)
COPY = (
    "[question]: What did IBM and Red Hat announce?\\n[answer]: IBM and Red Hat announced today"
    " that they have closed the transaction under which IBM acquired all of the issued and"
    " outstanding common shares of Red Hat"
)
XSS = "[question]: Is <script>alert(1)</script> safe?\\n[answer]: IBM paid <b>cash</b> per share."
REFUSAL = "I cannot help with that."  # no [question] marker
NO_ANSWER = "[question]: What did IBM buy?"  # no [answer] marker
EVIL_TITLE = '<script>alert("title")</script> & "quotes"'
CHROMIUM_TIMEOUT_S = 120


def invoke(*args: str, ok: bool = True):
    result = CliRunner().invoke(cli, list(args))
    if ok:
        assert result.exit_code == 0, result.output
    return result


#: the store both runs wrote, built once and copied for each test
_BUILT: dict[str, Path] = {}
#: read-only stores the checks query through, closed after each test
_OPEN: dict[Path, Store] = {}


def report_store(tmp_path: Path, tmp_path_factory: Any, seed_documents: Path) -> Iterator[Path]:
    """The ``store_db`` fixture (with the mock backend registered): two runs of the mock
    backend in one store, ``alpha`` (3 documents x 3 samples, two kinds
    of parse failure, a ``<script>`` in an output and in a document title) and ``beta``."""
    if "db" not in _BUILT:
        _BUILT["db"] = _build_store(tmp_path_factory.mktemp("report-store"), seed_documents)
    db = tmp_path / "s.duckdb"
    shutil.copyfile(_BUILT["db"], db)
    yield db
    for store in _OPEN.values():
        store.close()
    _OPEN.clear()


def _build_store(folder: Path, seed_documents: Path) -> Path:
    documents = [json.loads(line) for line in seed_documents.read_text().splitlines() if line]
    documents[1]["title"] = EVIL_TITLE
    docs = folder / "docs.jsonl"
    docs.write_text("".join(json.dumps(d) + "\n" for d in documents), encoding="utf-8")
    db = folder / "s.duckdb"
    runs = {
        "alpha": ([GOOD, COPY, REFUSAL, XSS, NO_ANSWER], "3", "3"),
        "beta": ([GOOD, REFUSAL], "2", "2"),
    }
    for name, (outputs, limit, samples) in runs.items():
        config = folder / f"{name}.toml"
        config.write_text(
            f'[run]\nname = "{name}"\nbackend = "mock"\nvalidators = ["format", "overlap"]\n'
            f'batch_size = 2\n\n[documents]\npath = "{docs}"\n\n'
            f"[backends.mock]\noutputs = {json.dumps(outputs).replace(chr(92) * 2, chr(92))}\n",
            encoding="utf-8",
        )
        args = ["--limit-documents", limit, "--samples", samples]
        invoke("run", str(config), "--db", str(db), "--no-progress", *args)
    return db


def sql(db: Path, query: str, *params: object) -> list[tuple]:
    if db not in _OPEN:
        _OPEN[db] = Store(db, read_only=True)
    return _OPEN[db].query(query, params).rows


def run_id(db: Path, name: str) -> str:
    return sql(db, "SELECT run_id FROM runs WHERE name = ?", name)[0][0]


def scored_metrics(db: Path, run: str) -> list[str]:
    """Declared metrics with at least one score in the run, as the report plots them."""
    rows = sql(
        db,
        "SELECT validator || '.' || metric FROM latest_scores WHERE run_id = ?"
        " AND value IS NOT NULL GROUP BY ALL ORDER BY 1",
        run,
    )
    return [r[0] for r in rows]


class _Page(HTMLParser):
    """What the tests check in a report: fetchable references, scripts, styles, plots."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.references: list[tuple[str, str, str]] = []
        self.styles: list[str] = []
        self.scripts: list[dict[str, str | None]] = []
        self.sections: list[str] = []
        self.plots: list[tuple[str, str]] = []
        self.plot_titles: dict[tuple[str, str], str] = {}
        self.axis_labels: dict[tuple[str, str], int] = {}
        self.tags: set[str] = set()
        self._plot: tuple[str, str] | None = None
        self._in: list[str] = []
        self.text: list[str] = []
        self.csp = ""

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.add(tag)
        self._in.append(tag)
        for name, value in attrs:
            if name in {"src", "href", "xlink:href", "srcset", "action", "poster", "data"}:
                self.references.append((tag, name, value or ""))
            if name == "style":
                self.styles.append(value or "")
        if tag == "script":
            self.scripts.append(attributes)
        if tag == "meta" and attributes.get("http-equiv") == "Content-Security-Policy":
            self.csp = attributes.get("content") or ""
        if tag == "section" and "run" in (attributes.get("class") or "").split():
            self.sections.append(attributes["data-run"])
        if tag == "svg" and "plot" in (attributes.get("class") or "").split():
            self._plot = (attributes["data-run"], attributes["data-plot"])
            self.plots.append(self._plot)
        if self._plot and tag == "text" and attributes.get("class") == "axis-label":
            self.axis_labels[self._plot] = self.axis_labels.get(self._plot, 0) + 1

    def handle_endtag(self, tag):
        if self._in and self._in[-1] == tag:
            self._in.pop()
        if tag == "svg":
            self._plot = None

    def handle_data(self, data):
        if self._in and self._in[-1] == "style":
            self.styles.append(data)
        if self._plot and self._in and self._in[-1] == "title":
            self.plot_titles.setdefault(self._plot, data)
        self.text.append(data)


def parse_html(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    page.close()
    return page


def report_page(store_db: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The HTML report of run ``alpha``: (store, page)."""
    page = tmp_path / "report.html"
    out = invoke("report", "alpha", "--db", str(store_db), "--html", str(page)).output
    assert f"HTML report: {page}" in out
    return store_db, page


def expected_plots(db: Path, run: str) -> set[str]:
    metrics = scored_metrics(db, run)
    plots = {f"hist:{m}" for m in metrics} | {f"sweep:{m}" for m in metrics} | {"yield"}
    failures = sql(db, "SELECT count(*) FROM candidates WHERE run_id = ? AND NOT parse_ok", run)
    return plots | ({"parse-failures"} if failures[0][0] else set())


def chromium_dom(chromium: str, page: Path, profile: Path, *flags: str) -> dict[str, str]:
    """Open ``page`` in headless Chromium and return the attributes of the rendered ``<body>``
    (the report's script writes what it rendered there)."""
    command = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        f"--user-data-dir={profile}", *flags, "--dump-dom", page.as_uri(),
    ]  # fmt: skip
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"chromium did not render {page} within {CHROMIUM_TIMEOUT_S} s")
    body = re.search(r"<body\b[^>]*>", done.stdout)
    assert body, f"chromium exited {done.returncode} without a DOM: {done.stderr[-2000:]}"
    return {k: html.unescape(v) for k, v in re.findall(r'([\w-]+)="([^"]*)"', body[0])}
