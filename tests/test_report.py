"""``groundset report``: the terminal summary against SQL over a real store, the HTML file (self-
contained, escaped, every plot present) and, in headless Chromium, every plot rendered."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import html
import json
import re
import shutil
import statistics
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from groundset.core import report as report_module
from groundset.core.cli import cli
from groundset.core.store import Store, quote_identifier

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


@pytest.fixture
def store_db(
    tmp_path: Path, tmp_path_factory, seed_documents: Path, mock_backend
) -> Iterator[Path]:
    """Two runs of the mock backend in one store: ``alpha`` (3 documents x 3 samples, two kinds
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


# --- terminal ---------------------------------------------------------------------------------


def test_terminal_report_matches_sql(store_db):
    alpha = run_id(store_db, "alpha")
    out = invoke("report", "alpha", "--db", str(store_db)).output
    assert out.splitlines()[0].startswith(f"run {alpha} (alpha)")

    statuses = dict(
        sql(store_db, "SELECT status, count(*) FROM candidates WHERE run_id = ? GROUP BY 1", alpha)
    )
    candidates = sum(n for s, n in statuses.items() if s != "error")
    assert candidates == 9 and statuses["parse_failed"] >= 2
    status_text = ", ".join(f"{s} {n}" for s, n in sorted(statuses.items()))
    assert re.search(rf"^  candidates\s+{candidates}  \({status_text}\)$", out, re.M)

    accepted = sql(store_db, "SELECT count(*) FROM accepted_default WHERE run_id = ?", alpha)[0][0]
    assert re.search(rf"^  accepted\s+{accepted}  \(", out, re.M), out
    assert re.search(rf"^  parse failures\s+{statuses['parse_failed']}$", out, re.M)
    reasons = sql(
        store_db,
        "SELECT parse_error, count(*) FROM candidates"
        " WHERE run_id = ? AND status = 'parse_failed' GROUP BY ALL",
        alpha,
    )
    assert {r for r, _ in reasons} == {"no [question] marker", "no [answer] marker"}
    for reason, n in reasons:
        assert re.search(rf"^    {n}  {re.escape(reason)}$", out, re.M), reason

    rates = sql(
        store_db,
        "SELECT validator, count(*), count(*) FILTER (WHERE passed)"
        " FROM validator_results WHERE run_id = ? GROUP BY ALL",
        alpha,
    )
    assert {v for v, *_ in rates} == {"format", "overlap"}
    for validator, scored, passed in rates:
        assert re.search(rf"^    {validator}\s+{passed}/{scored}\s+[\d.]+%$", out, re.M)

    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("    ")}
    for key in scored_metrics(store_db, alpha):
        column = quote_identifier(key)
        rows = sql(
            store_db,
            f"SELECT {column} FROM candidate_scores WHERE run_id = ? AND {column} IS NOT NULL",
            alpha,
        )
        values = [r[0] for r in rows]
        match = re.search(r"\|(.{10})\|  n=(\d+) mean=(\S+) median=(\S+)$", lines[key])
        assert match, lines[key]
        assert int(match[2]) == len(values)
        assert float(match[3]) == pytest.approx(statistics.fmean(values), rel=1e-2, abs=1e-3)
        assert float(match[4]) == pytest.approx(statistics.median(values), rel=1e-2, abs=1e-3)
    # format.parsed is 0 for parse failures and 1 otherwise: the first and last of 10 bins
    parsed_bins = re.search(r"\|(.{10})\|", lines["format.parsed"])[1]
    assert parsed_bins[0] != " " and parsed_bins[-1] == "█" and parsed_bins[1:9].strip() == ""
    # a metric the run never scored is listed, not plotted
    assert "format.instruction_words" not in lines
    unscored = out.split("  no scores", 1)[1].split("  tokens", 1)[0]
    assert "format.instruction_words" in unscored

    tokens = sql(
        store_db,
        "SELECT sum(input_tokens), sum(output_tokens) FROM candidates"
        " WHERE run_id = ? AND candidate_index = 0",
        alpha,
    )[0]
    assert f"  tokens          {tokens[0]} prompt, {tokens[1]} completion" in out
    assert re.search(r"^  latency\s+median [\d.]+ s, p95 [\d.]+ s", out, re.M)


