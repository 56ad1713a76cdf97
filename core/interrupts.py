"""Ctrl-C that loses nothing: the first SIGINT asks the work loop to stop after the batch in
flight is recorded; a second one interrupts at once (the open transaction rolls back, so what
was committed stays whole).

Only the commands that record work in batches (``run``, ``score``, ``validate``) install the
handler, and only while they work; everywhere else Ctrl-C stops at once as usual.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator

__all__ = ["StopRequested", "check_stop", "graceful_interrupts", "stop_requested"]

_STOP = threading.Event()
NOTICE = "stopping after the batch in flight is recorded (Ctrl-C again to stop at once)"


class StopRequested(KeyboardInterrupt):
    """Raised between batches after a first Ctrl-C; a KeyboardInterrupt, so every handler of an
    interrupted run treats both presses the same way."""


def stop_requested() -> bool:
    return _STOP.is_set()


def check_stop() -> None:
    """Call between batches: stops the loop there once Ctrl-C was pressed."""
    if _STOP.is_set():
        raise StopRequested()


@contextlib.contextmanager
def graceful_interrupts(notify: Callable[[str], None]) -> Iterator[None]:
    """Within the block, the first SIGINT only sets the stop flag (and ``notify``-s the user);
    the next one raises KeyboardInterrupt where the program is."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    previous = signal.getsignal(signal.SIGINT)

    def first_press(signum: int, frame: object) -> None:
        _STOP.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        notify(NOTICE)

    _STOP.clear()
    signal.signal(signal.SIGINT, first_press)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _STOP.clear()
