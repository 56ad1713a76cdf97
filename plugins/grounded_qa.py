"""The seed's strategy: one question/answer pair grounded in one document, asked with the few-shot
prompt of Niklas Heidloff's post "Generating synthetic Data with Large Language Models" (see
``data/NOTICE``).

The packaged instruction and four examples are the seed's, word for word, so the ``completion``
prompt of a document is exactly the seed's "Full Prompt" with the document pasted after its last
``[document]: ``. One addition: the prompt then ends with ``"\\n\\n[question]:"``. The seed leaves
the model to start the pair itself; ending on the marker stops small models from continuing the
document instead, and :func:`parse_output` accepts outputs that start with the question text.
"""

from __future__ import annotations

import functools
import json
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from groundset.core import (
    ConfigError,
    Document,
    Generation,
    InputError,
    ParsedCandidate,
    PlannedPrompt,
    Prompt,
    Strategy,
    hookimpl,
)

__all__ = [
    "PROMPT_FORMATS",
    "Example",
    "GroundedQA",
    "format_target",
    "load_examples",
    "load_instruction",
    "parse_output",
    "register_strategies",
    "render_completion",
    "render_messages",
]

PROMPT_FORMATS = ("chat", "completion")
_WHERE = "strategies.grounded_qa"
_KEYS = ("document", "question", "answer")


@dataclass(frozen=True)
class Example:
    """One few-shot example: a document and the pair grounded in it."""

    document: str
    question: str
    answer: str


# --- packaged data and user example files -------------------------------------------------------


def _packaged(name: str) -> str:
    """Read through importlib.resources so the data is found in wheels and zips, not just trees."""
    return (resources.files("groundset.plugins") / "data" / name).read_text(encoding="utf-8")


def load_instruction(override: str | None = None) -> str:
    """The seed's instruction paragraph, or the user's ``instruction`` option."""
    if override is not None:
        return override
    return _packaged("grounded_qa_prompt.txt").rstrip("\n")


def _parse_example(line: str, where: str) -> Example:
    """One JSONL line; errors stay one line and name ``file:line`` so users can jump there."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise InputError(f"{where}: invalid JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(record, dict):
        raise InputError(f"{where}: expected a JSON object with keys document, question, answer")
    values = []
    for key in _KEYS:
        if key not in record:
            raise InputError(f"{where}: missing key {key!r} (need document, question, answer)")
        value = record[key]
        if not isinstance(value, str) or not value.strip():
            raise InputError(f"{where}: {key!r} must be a non-empty string")
        values.append(value)
    return Example(*values)


def _parse_examples(text: str, name: str) -> tuple[Example, ...]:
    """Split on ``\\n`` only: ``str.splitlines`` would also split on U+2028 inside JSON strings."""
    examples = []
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            examples.append(_parse_example(line.rstrip("\r"), f"{name}:{number}"))
    return tuple(examples)


def load_examples(path: str | Path | None = None) -> tuple[Example, ...]:
    """The packaged seed examples, or the user's JSONL file of {document, question, answer}."""
    if path is None:
        return _parse_examples(_packaged("grounded_qa_examples.jsonl"), "grounded_qa_examples")
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{file}: examples file not found ({_WHERE}.examples)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{file}: cannot read examples file: {error}") from None
    examples = _parse_examples(text, str(file))
    if not examples:
        raise InputError(f"{file}: no examples (one JSON object per line: {', '.join(_KEYS)})")
    return examples


# --- prompts -------------------------------------------------------------------------------------


def format_target(document: Document) -> str:
    """The seed's example documents start with their title line; give targets the same shape."""
    text = document.text
    if document.title and not text.startswith(document.title):
        return f"{document.title}\n{text}"
    return text


