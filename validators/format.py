"""Cheap shape checks: did it parse, are the parts a sensible length, is the question a question,
did template text leak in; for instruction tasks (Self-Instruct, Alpaca), Alpaca's filters, each
recorded as a metric instead of a silent drop. They run before any model-based validator and
catch most of what small generators get wrong."""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from groundset.core import Candidate, ConfigError, Metric, Validator, hookimpl

__all__ = [
    "ALPACA_BLACKLIST",
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

#: Stanford Alpaca's keyword blacklist: tasks a text-only model cannot do
ALPACA_BLACKLIST: tuple[str, ...] = (
    "image", "images", "graph", "graphs", "picture", "pictures", "file", "files", "map", "maps",
    "draw", "plot", "go to", "video", "audio", "music", "flowchart", "diagram",
)  # fmt: skip
_ASCII_PUNCTUATION = frozenset(string.punctuation)

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
    """Shape of a question/answer pair (parsed, lengths in bounds, a real question, no template
    text) or of an instruction task (Alpaca's filters). ``ok`` combines them and is the only
    metric with a default threshold, so the default policy rejects on one clear reason; the parts
    say which check failed."""

    validator_id = "format"
    cost = "lexical"
    version = "2"
    scores_parse_failures = True
    description = "Parsed, length bounds, is a question, no placeholder text."
    metrics = (
        Metric("parsed", "1 when the output parsed into its fields, else 0."),
        Metric("question_words", "Words in the question.", 0.0, _MAX_WORDS),
        Metric("answer_words", "Words in the answer.", 0.0, _MAX_WORDS),
        Metric("length_ok", "1 when question and answer word counts are both within bounds."),
        Metric("is_question", "1 when the question ends with '?' or starts like a question."),
        Metric("no_placeholder", "1 when neither field contains template or placeholder text."),
        Metric(
            "instruction_words", "Instruction tasks: words in the instruction.", 0.0, _MAX_WORDS
        ),
        Metric(
            "instruction_length_ok",
            "Instruction tasks: 1 when the instruction has more than 3 and at most 150 words"
            " (Alpaca's bounds).",
        ),
        Metric(
            "no_blacklisted_word",
            "Instruction tasks: 1 when the instruction has no blacklisted word (image, graph,"
            " file, map, draw, plot, go to, video, audio, music, flowchart, diagram, ...).",
        ),
        Metric("no_banned_prefix", "Instruction tasks: 1 unless it starts with 'Write a program'."),
        Metric("no_leading_punctuation", "Instruction tasks: 1 unless it starts with punctuation."),
        Metric("ascii_start", "Instruction tasks: 1 when its first character is ASCII."),
        Metric(
            "ok",
            "Question/answer pairs: 1 when parsed, length_ok, is_question and no_placeholder all"
            " hold. Instruction tasks: 1 when parsed and every Alpaca filter passes.",
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
        #: candidates with this field (and no question field) are instruction tasks, checked by
        #: Alpaca's filters
        instruction_field: str = "instruction"
        min_instruction_words: int = 4
        max_instruction_words: int = 150
        blacklist: tuple[str, ...] = ALPACA_BLACKLIST
        banned_prefixes: tuple[str, ...] = ("Write a program",)

    def __init__(self, options: FormatValidator.Options | None = None) -> None:
        super().__init__(options)
        self._check_bounds("question")
        self._check_bounds("answer")
        self._check_bounds("instruction")
        self._placeholder = _placeholder_pattern(self.options.placeholders)
        words = [re.escape(word) for word in self.options.blacklist if word.strip()]
        self._blacklist = (
            re.compile(r"\b(" + "|".join(words) + r")\b", re.IGNORECASE) if words else None
        )

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

    def instruction_checks(self, instruction: str) -> dict[str, float]:
        """Alpaca's filters (generate_instruction.py), one metric each."""
        opts = self.options
        words = len(instruction.split())
        first = instruction[:1]
        checks = {
            "instruction_length_ok": opts.min_instruction_words
            <= words
            <= opts.max_instruction_words,
            "no_blacklisted_word": not (self._blacklist and self._blacklist.search(instruction)),
            "no_banned_prefix": not instruction.startswith(tuple(opts.banned_prefixes)),
            "no_leading_punctuation": bool(first) and first not in _ASCII_PUNCTUATION,
            "ascii_start": bool(first) and first.isascii(),
        }
        scores = {name: _flag(passed) for name, passed in checks.items()}
        return {
            "parsed": 1.0,
            "instruction_words": float(words),
            **scores,
            "ok": _flag(all(checks.values())),
        }

    def _score_one(self, candidate: Candidate) -> dict[str, float]:
        if not candidate.parsed:
            return {"parsed": 0.0, "ok": 0.0}
        opts = self.options
        fields = candidate.fields
        if opts.instruction_field in fields and opts.question_field not in fields:
            return self.instruction_checks(candidate.fields[opts.instruction_field].strip())
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
