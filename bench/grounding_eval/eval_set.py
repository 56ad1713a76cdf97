"""The grounding evaluation set: its documents and items (``documents.jsonl`` and
``items.jsonl`` next to this file), and the candidates a run would record for them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from groundset.core import Candidate, Document

HERE = Path(__file__).resolve().parent
SPLITS = ("dev", "test")
KINDS = (
    "correct",
    "partial_paraphrase",
    "fact_changed",
    "unsupported_addition",
    "other_document",
    "unrelated",
)
#: Short column names of the kinds in the tables.
KIND_COLUMNS = {
    "correct": "correct",
    "partial_paraphrase": "paraph",
    "fact_changed": "fact",
    "unsupported_addition": "addit",
    "other_document": "otherdoc",
    "unrelated": "unrel",
}
RUN_ID = "grounding-eval"


@dataclass(frozen=True)
class Item:
    """One question/answer pair to score, with its gold label (1 = grounded and correct)."""

    id: str
    document_id: str
    question: str
    answer: str
    kind: str
    label: int
    split: str


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def load_set(folder: Path) -> tuple[dict[str, Document], list[Item]]:
    """The documents (by set id) and the items of the evaluation set."""
    documents = {
        row["id"]: Document(text=row["text"], title=row.get("title"), source=row.get("source"))
        for row in read_jsonl(folder / "documents.jsonl")
    }
    items = [
        Item(
            id=row["id"],
            document_id=row["document_id"],
            question=row["question"],
            answer=row["answer"],
            kind=row["kind"],
            label=int(row["label"]),
            split=row["split"],
        )
        for row in read_jsonl(folder / "items.jsonl")
    ]
    unknown = sorted({item.document_id for item in items} - set(documents))
    if unknown:
        raise SystemExit(f"items name unknown documents: {', '.join(unknown[:5])}")
    return documents, items


def build_candidates(items: Sequence[Item], documents: dict[str, Document]) -> list[Candidate]:
    """Candidates as a run would record them: fields question and answer, and the document."""
    return [
        Candidate(
            candidate_id=item.id,
            run_id=RUN_ID,
            work_id=item.id,
            document=documents[item.document_id],
            fields={"question": item.question, "answer": item.answer},
            raw_output=f"[question]: {item.question}\n[answer]: {item.answer}",
        )
        for item in items
    ]
