"""What the review page shows for one candidate: its document with the evidence each validator
used marked, its parsed fields, and every score against its threshold. A reviewer who sees which
passage the grounding model leaned on, and which words the answer shares with the document,
judges in seconds what would otherwise take reading the whole document."""

from __future__ import annotations

import json
import re
from typing import Any

from groundset.core.store import Store

__all__ = ["candidate_view", "shared_spans"]

_WORD = re.compile(r"\w+")
#: an answer's run of at least this many words found in the document is marked as shared
SHARED_WORDS = 3

CANDIDATE_SQL = """
SELECT c.candidate_id, c.run_id, r.name, c.fields, c.raw_output, d.title, d.text
FROM candidates c JOIN runs r USING (run_id) LEFT JOIN documents d USING (document_id)
WHERE c.candidate_id = ?
"""
SCORES_SQL = """
SELECT s.validator, s.metric, s.value, m.default_threshold, m.higher_is_better, m.description
FROM latest_scores s LEFT JOIN metrics m USING (validator, metric)
WHERE s.candidate_id = ? ORDER BY s.validator, s.metric
"""
DETAILS_SQL = """
SELECT validator, details FROM score_details WHERE candidate_id = ?
QUALIFY row_number() OVER (PARTITION BY validator ORDER BY created_at DESC) = 1
"""


def candidate_view(store: Store, candidate_id: str) -> dict[str, Any] | None:
    """Everything the page needs to show ``candidate_id``, as JSON-ready values."""
    row = store.query(CANDIDATE_SQL, [candidate_id]).rows
    if not row:
        return None
    cid, run_id, run_name, fields, raw, title, text = row[0]
    fields = json.loads(fields) if fields else {}
    scores = [
        {
            "metric": f"{validator}.{metric}",
            "value": value,
            "threshold": threshold,
            "higher_is_better": bool(higher),
            "passes": None if threshold is None or value is None
            else (value >= threshold if higher else value <= threshold),
            "description": description,
        }
        for validator, metric, value, threshold, higher, description in store.query(
            SCORES_SQL, [candidate_id]
        ).rows
    ]  # fmt: skip
    details = {v: json.loads(d) for v, d in store.query(DETAILS_SQL, [candidate_id]).rows}
    document = text or ""
    answer = str(fields.get("answer") or fields.get("output") or raw or "")
    return {
        "candidate_id": cid,
        "run": run_name or run_id,
        "fields": {k: v for k, v in fields.items() if isinstance(v, str | int | float)},
        "title": title,
        "document": document,
        "scores": scores,
        "details": details,
        "marks": _marks(document, answer, details, title),
    }


def _marks(
    document: str, answer: str, details: dict[str, Any], title: str | None = None
) -> list[dict[str, Any]]:
    """Character ranges of the document to mark: the window that decided each answer claim
    (``nli``, with the claim, its entailment and its score), and the word runs the answer
    shares (``shared``).
    ``grounding_nli`` reads the title before the text, so a first chunk may begin with it; the
    page shows the title apart, and marks the rest of that chunk."""
    marks: list[dict[str, Any]] = []
    for claim in details.get("grounding_nli", {}).get("claims", []):
        window = str(claim.get("window", ""))
        if title and window.startswith(f"{title} ") and not document.startswith(title):
            window = window[len(title) + 1 :]
        found = locate(document, window)
        if found is not None:
            marks.append({
                "kind": "nli", "start": found[0], "end": found[1],
                "claim": claim.get("claim"), "score": claim.get("score"),
                "entailment": claim.get("entailment"),
            })  # fmt: skip
    marks += [{"kind": "shared", "start": s, "end": e} for s, e in shared_spans(document, answer)]
    return marks


def locate(document: str, window: str) -> tuple[int, int] | None:
    """Where ``window`` is in the document, as a character range. A chunk is whole sentences
    joined by single spaces, so where the document breaks a line or a paragraph between them
    the text differs in whitespace only: that is matched too."""
    if not window.strip():
        return None
    start = document.find(window)
    if start >= 0:
        return start, start + len(window)
    pattern = r"\s+".join(re.escape(piece) for piece in window.split())
    match = re.search(pattern, document)
    return (match.start(), match.end()) if match else None


def shared_spans(document: str, answer: str, words: int = SHARED_WORDS) -> list[tuple[int, int]]:
    """Character ranges of the document covered by a run of ``words`` words that the answer also
    contains (case-insensitive), merged where they touch."""
    doc = [(m.group().lower(), m.start(), m.end()) for m in _WORD.finditer(document)]
    said = [m.group().lower() for m in _WORD.finditer(answer)]
    grams = {tuple(said[i : i + words]) for i in range(len(said) - words + 1)}
    spans: list[tuple[int, int]] = []
    for i in range(len(doc) - words + 1):
        if tuple(w for w, _, _ in doc[i : i + words]) in grams:
            start, end = doc[i][1], doc[i + words - 1][2]
            if spans and start <= spans[-1][1] + 1:
                spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
            else:
                spans.append((start, end))
    return spans
