"""`groundset review`: labels made in a real browser with keys and clicks land in `labels`, with
their sampling weights; requests without the token are refused; labels survive a store that a
writer holds, and a page that dies."""

from __future__ import annotations

import signal
import time

import duckdb
import pytest

from groundset.core.store import Store
from tests.review_helpers import review_server, scored_store


def labels(db) -> list[tuple]:
    with Store(db, read_only=True) as store:
        return store.query(
            "SELECT candidate_id, value, labeller, source, note, weight, sampling FROM labels"
            " ORDER BY seq"
        ).rows


def hold(db) -> duckdb.DuckDBPyConnection:
    """Open the store for writing once the page is not reading it (it reads ahead)."""
    deadline = time.monotonic() + 20
    while True:
        try:
            return duckdb.connect(str(db))
        except duckdb.IOException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.fixture(scope="module")
def store_file(tmp_path_factory):
    return scored_store(tmp_path_factory.mktemp("review"))


@pytest.fixture
def db(store_file, tmp_path):
    copy = tmp_path / "s.duckdb"
    copy.write_bytes(store_file.read_bytes())
    return copy


def test_a_reviewer_labels_with_keys_and_clicks_in_chromium(requires_chromium, db):
    chromium = requires_chromium()  # a skip without Chromium, a failure in CI (conftest.py)
    from playwright.sync_api import sync_playwright

    with review_server(db, "--labeller", "ann") as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(server.url)
        page.wait_for_selector("body[data-ready='1']")

        def shown() -> str:
            return page.get_attribute("body", "data-candidate") or ""

        def after(action) -> str:
            before = shown()
            action()
            page.wait_for_function(f"document.body.dataset.candidate !== {before!r}")
            return before

        # the evidence: scores against thresholds, and the words the answer shares marked
        assert page.locator("#scores tr[data-metric='overlap.token_precision']").count() == 1
        assert page.locator("#document mark.shared").count() >= 1
        good = after(lambda: page.keyboard.press("g"))
        bad = after(lambda: page.click("#bad"))
        skipped = after(lambda: page.keyboard.press("s"))
        page.keyboard.press("u")  # takes back the bad label and shows that candidate again
        page.wait_for_function(f"document.body.dataset.candidate === {bad!r}")
        page.keyboard.press("n")
        page.keyboard.type("copies the document")
        page.keyboard.press("Escape")
        after(lambda: page.click("#good"))
        page.wait_for_selector("#progress:has-text('labelled 2')")
        assert page.locator("#precision").inner_text().startswith("accepted set")
        browser.close()
        assert not errors
        printed = server.stop()
    assert "recorded 2 labels" in printed and "interrupted" not in printed
    assert server.process.returncode == 0  # Ctrl-C is how a sitting ends
    rows = labels(db)
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in rows] == [
        (good, 1, "ann", "review", None),
        (bad, 1, "ann", "review", "copies the document"),
    ]
    assert skipped not in {r[0] for r in rows}
    # drawn by the stratified phase, each with the weight its stratum gives it
    assert all(r[6] == "stratified" and r[5] > 0 for r in rows)


def test_requests_without_the_token_are_refused_and_record_nothing(db):
    with review_server(db) as server:
        shown = server.api("/api/next").json()["candidate"]["candidate_id"]
        attempt = {"candidate_id": shown, "value": 1}
        for token in (None, "wrong"):
            assert server.api("/api/next", token=token).status_code == 403
            refused = server.api("/api/label", attempt, token=token)
            assert refused.status_code == 403 and "token" in refused.json()["error"]
        import httpx

        page = httpx.get(server.base + "/", timeout=30)
        assert page.status_code == 403
        rebound = httpx.get(server.url, headers={"Host": "attacker.example"}, timeout=30)
        assert rebound.status_code == 400  # another name for this address: DNS rebinding
        assert server.api("/api/label", {"candidate_id": "nope", "value": 1}).status_code == 409
        assert server.api("/api/label", {"candidate_id": shown, "value": 3}).status_code == 400
        server.stop()
    assert labels(db) == []


def test_labels_wait_for_a_writer_and_a_dead_page_loses_none(db):
    with review_server(db, "--labeller", "bo", GROUNDSET_READ_WAIT_S="1") as server:
        first = server.api("/api/next").json()["candidate"]["candidate_id"]
        holder = hold(db)  # a writer that never yields, unlike groundset run
        try:
            saved = server.api("/api/label", {"candidate_id": first, "value": 0}).json()
            assert saved["progress"]["pending"] == 1  # kept in the journal, not yet recorded
            deadline = time.monotonic() + 15
            while not server.api("/api/progress").json()["store_busy"]:
                assert time.monotonic() < deadline, "the page never said the store is busy"
                time.sleep(0.2)
        finally:
            holder.close()
        deadline = time.monotonic() + 30
        while server.api("/api/progress").json()["pending"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [r[0] for r in labels(db)] == [first]
        # a label the page never got to record: the journal keeps it for the next page
        second = server.api("/api/next").json()["candidate"]["candidate_id"]
        holder = hold(db)
        waiting = server.api("/api/label", {"candidate_id": second, "value": 1}).json()
        assert waiting["progress"]["pending"] == 1
        # read ahead before the writer came: the next candidate shows all the same
        assert waiting["candidate"]["candidate_id"] not in (first, second)
        server.stop(signal.SIGKILL)
        holder.close()
    journals = list(db.parent.glob("s.duckdb.review-*.jsonl"))
    assert len(journals) == 1
    with review_server(db) as server:
        deadline = time.monotonic() + 30
        while len(labels(db)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        server.stop()
    assert [(r[0], r[1], r[2]) for r in labels(db)] == [(first, 0, "bo"), (second, 1, "bo")]
    assert not list(db.parent.glob("s.duckdb.review-*.jsonl"))


def test_the_chunk_that_decided_a_claim_is_marked_across_line_breaks():
    from groundset.core.review.evidence import _marks, locate
    from groundset.validators.chunks import document_chunks

    document = "The plant opened in 1998.\n\nIt employs 300 people.\nOutput rose 4 percent."
    (chunk,) = document_chunks(document, 64)  # one chunk: the sentences joined by spaces
    assert chunk not in document  # the document breaks lines where the chunk has spaces
    start, end = locate(document, chunk) or (0, 0)
    assert document[start:end].split() == chunk.split() and start == 0
    details = {"grounding_nli": {"claims": [{"claim": "c", "window": chunk, "score": 0.5}]}}
    (mark,) = [m for m in _marks(document, "", details) if m["kind"] == "nli"]
    assert (mark["start"], mark["end"]) == (0, len(document))
    # grounding_nli reads the title first: a first chunk holding it is marked from the text on
    titled = document_chunks(f"Plant news\n\n{document}", 64)[0]
    details = {"grounding_nli": {"claims": [{"claim": "c", "window": titled, "score": 0.5}]}}
    (mark,) = [m for m in _marks(document, "", details, "Plant news") if m["kind"] == "nli"]
    assert (mark["start"], mark["end"]) == (0, len(document))
    assert locate(document, "A sentence it does not hold.") is None
    assert locate(document, " ") is None
