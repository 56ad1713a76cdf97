"""Model loads draw no library progress bars over groundset's own, and restore the setting."""

from __future__ import annotations

import threading

import pytest

from groundset.core.quiet_loading import quiet_loading

transformers = pytest.importorskip("transformers")
hf_logging = transformers.utils.logging


def _load_minilm() -> None:
    from groundset.validators.models import default_embedding_path

    transformers.AutoModel.from_pretrained(default_embedding_path())


def test_a_load_draws_its_bar_without_it_and_none_inside_it(capfd):
    _load_minilm()
    assert "Loading weights" in capfd.readouterr().err  # what the block has to silence

    with quiet_loading():
        _load_minilm()
    assert "Loading weights" not in capfd.readouterr().err
    assert hf_logging.is_progress_bar_enabled()


def test_a_user_who_switched_the_bars_off_keeps_them_off():
    hf_logging.disable_progress_bar()
    try:
        with quiet_loading():
            pass
        assert not hf_logging.is_progress_bar_enabled()
    finally:
        hf_logging.enable_progress_bar()


def test_the_bars_stay_off_until_the_last_of_overlapping_loads_ends():
    first_inside, second_done = threading.Event(), threading.Event()
    seen: list[bool] = []

    def first() -> None:
        with quiet_loading():
            first_inside.set()
            second_done.wait(10)
            seen.append(hf_logging.is_progress_bar_enabled())

    worker = threading.Thread(target=first)
    worker.start()
    first_inside.wait(10)
    with quiet_loading():
        pass
    second_done.set()
    worker.join(10)
    assert seen == [False]  # the second load ending did not switch them back on under the first
    assert hf_logging.is_progress_bar_enabled()
