"""The guide's worked example (docs/calibration.md) is what the documented command prints on the
public labelled set, and its interval-width table is what the documented computation gives."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GUIDE = REPO / "docs" / "calibration.md"
SCRIPT = REPO / "bench" / "calibration_guide.py"
HEADING = "## Worked example: a public labelled set"


def section(heading: str) -> str:
    """The guide's text from ``heading`` to the next section."""
    text = GUIDE.read_text(encoding="utf-8")
    assert heading in text, heading
    return text.split(heading, 1)[1].split("\n## ", 1)[0]


def quoted_output(text: str) -> list[str]:
    """The lines of the section's first ``text`` block: the output it quotes."""
    block = text.split("```text\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_the_worked_example_is_what_the_documented_command_prints(requires_shared, tmp_path):
    data = requires_shared("data/grounding/begin_dev.jsonl.gz").parent
    text = section(HEADING)
    assert "python bench/calibration_guide.py --db" in text
    quoted = quoted_output(text)
    assert len(quoted) >= 10 and any("recommended" in line for line in quoted), quoted
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--db", str(tmp_path / "guide.duckdb"), "--data", str(data)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    printed = done.stdout.splitlines()
    for line in quoted:
        assert line in printed, f"the guide quotes {line!r}; the command printed:\n{done.stdout}"


def test_the_interval_width_table_is_what_the_script_computes():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        from calibration_guide import half_widths, widths_markdown
    finally:
        sys.path.remove(str(SCRIPT.parent))
    table = widths_markdown(half_widths())
    assert table in section("## How many labels for what interval width")
    # the normal approximation, checked by hand at one cell: 1.96 * sqrt(0.9 * 0.1 / 100)
    assert "| 0.9 | ±0.13 (" in table and "±0.06 (" in table.splitlines()[2]
