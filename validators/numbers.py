"""Numbers (and months) an answer states that its document does not.

A small NLI cross-encoder reads "opened in 1995" as nearly the same claim as "opened in 1994",
and "in April" as nearly "in March": on document sentences copied with a year or figure moved
nearby, groundset's packaged model let 42% pass, and 56-62% with the month moved by one or
two. A number is either in the document or not, so ``grounding_nli`` checks that exactly, and
the model judges everything else.

The check is built to avoid false alarms on faithful answers, at the cost of missing some
errors: the answer's numbers are read strictly (digits standing alone as a word, with an
optional ordinal, decade or percent suffix; numbers after a hedge such as "about" or "more
than", and numbers joined to letters or ranges, are not checked), while the document's are
read liberally (every run of digits, number words, and values scaled by "thousand",
"million", "billion", so "2.3 million" supports "2,300,000" and the other way round). A month
is a number of a date: the answer's month names (and "May" only next to a number, or after
"in") must be in the document as a name, an abbreviation or the month of a numeric date.
"""

from __future__ import annotations

import functools
import re

__all__ = ["check_numbers", "document_numbers", "stated_numbers", "unsupported_numbers"]

_SCALES = {
    "thousand": 1e3,
    "k": 1e3,
    "million": 1e6,
    "m": 1e6,
    "mn": 1e6,
    "billion": 1e9,
    "bn": 1e9,
    "b": 1e9,
    "trillion": 1e12,
}
_SCALE = r"(?:\s*(?P<scale>thousand|million|billion|trillion|k|mn|m|bn|b)\b)?"
_DIGITS = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
#: in the document, anywhere: "10kg", "1990s", "COVID-19" and "2019-06-08" all count
_ANY_NUMBER = re.compile(rf"(?P<number>{_DIGITS}){_SCALE}", re.IGNORECASE)
#: in the answer, only a number standing alone, optionally with %, an ordinal or decade suffix
_NOT_BEFORE = r"(?<![\w.,/:\-\u2013\u2014])"  # not inside a word, a decimal, a date or a range
_NOT_AFTER = r"(?![\w/:\-\u2013\u2014]|[.,]\d)"
_STATED = re.compile(
    rf"{_NOT_BEFORE}(?P<number>{_DIGITS})(?:st|nd|rd|th|s|'s|%)?{_NOT_AFTER}{_SCALE}",
    re.IGNORECASE,
)
#: "1990-95" (any dash) in a document also states 1995
_YEAR_RANGE = re.compile(r"\b(?P<century>1\d|20)\d\d\s*[-\u2013\u2014]\s*(?P<end>\d\d)\b")
_HEDGES = re.compile(
    r"\b(?:about|around|approximately|approx|roughly|nearly|almost|over|under|above|below|"
    r"some|circa|ca|c|estimated|more than|less than|fewer than|up to|at least|at most|"
    r"upwards of|close to|in excess of)\W*$|~\s*$",
    re.IGNORECASE,
)
_UNITS = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
)
_TENS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_ORDINALS = (
    "zeroth",
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
    "eleventh",
    "twelfth",
    "thirteenth",
    "fourteenth",
    "fifteenth",
    "sixteenth",
    "seventeenth",
    "eighteenth",
    "nineteenth",
)
_WORD_VALUES: dict[str, float] = {w: float(i) for i, w in enumerate(_UNITS)}
_WORD_VALUES.update({w: float(i) for i, w in enumerate(_ORDINALS)})
_WORD_VALUES.update({w: float(20 + 10 * i) for i, w in enumerate(_TENS)})
_WORD_VALUES.update({w[:-1] + "ieth": float(20 + 10 * i) for i, w in enumerate(_TENS)})
_WORD_VALUES.update({"hundred": 100.0, "dozen": 12.0, "hundredth": 100.0, "thousandth": 1e3})
_WORD_NAMES = "|".join(sorted(_WORD_VALUES, key=len, reverse=True))
_UNIT_NAMES = "|".join(_UNITS[1:10] + _ORDINALS[1:10])
_WORDS = re.compile(
    rf"\b(?P<tens>{'|'.join(_TENS)})(?:[\s-](?P<unit>{_UNIT_NAMES}))?\b"
    rf"|\b(?P<word>{_WORD_NAMES})\b{_SCALE}",
    re.IGNORECASE,
)


