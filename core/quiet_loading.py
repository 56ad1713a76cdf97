"""Loading Hugging Face models without their own progress bars.

transformers draws a "Loading weights" bar for every model it loads. groundset loads its models
while its own bars are on screen (the embedder of a validator loads on the first batch, under the
"generating" bar), so those bars would break into groundset's and leave half-drawn lines in logs.
groundset already says what it is loading, so the library's bars are switched off for the
duration of a load, then restored to what they were.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["quiet_loading"]

_LOCK = threading.Lock()
_active = 0  # loads in progress; the bars come back when the last one ends
_restore = False  # whether the bars were on before the first of them


@contextmanager
def quiet_loading() -> Iterator[None]:
    """Switch transformers' progress bars off while the block runs (safe across threads)."""
    global _active, _restore
    from transformers.utils import logging as hf_logging

    with _LOCK:
        if _active == 0:
            _restore = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()
        _active += 1
    try:
        yield
    finally:
        with _LOCK:
            _active -= 1
            if _active == 0 and _restore:
                hf_logging.enable_progress_bar()
