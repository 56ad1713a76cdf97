"""The HTML report's layout: every chart title shows whole within its chart, and the chart grid
uses the page's width, checked in the page's HTML and CSS and, in headless Chromium, in a
1300-pixel-wide window."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import html
import json
import re
from pathlib import Path

from groundset.core import report as report_module
from groundset.core.store import Store
from tests.report_helpers import (
    chromium_dom,
    run_id,
)

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
    size = f"--window-size={VIEWPORT_W},{VIEWPORT_H}"
    attributes = chromium_dom(chromium, path, tmp_path / "chromium-profile", size)
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
