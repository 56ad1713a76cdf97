"""``groundset report``: what a run produced, as a terminal summary or one self-contained HTML file.

``stats`` gathers a run from the store into a ``RunReport`` (``model``): plain SQL, then the
statistics, the threshold sweeps and the ranking in Python. ``text`` writes the terminal summary,
``page`` the HTML page and ``charts`` its inline SVG charts: the page fetches nothing (its Content
Security Policy forbids it) and its one inline script only checks that every chart rendered.

Ranking rule (the best and worst candidates of the HTML report): only candidates that parsed
are ranked (parse failures have their own chart). A candidate ranks higher when it passes more
default thresholds (a metric without a score does not count as passed); ties are broken by the
mean of its normalised metrics, each scaled to 0..1 over the metric's range (the declared
low..high, or the run's observed range when the declared range is open or huge, like word
counts), clipped, and flipped when lower is better; then by candidate id."""

from __future__ import annotations

from groundset.core.report.model import BINS, RunReport
from groundset.core.report.page import check_html_path, render_html, write_html
from groundset.core.report.stats import EXCERPT_CHARS, POLICY_PREFIX, check_accepted_view, gather
from groundset.core.report.text import render_text

__all__ = [
    "BINS",
    "EXCERPT_CHARS",
    "POLICY_PREFIX",
    "RunReport",
    "check_accepted_view",
    "check_html_path",
    "gather",
    "render_html",
    "render_text",
    "write_html",
]
