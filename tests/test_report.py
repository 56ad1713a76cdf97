"""``groundset report``: the terminal summary against SQL over a real store, the HTML file (self-
contained, escaped, every plot present) and, in headless Chromium, every plot rendered."""

from __future__ import annotations

import re
import statistics

import pytest

from groundset.core import report as report_module
from groundset.core.store import Store, quote_identifier
from tests.report_helpers import (
    EVIL_TITLE,
    chromium_dom,
    expected_plots,
    invoke,
    parse_html,
    run_id,
    scored_metrics,
    sql,
)

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
    attributes = chromium_dom(chromium, path, tmp_path / "chromium-profile")
    assert attributes.get("data-plots-failed") == "", attributes
    assert attributes.get("data-plots-rendered") == str(len(plots)), attributes
