"""One reviewer's sitting: the queue, the candidate on the page, what can be undone, and the
progress the page shows (labels so far, and the estimated precision of the accepted set).

Every read of the store opens it read-only for that request and closes it again, so a run on the
same file is held up for one query at a time, never for the sitting."""

from __future__ import annotations

import contextlib
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from groundset.core.calibration import majority_labels
from groundset.core.errors import InputError, StoreError
from groundset.core.intervals import weighted_share
from groundset.core.review.evidence import candidate_view
from groundset.core.review.journal import LabelJournal
from groundset.core.review.queue import Draw, ReviewQueue, load_pool
from groundset.core.rows import label_row
from groundset.core.store import Store

__all__ = ["ReviewSession"]


@dataclass(frozen=True)
class _Made:
    """A label this sitting made: what undo takes back."""

    origin: str
    draw: Draw


class ReviewSession:
    """The state behind the review page. Thread-safe: the web server calls it from its workers."""

    def __init__(
        self,
        db: Path,
        run_refs: list[str],
        aspect: str,
        labeller: str,
        seed: int = 0,
        stratified: int | None = None,
    ) -> None:
        self.db = db
        self.aspect = aspect
        self.labeller = labeller
        self.store_lock = threading.Lock()
        self._lock = threading.RLock()
        with Store(db, read_only=True) as store:
            refs = run_refs or ["latest"]
            self.run_ids = list(dict.fromkeys(store.resolve_run(ref) for ref in refs))
            names = store.query(
                "SELECT coalesce(name, run_id) FROM runs WHERE list_contains(?, run_id)",
                [self.run_ids],
            ).rows
            self.run_names = [name for (name,) in names]
            pool = load_pool(store, self.run_ids)
            # the same majority labels and weights calibrate reads; split ones are labelled too
            self.labels, self.ties = majority_labels(store, aspect, "run_id", self.run_ids)
        if not pool.ids:
            raise InputError(
                f"nothing to review: run(s) {', '.join(self.run_names)} have no parsed candidates"
            )
        self.pool = pool
        self.runs_of = dict(zip(pool.ids, pool.runs, strict=True))
        options = {} if stratified is None else {"stratified": stratified}
        self.queue = ReviewQueue(pool, set(self.labels) | self.ties, seed, **options)
        self.journal = LabelJournal(db, self.store_lock)
        self.current: Draw | None = None
        #: drawn, and its evidence read, while the reviewer reads the current one
        self.upcoming: Draw | None = None
        self._views: dict[str, dict[str, Any]] = {}
        self._reading: threading.Thread | None = None
        self.made: list[_Made] = []
        self.skipped = 0

    # --- what the page asks -------------------------------------------------------------------

    def next(self) -> dict[str, Any]:
        """The candidate on the page (drawn when there is none), with the progress."""
        with self._lock:
            if self.current is None:
                self.current, self.upcoming = self.upcoming or self._draw(), None
            draw = self.current
        view, busy = None, None
        if draw is not None:
            try:
                view = self._view(draw)
            except StoreError as error:  # a writer holds the file: the page asks again
                busy = str(error)
        self._read_ahead()
        progress = self.progress()
        progress["store_busy"] = progress["store_busy"] or busy
        return {"candidate": view, "progress": progress}

    def _draw(self) -> Draw | None:
        """The queue's next candidate, taken: it is not drawn again unless given back."""
        draw = self.queue.next()
        if draw is not None:
            self.queue.close(draw.candidate_id)
        return draw

    def _view(self, draw: Draw) -> dict[str, Any] | None:
        """The candidate's evidence: read ahead, or from the store now."""
        reading = self._reading
        mine = reading is threading.current_thread()
        if reading is not None and reading.name == draw.candidate_id and not mine:
            reading.join()  # being read ahead: wait for it rather than read it twice
        with self._lock:
            cached = self._views.get(draw.candidate_id)
        if cached is not None:
            return cached
        with self.store_lock, Store(self.db, read_only=True, upgrade=False) as store:
            view = candidate_view(store, draw.candidate_id)
        if view is not None:
            view["sampling"] = {"phase": draw.sampling, "weight": draw.weight}
            with self._lock:
                keep = {d.candidate_id for d in (self.current, self.upcoming) if d is not None}
                self._views = {k: v for k, v in self._views.items() if k in keep}
                if draw.candidate_id in keep:
                    self._views[draw.candidate_id] = view
        return view

    def _read_ahead(self) -> None:
        """Draw the candidate after this one and read its evidence in the background, so the
        page has it the moment a label is given (a store of a million candidates takes a few
        hundred milliseconds to read one candidate's scores)."""
        with self._lock:
            if self.upcoming is not None or (self._reading and self._reading.is_alive()):
                return
            self.upcoming = self._draw()
            upcoming = self.upcoming
            if upcoming is None:
                return

            def read() -> None:
                with contextlib.suppress(StoreError):
                    self._view(upcoming)

            self._reading = threading.Thread(target=read, name=upcoming.candidate_id, daemon=True)
            self._reading.start()

    def label(self, candidate_id: str, value: int, note: str | None) -> dict[str, Any]:
        with self._lock:
            draw = self._current(candidate_id)
            origin = f"review:{uuid.uuid4().hex}"
            self.journal.add(
                label_row(
                    candidate_id,
                    self.runs_of[candidate_id],
                    value,
                    aspect=self.aspect,
                    labeller=self.labeller,
                    source="review",
                    origin=origin,
                    note=note or None,
                    weight=draw.weight,
                    sampling=draw.sampling,
                )
            )
            self.labels[candidate_id] = value
            self.labels.weights[candidate_id] = draw.weight
            self.made.append(_Made(origin, draw))
            self.current = None
        return self.next()

    def skip(self, candidate_id: str) -> dict[str, Any]:
        with self._lock:
            self._current(candidate_id)
            self.skipped += 1
            self.current = None
        return self.next()

    def undo(self) -> dict[str, Any]:
        """Take back this sitting's last label and show its candidate again."""
        with self._lock:
            if not self.made:
                raise InputError("nothing to undo: no label made on this page yet")
            made = self.made.pop()
            self.journal.remove(made.origin)
            self.labels.pop(made.draw.candidate_id, None)
            self.labels.weights.pop(made.draw.candidate_id, None)
            if self.current is not None:  # shown but not labelled: back to the queue
                self.queue.reopen(self.current.candidate_id)
            self.current = made.draw
        return self.next()

    def progress(self) -> dict[str, Any]:
        import numpy as np

        with self._lock:
            accepted = [
                (value, self.labels.weight(cid))
                for cid, value in self.labels.items()
                if cid in self.pool.index and self.pool.accepted[self.pool.index[cid]]
            ]
            labelled = len(self.labels) + len(self.ties)
            made, pending = len(self.made), len(self.journal.pending)
        precision = None
        if accepted:
            y, w = (np.array(column, dtype=float) for column in zip(*accepted, strict=True))
            estimate = weighted_share(y, w, population=int(self.pool.accepted.sum()))
            precision = {"value": estimate.value, "low": estimate.low, "high": estimate.high}
        return {
            "runs": self.run_names,
            "aspect": self.aspect,
            "labeller": self.labeller,
            "labelled": labelled,
            "this_sitting": made,
            "skipped": self.skipped,
            "pending": pending,
            "store_busy": self.journal.last_error,
            "remaining": self.queue.remaining,
            "candidates": len(self.pool.ids),
            "accepted_candidates": int(self.pool.accepted.sum()),
            "accepted_labelled": len(accepted),
            "accepted_precision": precision,
        }

    def _current(self, candidate_id: str) -> Draw:
        if self.current is None or self.current.candidate_id != candidate_id:
            raise InputError(f"candidate {candidate_id} is not the one on the page: reload it")
        return self.current

    def start(self) -> None:
        self.journal.start()

    def stop(self) -> None:
        self.journal.stop()