def test_report_defaults_to_the_latest_run(store_db):
    out = invoke("report", "--db", str(store_db)).output
    headers = [line for line in out.splitlines() if line.startswith("run ")]
    assert headers == [line for line in headers if "(beta)" in line] and len(headers) == 1


def test_several_runs_get_a_section_each(store_db, tmp_path):
    page = tmp_path / "both.html"
    alpha, beta = run_id(store_db, "alpha"), run_id(store_db, "beta")
    out = invoke("report", alpha[:6], "beta", "--db", str(store_db), "--html", str(page)).output
    headers = [line.split()[1] for line in out.splitlines() if line.startswith("run ")]
    assert headers == [alpha, beta]
    parsed = parse_html(page.read_text(encoding="utf-8"))
    assert parsed.sections == [alpha, beta]
    assert {run for run, _ in parsed.plots} == {alpha, beta}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "no run 'nope'"),
        (["--accepted-view", "nope"], "--accepted-view 'nope': no such view"),
        (["--accepted-view", 'x"; DROP TABLE runs; --'], "no such view"),
        (["--html", "/no/such/folder/r.html"], "folder /no/such/folder does not exist"),
    ],
)
def test_mistakes_are_one_line_with_exit_code_2(store_db, args, message):
    result = invoke("report", *args, "--db", str(store_db), ok=False)
    assert result.exit_code == 2, result.output
    assert message in result.output and result.output.startswith("Error: ")
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert sql(store_db, "SELECT count(*) FROM runs")[0][0] == 2


def test_another_accepted_view_is_counted(store_db, tmp_path):
    with Store(store_db) as store:
        store.query("CREATE VIEW strict AS SELECT * FROM accepted_default WHERE false")
    out = invoke("report", "alpha", "--db", str(store_db), "--accepted-view", "strict").output
    assert re.search(r"^  accepted\s+0  \(0.0% of candidates, view strict\)$", out, re.M)


# --- data behind the HTML ---------------------------------------------------------------------


def test_sweeps_histograms_and_ranking_agree_with_the_store(store_db):
    alpha = run_id(store_db, "alpha")
    with Store(store_db, read_only=True) as store:
        data = report_module.gather(store, alpha)
    accepted = sql(store_db, "SELECT count(*) FROM accepted_default WHERE run_id = ?", alpha)[0][0]
    assert data.accepted == accepted > 0
    assert [s.info.key for s in data.metrics] == scored_metrics(store_db, alpha)
    for stats in data.metrics:
        assert sum(stats.counts) == stats.n and len(stats.counts) == report_module.BINS
    word_counts = next(s for s in data.metrics if s.info.key == "format.answer_words")
    assert word_counts.observed_range and word_counts.high <= max(word_counts.values) + 0.5
    assert {s.info.key for s in data.sweeps} == {s.info.key for s in data.metrics}
    for sweep in data.sweeps:
        default = sweep.info.default_threshold
        if default is not None:  # at the default threshold a sweep is accepted_default
            assert sweep.accepted[sweep.thresholds.index(default)] == accepted, sweep.info.key
    precision = next(s for s in data.sweeps if s.info.key == "overlap.token_precision")
    assert precision.accepted == sorted(precision.accepted, reverse=True)

    parsed = sql(store_db, "SELECT count(*) FROM candidates WHERE run_id = ? AND parse_ok", alpha)
    assert data.ranked_count == parsed[0][0]
    keys = [(c.passed, c.score) for c in data.best]
    assert keys == sorted(keys, reverse=True) and data.best[0].passed == data.best[0].thresholds
    assert data.worst[0].passed <= data.best[-1].passed
    assert all(c.excerpt and len(c.excerpt) <= report_module.EXCERPT_CHARS + 1 for c in data.best)
    assert list(data.best[0].fields) == ["question", "answer"]
    documents = sql(
        store_db, "SELECT count(DISTINCT document_id) FROM candidates WHERE run_id = ?", alpha
    )
    assert data.document_count == len(data.documents) == documents[0][0]


