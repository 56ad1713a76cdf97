"""Document-level training pairs from ``../shared/data/grounding``: news summaries, dialogue
responses, claims from ChatGPT answers, scientific claims, each labelled supported or not
against a document that is usually longer than the model's window.

Each row becomes one pair: the claim as the hypothesis, and as the premise the document's
sentences most relevant to the claim within the token budget, in their original order
(``data.select_evidence``, as for WiCE), the whole document when it fits. Supported is
entailment; not supported is neutral, as WiCE's "not supported" is: the sets mix contradicted
claims with claims the document merely does not back, and calling the second a contradiction
would teach the model that missing information contradicts.

Only ``*_train`` files feed training and only ``*_dev`` files selection; ``*_test`` files are
never read here (``training.grounding.held_out`` reports on them). The sources without a train
file (FRANK, BEGIN, FEVER) contribute to selection only.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from training.nli.data import Example, TokenCounter, premise_budget, select_evidence


def default_grounding_dir(nli_dir: Path) -> Path:
    """``grounding/`` beside the NLI data folder."""
    return nli_dir.parent / "grounding"


def grounding_examples(
    folder: Path, split: str, max_length: int, count: TokenCounter
) -> list[Example]:
    """Every row of the ``*_{split}`` files as a (premise, claim, label) pair."""
    if split == "test":
        raise ValueError("grounding test files are held out: never read them for training")
    from groundset.validators.sentences import split_sentences

    examples = []
    for path in sorted(folder.glob(f"*_{split}.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            for line in lines:
                row = json.loads(line)
                claim = row["claim"].strip()
                budget = premise_budget(claim, max_length, count)
                premise = select_evidence(split_sentences(row["document"]), claim, budget, count)
                label = "entailment" if int(row["label"]) == 1 else "neutral"
                source = f"grounding_{row['source']}"
                group = row.get("origin", "")
                examples.append(Example(premise, claim, label, source, group))
    return examples
