"""Sharing one store file between a run that writes it and people who look at it.

DuckDB lets one process open a file for writing, and while it has the file open no other
process may open it at all, not even to read. groundset makes that workable with three rules:

1. **One writer.** A writing process holds an exclusive advisory lock on ``FILE.lock`` for as
   long as its ``Store`` is open. A second writer fails at once with one line naming the file
   and the process that holds it (it never waits on DuckDB's lock and never corrupts anything).
2. **Readers ask, the writer yields.** A reader that finds the file taken leaves a request file
   ``FILE.read-PID`` and retries. The writer looks for requests at every batch boundary (after a
   commit, never inside a transaction); when there is one it closes its connection, waits until
   the readers are in, and reopens the file when it next needs it. Between batches the writer
   holds nothing that is not committed, so readers see every committed batch.
3. **Nobody waits forever.** Readers give up after ``GROUNDSET_READ_WAIT_S`` seconds (default
   60) with one line; requests left by a killed reader are ignored once their process is gone.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import duckdb

from groundset.core.errors import StoreError

__all__ = [
    "WriterLock",
    "connect",
    "process_alive",
    "readers_waiting",
    "set_notify",
    "tell",
    "wait_for_readers",
]

POLL_S = 0.05
Notify = Callable[[str], None]
_notify: Notify | None = None


def set_notify(notify: Notify | None) -> None:
    """Where "waiting for FILE" goes when a caller gives no ``notify`` (the CLI: stderr)."""
    global _notify
    _notify = notify


def tell(message: str, notify: Notify | None = None) -> None:
    """Say something about the store to the user: to ``notify``, else where ``set_notify``
    points (the CLI: stderr); nowhere for a library caller that set neither."""
    target = notify or _notify
    if target is not None:
        target(message)


def read_wait_s() -> float:
    try:
        return float(os.environ.get("GROUNDSET_READ_WAIT_S", "60"))
    except ValueError:
        return 60.0


def _is_lock_error(error: Exception) -> bool:
    """Another process holds the file (worth waiting for). A lock held by this very process
    is a connection left open, and waiting would never end."""
    text = str(error)
    return (
        isinstance(error, duckdb.IOException)
        and "lock" in text.lower()
        and f"(PID {os.getpid()})" not in text
    )


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


class WriterLock:
    """The exclusive ``FILE.lock`` of the one process allowed to write ``FILE``."""

    def __init__(self, path: Path) -> None:
        self.path = path.with_name(path.name + ".lock")
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        try:
            import fcntl
        except ImportError:  # not POSIX: DuckDB's own lock still keeps writers apart
            return
        store = self.path.with_name(self.path.name.removesuffix(".lock"))
        try:
            handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 (held while writing)
        except OSError as error:
            raise StoreError(f"cannot open store {store}: {error.strerror}") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise StoreError(
                f"store {store} is being written by another groundset process ({holder}):"
                " wait for it to finish, or give this one another --db"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing the descriptor drops the flock
            self._handle = None


def _requests(path: Path) -> list[Path]:
    return list(path.parent.glob(f"{path.name}.read-*"))


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def readers_waiting(path: Path) -> bool:
    """Is a live reader asking for ``path``? Requests of dead processes are removed."""
    waiting = False
    for request in _requests(path):
        try:
            pid = int(request.name.rsplit("-", 1)[1])
        except ValueError:
            continue
        if process_alive(pid):
            waiting = True
        else:
            with contextlib.suppress(OSError):
                request.unlink()
    return waiting


def wait_for_readers(path: Path, limit_s: float = 5.0) -> None:
    """After the writer let go: give waiting readers up to ``limit_s`` to get in (a reader
    removes its request once it has the file)."""
    deadline = time.monotonic() + limit_s
    while readers_waiting(path) and time.monotonic() < deadline:
        time.sleep(POLL_S)


@contextlib.contextmanager
def _read_request(path: Path) -> Iterator[None]:
    wanted = path.with_name(f"{path.name}.read-{os.getpid()}")
    request: Path | None = wanted
    try:
        wanted.touch()
    except OSError:
        request = None  # a read-only folder: just retry, the writer yields at least when idle
    try:
        yield
    finally:
        if request is not None:
            with contextlib.suppress(OSError):
                request.unlink()


def connect(
    path: Path, read_only: bool, notify: Notify | None = None, ask: bool | None = None
) -> duckdb.DuckDBPyConnection:
    """Open ``path``, waiting while another process has it: a reader (and, with ``ask``, a
    guest that writes a few rows between the writer's batches) asks the writer to yield and
    waits up to ``GROUNDSET_READ_WAIT_S``; the writer waits for readers to finish."""
    asking = read_only if ask is None else ask
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.Error as error:
        if not _is_lock_error(error):
            raise StoreError(f"cannot open store {path}: {_first_line(error)}") from None
    notify = notify or _notify
    started = time.monotonic()
    limit = read_wait_s() if asking else max(read_wait_s(), 600.0)
    told = False
    with _read_request(path) if asking else contextlib.nullcontext():
        while True:
            time.sleep(POLL_S)
            try:
                return duckdb.connect(str(path), read_only=read_only)
            except duckdb.Error as error:
                if not _is_lock_error(error):
                    raise StoreError(f"cannot open store {path}: {_first_line(error)}") from None
            waited = time.monotonic() - started
            if notify is not None and not told and waited > 1.0:
                notify(f"waiting for {path}: another process has it open")
                told = True
            if waited > limit:
                raise StoreError(
                    f"store {path} is in use by another process (waited {waited:.0f} s): try"
                    " again when it finishes, or raise GROUNDSET_READ_WAIT_S"
                )
