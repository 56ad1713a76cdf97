"""Which sentences of an answer are claims about the document.

An answer is more than its claims: "Based on the given passages, ..." introduces one, "I could
not find the year in the passages" declines to make one, "I hope this helps!" closes. Checked as
claims, such sentences are never entailed by the document, and with the least supported
sentence deciding, they sink answers whose every claim is grounded: on answers by six LLMs over
retrieved web passages, the worst sentence of about half the grounded answers was commentary of
this kind.

So a lead-in that only names the source is cut off and the rest checked; a sentence that only
abstains, refers to the passages, hedges or offers help is set aside with the reason, recorded
by the validator instead of scored. The patterns are deliberately narrow: a sentence is set
aside only when it says nothing checkable, never because it is uncertain in tone ("It may have
opened in 1998" still states a year).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["NOT_A_CLAIM", "Claim", "answer_claims", "not_a_claim", "strip_lead_in"]

_SOURCE = (
    r"(?:(?:the|these|this|those|given|provided|above|available|retrieved|following|supplied)\s+)*"
    r"(?:passages?|documents?|context|contexts|information|text|texts|article|articles|sources?"
    r"|excerpts?|search results|results|snippets?|knowledge|references?|materials?|data)"
)

#: a lead-in that only says where the answer comes from: cut off, the rest is the claim
_LEAD_IN = re.compile(
    r"^\s*(?:(?:based|drawing)\s+(?:solely\s+|only\s+|entirely\s+)?(?:on|upon)"
    r"|according\s+to|from|as\s+(?:stated|mentioned|described|noted)\s+in|in"
    r"|per|referring\s+to)\s+"
    + _SOURCE
    + r"(?:\s+(?:provided|given|above|below))?\s*[,:]\s*(?:it\s+(?:appears|seems)\s+that\s+)?",
    re.IGNORECASE,
)
_SAYS = re.compile(
    r"^\s*(?:the\s+|these\s+|this\s+)?(?:given\s+|provided\s+|retrieved\s+)?"
    r"(?:passages?|documents?|context|text|articles?|sources?|search\s+results|excerpts?)\s+"
    r"(?:says?|states?|mentions?|indicates?|suggests?|shows?|notes?|explains?|reports?"
    r"|confirms?)\s+that\s+",
    re.IGNORECASE,
)
_NOTE = re.compile(
    r"^\s*(?:(?:(?:it\s+is|it's)\s+(?:important|worth)\s+(?:to\s+)?not(?:e|ing)\s+that"
    r"|please\s+note\s+that|note\s+that)\s*,?\s+"
    # an interjection only when punctuation ends it: "No, the ..." but not "No information ..."
    r"|(?:in\s+summary|in\s+conclusion|to\s+summari[sz]e|overall|in\s+short|sure|certainly"
    r"|of\s+course|yes|no)\s*[,:!.]\s+)",
    re.IGNORECASE,
)

#: why a sentence says nothing checkable, with what shows it
NOT_A_CLAIM: dict[str, re.Pattern[str]] = {
    "abstention": re.compile(
        r"\b(?:i|we)\s+(?:(?:do|did|could|can|was|am|were)(?:\s+not|n't)|cannot|am\s+unable"
        r"|was\s+unable|were\s+unable|am\s+not\s+able|was\s+not\s+able)\s+"
        r"(?:to\s+)?(?:find|locate|see|determine|identify|answer|provide|confirm|verify|know"
        r"|tell|say|access|give)\b"
        r"|\b(?:there\s+is|there's|there\s+are)\s+no\s+(?:\w+\s+){0,3}"
        r"(?:information|mention|details?|data|evidence|indication|reference)\b"
        r"|\b(?:no|not\s+enough|insufficient)\s+(?:specific\s+|relevant\s+|further\s+)?"
        r"(?:information|details?|data|evidence)\s+(?:is|was|are|were|about|on|regarding)\b"
        r"|\b(?:is|are|was|were)\s+not\s+(?:\w+\s+)?(?:mentioned|specified|provided|stated"
        r"|given|discussed|addressed|included|available|clear)\s+(?:in|from|by)\s+"
        + _SOURCE
        + r"|\b"
        + _SOURCE
        + r"\s+(?:does|do|did)\s*(?:not|n't)\s+(?:\w+\s+)?"
        r"(?:mention|say|state|specify|provide|contain|include|give|indicate|discuss|address"
        r"|tell|offer|cover|explain|describe)\b"
        r"|^\s*(?:i\s+(?:do\s+not|don't)\s+know|i'?m\s+not\s+sure|unfortunately,?\s+i)\b"
        r"|\b(?:i\s+(?:apologi[sz]e|am\s+sorry)|i'm\s+sorry)\b.{0,40}\b(?:information|find"
        r"|answer|passages?|documents?|context)\b",
        re.IGNORECASE,
    ),
    "help": re.compile(
        r"\b(?:i\s+hope\s+(?:this|that|it)\s+helps|hope\s+(?:this|that)\s+helps|let\s+me\s+know"
        r"|feel\s+free\s+to|(?:if|should)\s+you\s+(?:have|need)\s+(?:any\s+)?(?:other|more|further"
        r"|additional)?\s*(?:questions|help|information|assistance)|is\s+there\s+anything\s+else"
        r"|happy\s+to\s+help|glad\s+(?:i\s+could|to)\s+help|don't\s+hesitate)\b",
        re.IGNORECASE,
    ),
    "framing": re.compile(
        r"^\s*(?:here\s+(?:is|are)|the\s+following\s+(?:is|are)|below\s+(?:is|are))\b.*:\s*$"
        r"|^\s*(?:great|good|excellent|interesting)\s+question\b"
        r"|^\s*(?:the\s+)?(?:answer|response)\s+(?:to\s+(?:your|the)\s+question\s+)?(?:is|would"
        r"\s+be)\s+(?:as\s+follows|below)\b",
        re.IGNORECASE,
    ),
    "source": re.compile(
        r"^\s*(?:the|these|this|those)\s+(?:given\s+|provided\s+|retrieved\s+)?"
        r"(?:passages?|documents?|context|text|articles?|sources?|search\s+results|excerpts?)"
        r"\s+(?:\w+\s+){0,2}(?:discuss|discusses|describe|describes|talk|talks|are|is|contain"
        r"|contains|provide|provides|mention|mentions|cover|covers|focus|focuses)\s+(?:about\s+|on\s+)?"
        r"(?:various|several|different|multiple|some|a\s+few|many|general|the\s+topic|topics)\b",
        re.IGNORECASE,
    ),
}


@dataclass(frozen=True)
class Claim:
    """A sentence of the answer: ``text`` is what is checked (its lead-in cut off), ``reason``
    is why it is not checked (None for a claim)."""

    sentence: str
    text: str
    reason: str | None = None


def strip_lead_in(sentence: str) -> str:
    """The sentence without a lead-in that only names the source or frames it ("Based on the
    passages, ", "It is worth noting that "): what is left is the claim."""
    text = sentence
    for _ in range(3):  # "In summary, based on the passages, it appears that ..."
        shorter = _LEAD_IN.sub("", text, count=1)
        shorter = _SAYS.sub("", _NOTE.sub("", shorter, count=1), count=1)
        if shorter == text:
            break
        text = shorter
    text = text.strip()
    if text and text != sentence.strip():
        text = text[0].upper() + text[1:]
    return text


def not_a_claim(sentence: str) -> str | None:
    """Why ``sentence`` states nothing about the document ("abstention", "help", "framing",
    "source"), or None when it is a claim to check."""
    for reason, pattern in NOT_A_CLAIM.items():
        if pattern.search(sentence):
            return reason
    return None


def answer_claims(text: str, min_words: int = 3) -> tuple[list[str], list[Claim]]:
    """The claims of an answer to check, and the sentences set aside (with why), in order.

    Each sentence is classified on its own, before short ones are joined: "Sure. It opened in
    1998." checks "It opened in 1998.", where joining first would have set the whole aside. A
    claim of fewer than ``min_words`` words ("No.", "Yes, it does.") is joined to the next
    claim, as ``split_claims`` does, since alone it says nothing checkable."""
    from groundset.validators.sentences import join_short, split_sentences

    kept: list[str] = []
    aside: list[Claim] = []
    for sentence in split_sentences(text):
        reason = not_a_claim(sentence)
        stripped = strip_lead_in(sentence) if reason is None else ""
        if reason is None and not stripped.split():
            reason = "framing"  # nothing but a lead-in ("Based on the passages:")
        if reason is not None:
            aside.append(Claim(sentence, sentence, reason))
        else:
            kept.append(stripped)
    return join_short(kept, min_words), aside