def render_completion(instruction: str, examples: Sequence[Example], target: str) -> str:
    """The seed's one-block prompt, then the target document and the ``[question]:`` cue."""
    shots = "".join(
        f"[document]: {e.document}\n\n[question]: {e.question}\n[answer]: {e.answer}\n\n"
        for e in examples
    )
    return f"{instruction}\n\n{shots}[document]: {target}\n\n[question]:"


def render_messages(
    instruction: str, examples: Sequence[Example], target: str
) -> tuple[dict[str, str], ...]:
    """The same prompt as chat turns: instruct models follow examples better as past turns."""
    messages = [{"role": "system", "content": instruction}]
    for e in examples:
        messages.append({"role": "user", "content": f"[document]: {e.document}"})
        answer = f"[question]: {e.question}\n[answer]: {e.answer}"
        messages.append({"role": "assistant", "content": answer})
    messages.append({"role": "user", "content": f"[document]: {target}"})
    return tuple(messages)


# --- parsing -------------------------------------------------------------------------------------


def _marker(label: str) -> re.Pattern[str]:
    """``[label]`` anywhere (with optional markdown bold and colon), or a bare ``Label:`` at the
    start of a line: bare words mid-sentence are ordinary prose, brackets never are."""
    bracketed = rf"[*_]{{0,2}}\[[ \t]*(?:{label})[ \t]*\][*_]{{0,2}}[ \t]*:?[*_]{{0,2}}"
    bare = (
        rf"^[ \t]*(?:[-#>]+[ \t]*)?[*_]{{0,2}}(?:{label})(?:[ \t]*\d+)?"
        r"[*_]{0,2}[ \t]*:[*_]{0,2}"
    )
    return re.compile(f"{bracketed}|{bare}", re.IGNORECASE | re.MULTILINE)


_DOCUMENT = _marker("document")
_QUESTION = _marker("question|q")
_ANSWER = _marker("answer|a")
_SPECIAL = re.compile(r"<\|[^|<>]*\|>|\n[ \t]*\n[ \t]*\n")  # chat-template tokens, "\n\n\n"


class _Unparsable(Exception):
    """Why an output holds no pair; becomes ``ParsedCandidate.error``."""


def _cut(text: str, patterns: Sequence[re.Pattern[str]]) -> str:
    """``text`` up to the first match of any pattern: what follows belongs to another pair."""
    end = len(text)
    for pattern in patterns:
        match = pattern.search(text)
        if match is not None:
            end = min(end, match.start())
    return text[:end]


def _continuation(text: str) -> tuple[str, str]:
    """Completion prompts end on ``[question]:``, so the output starts with the question itself."""
    segment = _cut(text, (_DOCUMENT,))
    match = _ANSWER.search(segment)
    if match is None or not segment[: match.start()].strip():
        raise _Unparsable("no [question] marker")
    return segment[: match.start()], segment[match.end() :]


def _split(text: str) -> tuple[str, str]:
    """Raw question and answer text of the first pair; a repeated document before it is skipped."""
    question = _QUESTION.search(text)
    if question is None:
        return _continuation(text)
    segment = _cut(text[question.end() :], (_DOCUMENT, _QUESTION))
    answer = _ANSWER.search(segment)
    if answer is None:
        raise _Unparsable("no [answer] marker")
    return segment[: answer.start()], segment[answer.end() :]


def _clean(text: str) -> str:
    """Drop markdown emphasis and a pair of enclosing quotes that models like to add."""
    text = text.strip().strip("*").strip()
    if len(text) >= 2 and text[0] in '"“' and text[-1] in '"”':
        text = text[1:-1].strip()
    return text