# --- HTML -------------------------------------------------------------------------------------


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


@pytest.fixture
def html_report(store_db, tmp_path) -> tuple[Path, Path]:
    page = tmp_path / "report.html"
    out = invoke("report", "alpha", "--db", str(store_db), "--html", str(page)).output
    assert f"HTML report: {page}" in out
    return store_db, page


def expected_plots(db: Path, run: str) -> set[str]:
    metrics = scored_metrics(db, run)
    plots = {f"hist:{m}" for m in metrics} | {f"sweep:{m}" for m in metrics} | {"yield"}
    failures = sql(db, "SELECT count(*) FROM candidates WHERE run_id = ? AND NOT parse_ok", run)
    return plots | ({"parse-failures"} if failures[0][0] else set())


def test_html_fetches_nothing(html_report):
    _, path = html_report
    text = path.read_text(encoding="utf-8")
    page = parse_html(text)
    for tag, name, value in page.references:
        assert value.startswith("#"), f"<{tag} {name}={value!r}> is not an in-page link"
        assert "//" not in value and ":" not in value
    for css in page.styles:
        assert "url(" not in css.replace(" ", "").lower() and "@import" not in css
    assert not page.tags & {"link", "img", "iframe", "object", "embed", "image", "use", "base"}
    assert page.scripts == [{}]  # the one inline plot check, no src
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", text, re.I)
    assert page.csp.startswith("default-src 'none';") and "connect-src" not in page.csp


def test_html_has_every_plot_with_title_and_axis_labels(html_report):
    db, path = html_report
    alpha = run_id(db, "alpha")
    page = parse_html(path.read_text(encoding="utf-8"))
    plots = [plot for run, plot in page.plots if run == alpha]
    assert len(plots) == len(set(plots)) and set(plots) == expected_plots(db, alpha)
    assert len(plots) == 2 * len(scored_metrics(db, alpha)) + 2
    for key in page.plots:
        assert page.plot_titles.get(key), key
        assert page.axis_labels.get(key, 0) >= 1, key
        if not key[1].startswith(("yield", "parse-failures")):
            assert page.axis_labels[key] == 2, key
    body = "".join(page.text)
    assert "Worst and best candidates" in body and "Yield per document" in body
    assert "no [question] marker" in body and "no [answer] marker" in body


def test_html_escapes_outputs_and_titles(html_report):
    _, path = html_report
    text = path.read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in text and "<b>cash</b>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;b&gt;cash&lt;/b&gt;" in text
    assert EVIL_TITLE not in text and "<script>alert(" not in text
    assert "&lt;script&gt;alert(&quot;title&quot;)&lt;/script&gt; &amp; &quot;quotes&quot;" in text
    page = parse_html(text)
    assert len(page.scripts) == 1
    body = "".join(page.text)
    assert "Is <script>alert(1)</script> safe?" in body  # shown as text, not run


def test_html_plots_render_in_headless_chromium(requires_chromium, store_db, tmp_path):
    chromium = requires_chromium()  # a skip without Chromium, a failure in CI (conftest.py)
    path = tmp_path / "report.html"
    invoke("report", "alpha", "beta", "--db", str(store_db), "--html", str(path))
    plots = parse_html(path.read_text(encoding="utf-8")).plots
    alpha, beta = run_id(store_db, "alpha"), run_id(store_db, "beta")
    assert len(plots) == len(expected_plots(store_db, alpha)) + len(expected_plots(store_db, beta))
    command = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium-profile'}", "--dump-dom", path.as_uri(),
    ]  # fmt: skip
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"chromium did not render {path} within {CHROMIUM_TIMEOUT_S} s")
    body = re.search(r"<body\b[^>]*>", done.stdout)
    assert body, f"chromium exited {done.returncode} without a DOM: {done.stderr[-2000:]}"
    attributes = dict(re.findall(r'([\w-]+)="([^"]*)"', body[0]))
    assert attributes.get("data-plots-failed") == "", attributes
    assert attributes.get("data-plots-rendered") == str(len(plots)), attributes


