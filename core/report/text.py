"""The terminal summary of ``groundset report``."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence

from groundset.core.report.formatting import fmt, oneline, pct, run_title, seconds, status_counts
from groundset.core.report.model import BINS, RunReport

__all__ = ["SPARK", "TERMINAL_REASONS", "render_text", "sparkline"]

TERMINAL_REASONS = 5
SPARK = " ▁▂▃▄▅▆▇█"


def sparkline(counts: Sequence[int]) -> str:
    """One character per bin, scaled to the fullest bin; an empty bin is a space."""
    top = max(counts, default=0)
    if not top:
        return " " * len(counts)
    return "".join(SPARK[math.ceil(8 * c / top)] if c else " " for c in counts)


def render_text(reports: Sequence[RunReport]) -> str:
    """The terminal summary of each run."""
    return "\n\n".join(_text_one(r) for r in reports)


def _text_one(r: RunReport) -> str:
    lines = [run_title(r)]
    lines.append(f"  candidates      {r.candidates}  ({status_counts(r)})")
    lines.append(
        f"  accepted        {r.accepted}  ({pct(r.accepted, r.candidates)} of candidates,"
        f" view {r.accepted_view})"
    )
    lines.append(f"  parse failures  {r.parse_failed}")
    width = max((len(str(n)) for _, n in r.parse_failures), default=1)
    for reason, n in r.parse_failures[:TERMINAL_REASONS]:
        lines.append(f"    {str(n).rjust(width)}  {oneline(reason, 90)}")
    if len(r.parse_failures) > TERMINAL_REASONS:
        rest = sum(n for _, n in r.parse_failures[TERMINAL_REASONS:])
        more = len(r.parse_failures) - TERMINAL_REASONS
        lines.append(f"    {str(rest).rjust(width)}  ({more} other reasons)")
    if r.pass_rates:
        lines.append("  pass rates (default thresholds)")
        vw = max(len(v) for v, *_ in r.pass_rates)
        for validator, scored, passed, rate in r.pass_rates:
            ratio = f"{passed}/{scored}"
            shown = "-" if rate is None else f"{rate:.1f}%"
            lines.append(f"    {validator.ljust(vw)}  {ratio.rjust(11)}  {shown.rjust(6)}")
    if r.metrics:
        lines.append(f"  metrics ({BINS} bins over the range; * = observed range)")
        nw = max(len(s.info.key) for s in r.metrics)
        ranges = [
            f"[{fmt(s.low)}, {fmt(s.high)}]{'*' if s.observed_range else ''}" for s in r.metrics
        ]
        rw = max((len(x) for x in ranges), default=0)
        for s, span in zip(r.metrics, ranges, strict=True):
            lines.append(
                f"    {s.info.key.ljust(nw)}  {span.ljust(rw)}  |{sparkline(s.counts)}|"
                f"  n={s.n} mean={fmt(s.mean)} median={fmt(s.median)}"
            )
    if r.unscored:  # declared by the run's validators, not scored for this kind of data
        names = ", ".join(m.key for m in r.unscored)
        lines += textwrap.wrap(names, 100, initial_indent="  no scores       ",
                               subsequent_indent=" " * 18, break_on_hyphens=False)  # fmt: skip
    lines.append(
        f"  tokens          {fmt(r.prompt_tokens)} prompt, {fmt(r.completion_tokens)} completion"
    )
    lines.append(
        f"  latency         median {seconds(r.latency_median)}, p95 {seconds(r.latency_p95)}"
        " per backend call (a local model's call is a whole batch)"
    )
    return "\n".join(line.rstrip() for line in lines)