def parse_output(text: str, error: str | None = None) -> ParsedCandidate:
    """The one pair in a model output, or a failed candidate whose error says why."""
    if error is not None:
        reason = (error.strip().splitlines() or [""])[0][:200]
        return ParsedCandidate(fields={}, raw=text, error=f"backend error: {reason}")
    if not text.strip():
        return ParsedCandidate(fields={}, raw=text, error="empty output")
    try:
        question, answer = _split(text)
    except _Unparsable as reason:
        return ParsedCandidate(fields={}, raw=text, error=str(reason))
    question = " ".join(_clean(question).split())
    answer = _clean(_cut(answer, (_DOCUMENT, _QUESTION, _SPECIAL)))
    if not question:
        return ParsedCandidate(fields={}, raw=text, error="empty question")
    if not answer:
        return ParsedCandidate(fields={}, raw=text, error="empty answer")
    return ParsedCandidate(fields={"question": question, "answer": answer}, raw=text)


# --- the strategy --------------------------------------------------------------------------------


def _same_text(example: Example, target: str, document: Document) -> bool:
    return example.document.strip() in (target.strip(), document.text.strip())


class GroundedQA(Strategy):
    """One grounded question/answer pair per prompt, with the seed's few-shot prompt.

    A target document that is itself one of the examples is left out of its own prompt: the
    model would otherwise see the expected pair and copy it, which scores well and teaches
    nothing.
    """

    strategy_id = "grounded_qa"
    fields = ("question", "answer")
    description = (
        "Question/answer pairs grounded in one document, asked with the few-shot prompt of "
        "Heidloff's 'Generating synthetic Data with Large Language Models' (2023)."
    )

    @dataclass(frozen=True)
    class Options:
        """``examples``: JSONL of {document, question, answer} (default: the seed's four);
        ``num_examples``: few-shot examples per prompt, sampled when fewer than available;
        ``prompt_format``: "chat" (messages for chat templates) or "completion" (one block);
        ``instruction``: replaces the seed's instruction paragraph."""

        examples: str | None = None
        num_examples: int = 4
        prompt_format: str = "chat"
        instruction: str | None = None

    def __init__(self, options: GroundedQA.Options | None = None) -> None:
        super().__init__(options)
        self._check_options()
        self.instruction = load_instruction(self.options.instruction)
        self.examples = load_examples(self.options.examples)

    def _check_options(self) -> None:
        """Fail at setup, before any model time is spent, with the config key to fix."""
        fmt = self.options.prompt_format
        if fmt not in PROMPT_FORMATS:
            raise ConfigError(
                f"{_WHERE}.prompt_format: expected one of {', '.join(PROMPT_FORMATS)}, got {fmt!r}"
            )
        if self.options.num_examples < 0:
            raise ConfigError(f"{_WHERE}.num_examples: must be 0 or more")

    def _choose(self, pool: list[Example], rng: random.Random) -> list[Example]:
        """All examples in file order, or a sorted rng sample so prompts read in a stable order."""
        wanted = self.options.num_examples
        if wanted >= len(pool):
            return pool
        return [pool[i] for i in sorted(rng.sample(range(len(pool)), wanted))]

    def _prompt(self, examples: Sequence[Example], target: str) -> Prompt:
        text = render_completion(self.instruction, examples, target)
        if self.options.prompt_format == "completion":
            return Prompt(text=text)
        return Prompt(text=text, messages=render_messages(self.instruction, examples, target))

    def plan(
        self, documents: Sequence[Document], samples: int, rng: random.Random
    ) -> list[PlannedPrompt]:
        planned = []
        for document in documents:
            target = format_target(document)
            pool = [e for e in self.examples if not _same_text(e, target, document)]
            for _ in range(samples):
                # rendered when its batch runs: a rendered prompt is ~8 KB, a recipe ~0.2 KB
                render = functools.partial(self._prompt, self._choose(pool, rng), target)
                planned.append(PlannedPrompt(document=document, prompt=render))
        return planned

    def stop_sequences(self) -> tuple[str, ...]:
        """A new document block or a long gap means the pair is over."""
        return ("\n[document]:", "\n\n\n")

    def parse(self, generation: Generation) -> list[ParsedCandidate]:
        return [parse_output(generation.text, generation.error)]


@hookimpl
def register_strategies(register: Callable[[type], object]) -> None:
    register(GroundedQA)