# --- layout: whole chart titles, a chart grid as wide as the page -----------------------------

#: metric names too long for a chart's width at the title's size, as validators name them
LONG_KEYS = (
    "grounding_embedding.min_sentence_similarity",
    "a_third_party_validator.metric_named_at_even_greater_length_than_any_built_in_one",
)
#: a narrow estimate of a bold sans-serif glyph (DejaVu Sans Bold averages about 0.63 em)
TITLE_EM = 0.6
#: the chart titles' font size in px (the report's CSS)
TITLE_PX = 12.5
VIEWPORT_W, VIEWPORT_H = 1300, 1000
#: records, once the page has loaded, every chart text outside its chart and each grid's extent
LAYOUT_SCRIPT = """
window.addEventListener("load", function () {
  var out = {width: window.innerWidth, overflowing: [], grids: []};
  document.querySelectorAll("svg.plot").forEach(function (svg) {
    var box = svg.getBoundingClientRect();
    svg.querySelectorAll("text").forEach(function (text) {
      var r = text.getBoundingClientRect();
      if (r.left < box.left - 0.5 || r.right > box.right + 0.5
          || r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5)
        out.overflowing.push([svg.getAttribute("data-plot"), text.getAttribute("class"),
                              text.textContent, [r.left, r.right], [box.left, box.right]]);
    });
  });
  document.querySelectorAll(".plots").forEach(function (grid) {
    var left = Infinity, right = -Infinity, plots = [];
    grid.querySelectorAll("svg.plot").forEach(function (svg) {
      var r = svg.closest("figure").getBoundingClientRect();
      left = Math.min(left, r.left); right = Math.max(right, r.right);
      plots.push(svg.getAttribute("data-plot"));
    });
    out.grids.push({plots: plots, left: left, right: right});
  });
  document.body.setAttribute("data-layout", JSON.stringify(out));
});
"""


def long_named_page(db: Path) -> str:
    """The HTML report of ``alpha`` with its first metrics renamed to LONG_KEYS (its own
    ``overlap.token_precision`` stays)."""
    with Store(db, read_only=True) as store:
        data = report_module.gather(store, run_id(db, "alpha"))
    renamed = {}
    shorter = [s for s in data.metrics if s.info.key != "overlap.token_precision"]
    for stats, key in zip(shorter, LONG_KEYS, strict=False):
        validator, metric = key.split(".", 1)
        renamed[stats.info.key] = dataclasses.replace(
            stats.info, validator=validator, metric=metric
        )
    assert len(renamed) == len(LONG_KEYS)
    for item in (*data.metrics, *data.sweeps):
        item.info = renamed.get(item.info.key, item.info)
    return report_module.render_html([data], db)


def chart_titles(page: str) -> dict[str, tuple[float, list[str]]]:
    """Each chart's viewBox width and the lines of its visible title, by plot."""
    found = {}
    for svg in re.findall(r'<svg class="plot".*?</svg>', page, re.S):
        plot = html.unescape(re.search(r'data-plot="([^"]*)"', svg)[1])
        width = float(re.search(r'viewBox="0 0 ([\d.]+) ', svg)[1])
        title = re.search(r'<text class="title"[^>]*>(.*?)</text>', svg, re.S)[1]
        lines = re.findall(r"<tspan\b[^>]*>(.*?)</tspan>", title, re.S) or [title]
        found[plot] = (width, [html.unescape(line) for line in lines])
    return found


def test_chart_titles_show_whole_within_their_chart(store_db):
    titles = chart_titles(long_named_page(store_db))
    for key in (*LONG_KEYS, "overlap.token_precision"):
        for plot in (f"hist:{key}", f"sweep:{key}"):
            _, lines = titles[plot]
            assert key in "".join(lines), (plot, lines)  # broken into lines, but all there
    for plot, (width, lines) in titles.items():
        assert not any("…" in line for line in lines), (plot, lines)
        for line in lines:  # even narrow glyphs would run past the chart's edges
            assert len(line) * TITLE_PX * TITLE_EM <= width - 8, (plot, width, line)


