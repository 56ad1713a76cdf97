"""Labels from the review page reach the store even while a run writes it, and are never lost.

A label is appended to a journal beside the store (``FILE.review-PID.jsonl``, flushed to disk)
before the page hears "saved"; a background thread then records the journal in the store as a
guest writer, which asks the run to yield between its batches as a reader does
(docs/reliability.md, "Two processes, one file"). When the store stays busy the labels wait in
the journal and the thread tries again. A journal left by a page that died is replayed by the next
``groundset review`` on that store; every label carries a unique ``origin``, so one that reached
the store before its journal was emptied is not recorded twice."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from groundset.core.errors import StoreError
from groundset.core.sharing import process_alive, tell
from groundset.core.store import Store

__all__ = ["LabelJournal"]

RETRY_S = 2.0


class LabelJournal:
    """Pending label events (``add`` a row, ``remove`` an origin) on disk and in memory, and the
    thread that records them. ``store_lock`` serialises this process's use of the file."""

    def __init__(self, db: Path, store_lock: threading.Lock) -> None:
        self.db = db
        self.path = db.with_name(f"{db.name}.review-{os.getpid()}.jsonl")
        self.store_lock = store_lock
        self.pending: list[dict[str, Any]] = []
        self.recorded = 0
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._adopt_orphans()

    # --- events ---------------------------------------------------------------------------

    def add(self, row: dict[str, Any]) -> None:
        self._append({"op": "add", "row": row})

    def remove(self, origin: str) -> bool:
        """Take back a label: dropped here if it has not reached the store, else removed there
        at the next flush. False when it had already been recorded (the removal is queued)."""
        with self._lock:
            for i, event in enumerate(self.pending):
                if event["op"] == "add" and event["row"]["origin"] == origin:
                    del self.pending[i]
                    self._rewrite()
                    return True
        self._append({"op": "remove", "origin": origin})
        return False

    def _append(self, event: dict[str, Any]) -> None:
        with self._lock:
            self.pending.append(event)
            with open(self.path, "a", encoding="utf-8") as journal:
                journal.write(json.dumps(event, default=str) + "\n")
                journal.flush()
                os.fsync(journal.fileno())
        self._wake.set()

    def _rewrite(self) -> None:
        if not self.pending:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            return
        temporary = self.path.with_name(self.path.name + ".tmp")
        with open(temporary, "w", encoding="utf-8") as journal:
            journal.writelines(json.dumps(e, default=str) + "\n" for e in self.pending)
            journal.flush()
            os.fsync(journal.fileno())
        temporary.replace(self.path)

    def _adopt_orphans(self) -> None:
        """Journals of review pages that are gone: their labels become this page's to record."""
        for journal in sorted(self.db.parent.glob(f"{self.db.name}.review-*.jsonl")):
            pid = journal.stem.rsplit("-", 1)[-1]
            if pid.isdigit() and int(pid) != os.getpid() and process_alive(int(pid)):
                continue
            lines = journal.read_text(encoding="utf-8").splitlines()
            self.pending += [json.loads(line) for line in lines if line.strip()]
            if journal != self.path:
                journal.unlink()
        if self.pending:
            with self._lock:
                self._rewrite()

    # --- recording --------------------------------------------------------------------------

    def flush(self) -> bool:
        """Record what is pending; True when nothing is left. A busy store leaves it pending."""
        with self._lock:
            events = list(self.pending)
        if not events:
            return True
        adds = [e["row"] for e in events if e["op"] == "add"]
        removals = [e["origin"] for e in events if e["op"] == "remove"]
        try:
            with self.store_lock, Store(self.db, guest=True, upgrade=False) as store:
                self.recorded += store.record_labels(adds, once=True)
                for origin in removals:
                    store.remove_label(origin)
        except StoreError as error:
            self.last_error = str(error)
            return False
        self.last_error = None
        with self._lock:
            self.pending = self.pending[len(events) :]
            self._rewrite()
        return not self.pending

    def start(self, notify: Callable[[str], None] | None = None) -> None:
        def loop() -> None:
            while not self._stop.is_set():
                self._wake.wait(RETRY_S)
                self._wake.clear()
                if not self.flush() and self.last_error:
                    tell(f"labels wait in {self.path.name}: {self.last_error}", notify)

        self._thread = threading.Thread(target=loop, name="label-journal", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and record what is left; what cannot be recorded stays in the
        journal for the next ``groundset review`` on this store."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()
