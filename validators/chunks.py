"""Documents cut into chunks that fit the NLI model beside a claim.

A claim about a long document often rests on two or three neighbouring sentences ("She joined
in 2019. Two years later she led the team."), which a single-sentence window never shows the
model together; the whole document does not fit. Chunks of whole sentences, up to a token
budget, each starting a sentence or more before the previous one ended, give every claim a
window holding its evidence, as MiniCheck and AlignScore do. A claim counts as supported by its
best chunk.

Tokens are estimated, not counted: the model's tokenizer truncates anyway, and an estimate
keeps chunking free of the model, so it is the same on every backend.
"""

from __future__ import annotations

import functools
import re

from groundset.validators.sentences import split_sentences

__all__ = ["chunk_sentences", "estimate_tokens"]

_PIECES = re.compile(r"\w+|[^\w\s]")


def estimate_tokens(text: str) -> int:
    """About how many WordPiece tokens ``text`` takes: a word or a punctuation mark is one,
    and a long word more (WordPiece splits rare words into pieces of about 4 letters)."""
    return sum(1 + max(0, len(piece) - 6) // 4 for piece in _PIECES.findall(text))


def chunk_sentences(sentences: tuple[str, ...], budget: int, overlap: int = 1) -> tuple[str, ...]:
    """Runs of consecutive ``sentences`` of at most ``budget`` estimated tokens (a longer
    sentence is a chunk alone), each after the first starting ``overlap`` sentences before the
    previous one ended. A document within the budget is one chunk."""
    if not sentences:
        return ()
    sizes = [estimate_tokens(s) for s in sentences]
    chunks: list[str] = []
    start = 0
    while start < len(sentences):
        end, used = start + 1, sizes[start]
        while end < len(sentences) and used + sizes[end] <= budget:
            used += sizes[end]
            end += 1
        chunks.append(" ".join(sentences[start:end]))
        if end >= len(sentences):
            break
        start = max(start + 1, end - overlap)
    return tuple(dict.fromkeys(chunks))


@functools.lru_cache(maxsize=4096)
def document_chunks(text: str, budget: int, overlap: int = 1) -> tuple[str, ...]:
    """``chunk_sentences`` of a document's text, cached: one document serves many candidates."""
    return chunk_sentences(tuple(split_sentences(text)), budget, overlap)