def css_rules(page: str) -> dict[str, dict[str, str]]:
    """The declarations of each rule of the page's style sheet, by selector."""
    style = re.search(r"<style>(.*?)</style>", page, re.S)[1]
    rules: dict[str, dict[str, str]] = {}
    for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", style):
        declarations = dict(
            (name.strip(), " ".join(value.split()))
            for name, value in (d.split(":", 1) for d in body.split(";") if ":" in d)
        )
        for selector in selectors.split(","):
            rules.setdefault(" ".join(selector.split()), {}).update(declarations)
    return rules


def test_chart_grid_columns_fill_the_page_width(html_report):
    _, path = html_report
    page = path.read_text(encoding="utf-8")
    rules = css_rules(page)
    grid = rules[".plots"]
    assert grid.get("display") == "grid", grid
    # as many columns as fit, stretched to share out the whole width
    assert re.fullmatch(
        r"repeat\(auto-(fill|fit), minmax\(.+, 1fr\)\)", grid.get("grid-template-columns", "")
    ), grid
    chart = rules["svg.plot"]
    assert chart.get("width") == "100%" and chart.get("height") == "auto", chart
    assert "max-width" not in rules.get("figure", {}) and "width" not in rules.get("figure", {})
    svgs = re.findall(r'<svg class="plot"[^>]*>', page)
    assert svgs and all(re.search(r'viewBox="0 0 [\d.]+ [\d.]+"', svg) for svg in svgs)
    # a lone wide chart (bars per document) spans the row instead of one column of it
    assert rules[".plots > .wide"].get("grid-column") == "1 / -1"
    assert re.search(r'<figure class="wide"><svg class="plot" data-plot="yield"', page)


def test_html_layout_in_a_1300px_window_of_headless_chromium(requires_chromium, store_db, tmp_path):
    chromium = requires_chromium()  # a skip without Chromium, a failure in CI (conftest.py)
    page = long_named_page(store_db)
    digest = base64.b64encode(hashlib.sha256(LAYOUT_SCRIPT.encode()).digest()).decode()
    csp = "script-src &#x27;"  # the policy lets the measuring script run too, by its hash
    assert page.count(csp) == 1 and page.count("</body>") == 1
    page = page.replace(csp, f"{csp}sha256-{digest}&#x27; &#x27;")
    page = page.replace("</body>", f"<script>{LAYOUT_SCRIPT}</script></body>")
    path = tmp_path / "layout.html"
    path.write_text(page, encoding="utf-8")
    command = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        f"--window-size={VIEWPORT_W},{VIEWPORT_H}", "--dump-dom", path.as_uri(),
    ]  # fmt: skip
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"chromium did not render {path} within {CHROMIUM_TIMEOUT_S} s")
    body = re.search(r"<body\b[^>]*>", done.stdout)
    assert body, f"chromium exited {done.returncode} without a DOM: {done.stderr[-2000:]}"
    attributes = {k: html.unescape(v) for k, v in re.findall(r'([\w-]+)="([^"]*)"', body[0])}
    assert attributes.get("data-plots-failed") == "", attributes
    assert "data-layout" in attributes, f"the measuring script did not run: {attributes}"
    layout = json.loads(attributes["data-layout"])
    assert layout["width"] == VIEWPORT_W, layout["width"]

    assert layout["overflowing"] == [], "chart text runs past its chart (clipped)"
    plots = {plot for grid in layout["grids"] for plot in grid["plots"]}
    assert {f"{kind}:{key}" for kind in ("hist", "sweep") for key in LONG_KEYS} <= plots
    for grid in layout["grids"]:
        if len(grid["plots"]) >= 3 or grid["plots"] == ["yield"]:
            span = grid["right"] - grid["left"]
            assert span >= 0.85 * VIEWPORT_W, f"{grid['plots']} span {span:.0f} px of {VIEWPORT_W}"
