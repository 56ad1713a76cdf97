"""The one batch loop of every command that records work batch by batch: ``run`` (local engine
and the Ray driver), ``validate`` and ``score``. Each batch is recorded in one transaction by the
caller's ``record``; this loop owns what happens between batches, the same for all of them:

- Ctrl-C: the first press stops after the batch in flight is committed, the second at once (the
  open transaction rolls back); what was committed stays. See ``core/interrupts.py``.
- Readers waiting on the store file get in between batches (``Store.between_batches``).
- A run the command owns ends ``interrupted`` (Ctrl-C) or ``failed`` (with the error), so
  ``groundset runs`` says how it ended; re-scoring a run leaves its status alone.

A failing validator is the other shared policy; it lives with the scoring, in
:class:`groundset.core.scoring.BatchScores`: recorded, skipped, and the batch goes on."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from groundset.core.errors import GroundsetError
from groundset.core.interrupts import check_stop
from groundset.core.store import Store

__all__ = ["record_batches", "run_status"]

Batch = TypeVar("Batch")
Report = TypeVar("Report")


@contextlib.contextmanager
def run_status(store: Store, run_id: str) -> Iterator[None]:
    """The run's status when its batches stop early: ``interrupted`` by Ctrl-C, ``failed``
    with the error otherwise."""
    try:
        yield
    except KeyboardInterrupt:
        store.try_set_run_status(run_id, "interrupted")
        raise
    except GroundsetError as error:
        store.try_set_run_status(run_id, "failed", str(error))
        raise
    except Exception as error:
        store.try_set_run_status(run_id, "failed", f"{type(error).__name__}: {error}")
        raise


def record_batches(
    store: Store,
    run_id: str,
    batches: Iterable[Batch],
    record: Callable[[Batch], Report],
    on_batch: Callable[[Report], None] | None = None,
    *,
    should_stop: Callable[[], bool] | None = None,
    owns_run: bool = True,
) -> None:
    """``record(batch)`` for each batch, then ``on_batch(report)``; stops after a batch on
    Ctrl-C or when ``should_stop()`` says so. ``owns_run``: the command created or resumed
    the run, so an early stop is written to its status. ``batches`` is closed on the way out,
    so a generator that holds threads or a cluster lets go of them at once."""
    status = run_status(store, run_id) if owns_run else contextlib.nullcontext()
    with status, contextlib.ExitStack() as stack:
        close = getattr(batches, "close", None)
        if close is not None:
            stack.callback(close)
        started = time.perf_counter()
        for batch in batches:
            report = record(batch)
            if on_batch is not None:
                on_batch(report)
            check_stop()
            if should_stop is not None and should_stop():
                break
            store.between_batches(time.perf_counter() - started)
            started = time.perf_counter()