_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_MONTH_OF = {name.lower(): i + 1 for i, name in enumerate(_MONTHS)}
_MONTH_OF.update({name[:3].lower(): i + 1 for i, name in enumerate(_MONTHS)})
_MONTH_OF["sept"] = 9
_DOCUMENT_MONTH = re.compile(
    r"\b(" + "|".join(sorted(_MONTH_OF, key=len, reverse=True)) + r")\b", re.IGNORECASE
)
_NUMERIC_DATE = re.compile(
    r"\b\d{4}-(?P<iso>\d{1,2})-\d{1,2}\b|\b(?P<a>\d{1,2})[/.](?P<b>\d{1,2})[/.]\d{2,4}\b"
)
_STATED_MONTH = re.compile(r"\b(" + "|".join(_MONTHS) + r")\b")  # capitalised: a name
_MAY_AS_MONTH = re.compile(r"\d\s*$|\b[Ii]n\s+$")  # "5 May", "in May"; "May 2019" is seen after


def _month(number: int) -> str:
    return f"month:{number}"


def _key(value: float) -> float:
    return round(value, 6)


def _value(match: re.Match[str]) -> tuple[float, float | None]:
    """The number and, when a scale word follows it, the scaled number."""
    value = float(match.group("number").replace(",", ""))
    scale = match.group("scale")
    return value, (value * _SCALES[scale.lower()] if scale else None)


Fact = float | str  # a number, or "month:N"


@functools.lru_cache(maxsize=4096)
def document_numbers(text: str) -> frozenset[Fact]:
    """Every value the document states, in digits or in words, plain and scaled, and every
    month it names or dates."""
    values: set[Fact] = set()
    for match in _DOCUMENT_MONTH.finditer(text):
        values.add(_month(_MONTH_OF[match.group(1).lower()]))
    for match in _NUMERIC_DATE.finditer(text):
        for part in (match.group("iso"), match.group("a"), match.group("b")):
            if part and 1 <= int(part) <= 12:
                values.add(_month(int(part)))
    for match in _ANY_NUMBER.finditer(text):
        value, scaled = _value(match)
        values.add(_key(value))
        if scaled is not None:
            values.add(_key(scaled))
    for match in _YEAR_RANGE.finditer(text):
        values.add(_key(float(match.group("century") + match.group("end"))))
    for match in _WORDS.finditer(text):
        if match.group("tens"):
            value = _WORD_VALUES[match.group("tens").lower()]
            if match.group("unit"):
                value += _WORD_VALUES[match.group("unit").lower()]
        else:
            value = _WORD_VALUES[match.group("word").lower()]
        values.add(_key(value))
        if match.group("scale"):
            values.add(_key(value * _SCALES[match.group("scale").lower()]))
    return frozenset(values)


def stated_numbers(text: str) -> list[tuple[str, tuple[Fact, ...]]]:
    """The numbers and months ``text`` states unhedged, in order, each as (as written, values
    it may stand for)."""
    found: list[tuple[int, str, tuple[Fact, ...]]] = []
    for match in _STATED_MONTH.finditer(text):
        name = match.group(1)
        before = text[max(0, match.start() - 24) : match.start()]
        if _HEDGES.search(before):
            continue  # "around March"
        if name == "May" and not (
            _MAY_AS_MONTH.search(before) or re.match(r"\s+\d", text[match.end() :])
        ):
            continue  # the verb
        if re.match(r"\s+[A-Z][a-z]", text[match.end() :]):
            continue  # a first name: "August Wilson", "June Carter"
        found.append((match.start(), name, (_month(_MONTH_OF[name.lower()]),)))
    for match in _STATED.finditer(text):
        if _HEDGES.search(text[max(0, match.start() - 24) : match.start()]):
            continue  # "about 30"
        if not text[: match.start()].strip() and re.match(r"[.)]\s+\S", text[match.end() :]):
            continue  # a list marker, "1. The museum ...", unlike a bare answer, "1995."
        value, scaled = _value(match)
        values = [_key(value)] if scaled is None else [_key(value), _key(scaled)]
        written = match.group(0).strip()
        if written.lower().endswith("s") and value >= 1000 and value % 10 == 0:
            span = 100 if value % 100 == 0 else 10  # "the 1990s", "the 1800s"
            values = [_key(value + step) for step in range(span)]
        found.append((match.start(), written, tuple(values)))
    return [(written, values) for _, written, values in sorted(found)]


def check_numbers(claim: str, document: str) -> tuple[int, list[str]]:
    """How many numbers and months ``claim`` states, and those of them that ``document`` does
    not state (as written in the claim)."""
    known = document_numbers(document)
    stated = stated_numbers(claim)
    return len(stated), [text for text, values in stated if not known.intersection(values)]


def unsupported_numbers(claim: str, document: str) -> list[str]:
    """The numbers and months ``claim`` states that ``document`` does not (as written in the
    claim)."""
    return check_numbers(claim, document)[1]
