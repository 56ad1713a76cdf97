"""Cheap shape checks on question/answer candidates: did it parse, are both parts a sensible length,
is the question a question, and did template text leak into it. They run before any model-based
validator and catch most of what small generators get wrong."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from groundset.core import Candidate, ConfigError, Metric, Validator, hookimpl

__all__ = [
    "DEFAULT_PLACEHOLDERS",
    "FormatValidator",
    "count_words",
    "is_question",
    "register_validators",
]

_WHERE = "validators.format"
_MAX_WORDS = 10_000.0

#: Text that only appears when a model echoed the prompt template or filled in a stub. Ordinary
#: words such as "insert" or characters such as "{" are left out: technical answers use them.
DEFAULT_PLACEHOLDERS: tuple[str, ...] = (
    "[document]",
    "[question]",
    "[answer]",
    "{document}",
    "{question}",
    "{answer}",
    "<noinput>",
    "<nooutput>",
    "<|",
    "lorem ipsum",
    "TODO:",
    "xxx",
    "your question here",
    "your answer here",
    "[insert",
    "<insert",
)

#: First words of direct questions (English): interrogatives and auxiliaries of yes/no questions.
_QUESTION_WORDS_TEXT = (
    "what when where which who whom whose why how "
    "is are was were am do does did can could should would will shall may might must has have had"
)
_QUESTION_WORDS = frozenset(_QUESTION_WORDS_TEXT.split())
_WORD = re.compile(r"\S*\w\S*")
_TRAILING = " \t\r\n\"'*)\u201d\u2019\u00bb"  # closing quotes and brackets


def _placeholder_pattern(placeholders: Sequence[str]) -> re.Pattern[str] | None:
    """Word boundaries only where the placeholder starts or ends with a word character, so "xxx"
    does not match inside "xxxl" while "[answer]" matches wherever it appears."""
    parts = []
    for text in placeholders:
        if not text:
            continue
        head = r"(?<!\w)" if re.match(r"\w", text[0]) else ""
        tail = r"(?!\w)" if re.match(r"\w", text[-1]) else ""
        parts.append(f"{head}{re.escape(text)}{tail}")
    return re.compile("|".join(parts), re.IGNORECASE) if parts else None


def count_words(text: str) -> int:
    """Whitespace-separated tokens with at least one word character; lone punctuation is no word."""
    return len(_WORD.findall(text))


def is_question(text: str) -> bool:
    """Ends with a question mark, or starts like a direct question ("How ...", "Is ...")."""
    stripped = text.strip().rstrip(_TRAILING)
    if stripped.endswith(("?", "\uff1f")) or stripped.startswith("\u00bf"):  # full-width ?, ¿
        return True
    words = stripped.lstrip("*\"'“ ").split(maxsplit=1)
    return bool(words) and words[0].lower().strip(",:") in _QUESTION_WORDS


def _flag(value: bool) -> float:
    return 1.0 if value else 0.0


class FormatValidator(Validator):
    """Shape of a question/answer pair: parsed, lengths in bounds, a real question, no template
    text. ``ok`` combines them and is the only metric with a default threshold, so the default
    policy rejects on one clear reason; the parts say which check failed."""

    validator_id = "format"
    version = "1"
    scores_parse_failures = True
    description = "Parsed, length bounds, is a question, no placeholder text."
    metrics = (
        Metric("parsed", "1 when the output parsed into a question and an answer, else 0."),
        Metric("question_words", "Words in the question.", 0.0, _MAX_WORDS),
        Metric("answer_words", "Words in the answer.", 0.0, _MAX_WORDS),
        Metric("length_ok", "1 when question and answer word counts are both within bounds."),
        Metric("is_question", "1 when the question ends with '?' or starts like a question."),
        Metric("no_placeholder", "1 when neither field contains template or placeholder text."),
        Metric(
            "ok",
            "1 when parsed, length_ok, is_question and no_placeholder all hold.",
            default_threshold=1.0,
        ),
    )

    @dataclass(frozen=True)
    class Options:
        """Field names, inclusive word-count bounds and case-insensitive placeholder strings."""

        question_field: str = "question"
        answer_field: str = "answer"
        min_question_words: int = 3
        max_question_words: int = 60
        min_answer_words: int = 2
        max_answer_words: int = 200
        placeholders: tuple[str, ...] = DEFAULT_PLACEHOLDERS

    def __init__(self, options: FormatValidator.Options | None = None) -> None:
        super().__init__(options)
        self._check_bounds("question")
        self._check_bounds("answer")
        self._placeholder = _placeholder_pattern(self.options.placeholders)

    def _check_bounds(self, part: str) -> None:
        low = getattr(self.options, f"min_{part}_words")
        high = getattr(self.options, f"max_{part}_words")
        if low < 0 or high < low:
            raise ConfigError(
                f"{_WHERE}.min_{part}_words/max_{part}_words: need 0 <= min <= max, "
                f"got {low} and {high}"
            )

    def _has_placeholder(self, *texts: str) -> bool:
        pattern = self._placeholder
        return pattern is not None and any(pattern.search(text) for text in texts)

    def _score_one(self, candidate: Candidate) -> dict[str, float]:
        if not candidate.parsed:
            return {"parsed": 0.0, "ok": 0.0}
        opts = self.options
        question = candidate.fields.get(opts.question_field, "")
        answer = candidate.fields.get(opts.answer_field, "")
        q_words, a_words = count_words(question), count_words(answer)
        length_ok = (opts.min_question_words <= q_words <= opts.max_question_words) and (
            opts.min_answer_words <= a_words <= opts.max_answer_words
        )
        asks = is_question(question)
        clean = not self._has_placeholder(question, answer)
        return {
            "parsed": 1.0,
            "question_words": float(q_words),
            "answer_words": float(a_words),
            "length_ok": _flag(length_ok),
            "is_question": _flag(asks),
            "no_placeholder": _flag(clean),
            "ok": _flag(length_ok and asks and clean),
        }

    def score(self, candidates: Sequence[Candidate]) -> list[dict[str, float]]:
        return [self._score_one(candidate) for candidate in candidates]


@hookimpl
def register_validators(register: Callable[[type], object]) -> None:
    register(FormatValidator)
