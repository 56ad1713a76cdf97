"""Phase marks for crash testing: with ``GROUNDSET_PHASE_LOG=FILE`` set, the engine, the store
and exports append ``PID PHASE DETAIL`` lines to FILE as they enter each phase (generate,
validate, commit, committed, export, exported), so a soak test can SIGKILL a process at a
chosen moment, for example inside a batch's open transaction. ``GROUNDSET_PHASE_PAUSE_S``
makes each mark wait that long, widening the window. Unset, a mark costs one dict lookup."""

from __future__ import annotations

import os
import time

__all__ = ["mark"]


def mark(phase: str, detail: object = "") -> None:
    path = os.environ.get("GROUNDSET_PHASE_LOG")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as log:
        log.write(f"{os.getpid()} {phase} {detail}\n")
    pause = float(os.environ.get("GROUNDSET_PHASE_PAUSE_S", "0") or 0)
    if pause:
        time.sleep(pause)
