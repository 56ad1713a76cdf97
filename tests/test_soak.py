"""The crash soak, short: three SIGKILLs of real ``groundset`` processes (in a batch's
generation, validation, open transaction or export), each followed by the same command, end in
a store equal row for row to an uninterrupted run's. ``bench/soak.py --kills 20`` is the long
version."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
SOAK = Path(__file__).resolve().parent.parent / "bench" / "soak.py"


def test_three_kills_leave_the_store_equal_to_an_uninterrupted_run(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("soak", SOAK)
    soak = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(soak)
    out = tmp_path / "soak.json"
    code = soak.main(["--kills", "3", "--samples", "6", "--seed", "7", "--json", str(out)])
    result = json.loads(out.read_text())
    assert code == 0, result
    assert result["kills"] == 3
    assert result["identical"] and result["run_complete"] and result["export_identical"]
    assert result["check_ok"]
    assert result["repeated_batches"] <= result["kills"]
    assert result["rows"]["candidates"]["rows"] == 24
