"""Validity check of the grounding evaluation set (documents.jsonl and items.jsonl).

Checks that ids are unique, every item names an existing document and carries that document's
split, labels follow kinds, every question has each answer kind exactly once, and that each
variant is what its kind claims: a ``fact_changed`` answer differs from the correct one in a few
tokens (or is the same words with two facts swapped), an ``unsupported_addition`` extends the
correct answer, an ``other_document`` answer is the correct answer of another document's
question. Prints counts per kind and split; exits 1 when a check fails.

    python bench/grounding_eval/check_set.py
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
KINDS = (
    "correct",
    "fact_changed",
    "other_document",
    "unrelated",
    "unsupported_addition",
    "partial_paraphrase",
)
POSITIVE_KINDS = frozenset({"correct", "partial_paraphrase"})
SPLITS = ("dev", "test")
#: A fact_changed answer may replace at most this many tokens of the correct answer ...
MAX_CHANGED_TOKENS = 4
#: ... unless it keeps the same words and swaps two facts (then at most this many move).
MAX_SWAPPED_TOKENS = 10
#: Word counts of the documents written for this set (the seed documents are as published).
MIN_WORDS, MAX_WORDS = 80, 250
_TOKEN = re.compile(r"\w+")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file; errors name the file and line."""
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise SystemExit(f"{path}:{number}: {error}") from None
    return rows


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def changed_tokens(a: str, b: str) -> int:
    """Tokens replaced, inserted or deleted to turn ``a`` into ``b`` (difflib opcodes)."""
    matcher = difflib.SequenceMatcher(a=tokens(a), b=tokens(b), autojunk=False)
    return sum(
        max(i2 - i1, j2 - j1) for op, i1, i2, j1, j2 in matcher.get_opcodes() if op != "equal"
    )


def check_documents(documents: list[dict[str, Any]]) -> list[str]:
    errors = []
    ids = Counter(doc.get("id") for doc in documents)
    errors += [f"document id {i!r} appears {n} times" for i, n in ids.items() if n > 1]
    for doc in documents:
        where = f"document {doc.get('id')!r}"
        if not str(doc.get("text", "")).strip():
            errors.append(f"{where}: empty text")
        if doc.get("split") not in SPLITS:
            errors.append(f"{where}: split {doc.get('split')!r} not in {SPLITS}")
        words = len(str(doc.get("text", "")).split())
        if doc.get("source") == "groundset" and not MIN_WORDS <= words <= MAX_WORDS:
            errors.append(f"{where}: {words} words, want {MIN_WORDS}-{MAX_WORDS}")
    return errors


def check_item_fields(items: list[dict[str, Any]], documents: dict[str, dict]) -> list[str]:
    errors = []
    ids = Counter(item.get("id") for item in items)
    errors += [f"item id {i!r} appears {n} times" for i, n in ids.items() if n > 1]
    for item in items:
        where = f"item {item.get('id')!r}"
        doc = documents.get(item.get("document_id"))
        if doc is None:
            errors.append(f"{where}: unknown document {item.get('document_id')!r}")
        elif item.get("split") != doc.get("split"):
            errors.append(f"{where}: split {item.get('split')!r}, document's is {doc['split']!r}")
        if item.get("kind") not in KINDS:
            errors.append(f"{where}: unknown kind {item.get('kind')!r}")
        elif item.get("label") != int(item["kind"] in POSITIVE_KINDS):
            errors.append(f"{where}: label {item.get('label')!r} does not fit {item['kind']}")
        if not str(item.get("question", "")).strip() or not str(item.get("answer", "")).strip():
            errors.append(f"{where}: empty question or answer")
    return errors


def check_fact_changed(correct: str, changed: str, where: str) -> list[str]:
    if tokens(correct) == tokens(changed):
        return [f"{where}: fact_changed answer has the same tokens as the correct one"]
    if Counter(tokens(correct)) == Counter(tokens(changed)):  # two facts swapped
        limit, moved = MAX_SWAPPED_TOKENS, changed_tokens(correct, changed)
    else:
        limit, moved = MAX_CHANGED_TOKENS, changed_tokens(correct, changed)
    if moved > limit:
        return [f"{where}: fact_changed differs from correct in {moved} tokens (max {limit})"]
    return []


def check_question(qid: str, group: dict[str, dict], items_by_id: dict[str, dict]) -> list[str]:
    """The variants of one question against its correct answer."""
    missing = [kind for kind in KINDS if kind not in group]
    if missing:
        return [f"question {qid}: missing kinds {missing}"]
    errors = []
    correct = group["correct"]["answer"]
    if len({item["question"] for item in group.values()}) != 1:
        errors.append(f"question {qid}: variants ask different questions")
    errors += check_fact_changed(correct, group["fact_changed"]["answer"], f"question {qid}")
    addition = group["unsupported_addition"]["answer"]
    if not (addition.startswith(correct) and len(addition) > len(correct)):
        errors.append(f"question {qid}: unsupported_addition does not extend the correct answer")
    if tokens(group["partial_paraphrase"]["answer"]) == tokens(correct):
        errors.append(f"question {qid}: partial_paraphrase repeats the correct answer")
    other = group["other_document"]
    source = items_by_id.get(other.get("answer_from", ""))
    if source is None or source["kind"] != "correct" or source["answer"] != other["answer"]:
        errors.append(f"question {qid}: other_document is not another question's correct answer")
    elif source["document_id"] == other["document_id"]:
        errors.append(f"question {qid}: other_document answer comes from the same document")
    return errors


def check_items(items: list[dict[str, Any]], documents: dict[str, dict]) -> list[str]:
    errors = check_item_fields(items, documents)
    groups: dict[str, dict[str, dict]] = defaultdict(dict)
    for item in items:
        qid = item.get("question_id", item.get("id", ""))
        if item.get("kind") in groups[qid]:
            errors.append(f"question {qid}: kind {item['kind']} appears twice")
        groups[qid][item.get("kind")] = item
    items_by_id = {item.get("id"): item for item in items}
    for qid, group in sorted(groups.items()):
        errors += check_question(qid, group, items_by_id)
    return errors


def summary(documents: list[dict[str, Any]], items: list[dict[str, Any]]) -> str:
    """Counts per split: documents, questions, items per kind, positives."""
    lines = [f"{'':22}" + "".join(f"{s:>8}" for s in SPLITS) + f"{'all':>8}"]

    def row(name: str, values: list[int]) -> None:
        lines.append(f"{name:22}" + "".join(f"{v:>8}" for v in values) + f"{sum(values):>8}")

    row("documents", [sum(d["split"] == s for d in documents) for s in SPLITS])
    row("questions", [len({i["question_id"] for i in items if i["split"] == s}) for s in SPLITS])
    for kind in KINDS:
        counts = [sum(i["split"] == s and i["kind"] == kind for i in items) for s in SPLITS]
        row(f"  {kind}", counts)
    row("items", [sum(i["split"] == s for i in items) for s in SPLITS])
    row("  label 1", [sum(i["split"] == s and i["label"] == 1 for i in items) for s in SPLITS])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=HERE, help="folder with the two files")
    args = parser.parse_args(argv)
    documents = read_jsonl(args.data / "documents.jsonl")
    items = read_jsonl(args.data / "items.jsonl")
    errors = check_documents(documents)
    errors += check_items(items, {doc["id"]: doc for doc in documents})
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    if not errors:
        print(summary(documents, items))
        print("ok: all checks passed")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
