"""The ``grounding_judge`` validator: a language model checks that the answer is grounded in the
document, through any registered backend, claim by claim.

Where a user generates with watsonx.ai or a vLLM server, that endpoint can judge grounding far
better than a small offline NLI model; two methods, both keeping every claim and verdict in
``score_details``:

- ``claims`` (after RAGAS's faithfulness and FActScore: atomic statements first, then a verdict
  on each): one call splits the answer into atomic statements, a second asks, for all of them
  at once, whether the document supports each and for a quote from the document that shows it.
  A verdict of "supported" whose quote is not in the document counts as unsupported: a judge
  must show its evidence. ``supported`` is the share of statements supported.
- ``minicheck``: one call per (document chunk, answer claim) in the prompt format of
  Bespoke-MiniCheck (Tang, Laban and Durrett 2024, "MiniCheck: Efficient Fact-Checking of LLMs on
  Grounding Documents"): a claim is supported when some chunk supports it. The answer's claims
  are its sentences, less those that state nothing about the document (``validators.claims``).
  ``supported`` is the share of claims some chunk supports.

Both cost calls: ``claims`` two per candidate, ``minicheck`` one per chunk and claim. Every reply
goes through the response cache (``cache``), so scoring again with the same judge makes no call.
A reply that cannot be read is kept with the reason, and its candidate gets no ``supported``
score rather than a guessed one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from groundset.core import (
    Backend,
    Candidate,
    ConfigError,
    Metric,
    Prompt,
    Register,
    Validator,
    hookimpl,
)
from groundset.validators.chunks import document_chunks
from groundset.validators.claims import answer_claims
from groundset.validators.llm_calls import judge_backend, judge_params

__all__ = [
    "MINICHECK_SYSTEM",
    "STATEMENTS_PROMPT",
    "VERDICTS_PROMPT",
    "GroundingJudgeValidator",
    "parse_minicheck",
    "parse_statements",
    "parse_verdicts",
    "register_validators",
]

METHODS = ("claims", "minicheck")

STATEMENTS_PROMPT = """Break the answer below into short, self-contained statements, each \
stating one fact. Replace pronouns with what they refer to. Leave out statements that say \
nothing checkable (greetings, offers of help, remarks about the sources).

Question: {question}
Answer: {answer}

Reply with a JSON list of strings and nothing else, for example:
["The museum opened in 1994.", "The museum is free on Sundays."]"""

VERDICTS_PROMPT = """For each numbered statement, decide whether the document supports it. \
A statement is supported only when the document states it or it follows directly from what \
the document states. When it is supported, copy the shortest passage of the document that shows \
it, word for word.

Document:
{document}

Statements:
{statements}

Reply with a JSON list, one object per statement in order, and nothing else, for example:
[{{"statement": 1, "supported": true, "quote": "opened in 1994"}}, \
{{"statement": 2, "supported": false, "quote": ""}}]"""

#: Bespoke-MiniCheck's system prompt; the user turn is "Document: ...\nClaim: ..."
MINICHECK_SYSTEM = (
    "Determine whether the provided claim is consistent with the corresponding document. "
    "Consistency in this context implies that all information presented in the claim is "
    "substantiated by the document. If not, it should be considered inconsistent. Please "
    'assess the claim\'s consistency with the document by responding with either "Yes" or "No".'
)


@dataclass(frozen=True)
class GroundingJudgeOptions:
    """``backend`` and ``backend_options``: the judging model; ``method``: ``claims`` or
    ``minicheck``; ``chunk_tokens``: the size of the document chunks ``minicheck`` checks each
    claim against (estimated tokens; whole sentences); ``max_document_chars``: the document is
    cut to this many characters in the ``claims`` prompt; ``cache``/``cache_path``: the
    response cache."""

    backend: str = "huggingface"
    backend_options: dict[str, Any] = field(default_factory=dict)
    method: str = "claims"
    question_field: str = "question"
    answer_field: str = "answer"
    chunk_tokens: int = 400
    max_document_chars: int = 12000
    max_new_tokens: int = 512
    temperature: float = 0.0
    seed: int = 0
    cache: bool = True
    cache_path: str = ""


class GroundingJudgeValidator(Validator):
    """LLM grounding check, statement by statement (``claims``) or claim by chunk
    (``minicheck``)."""

    validator_id = "grounding_judge"
    cost = "llm"
    version = "1"
    description = "A language model checks each claim of the answer against the document"
    Options = GroundingJudgeOptions
    operational_options = ("cache", "cache_path")
    metrics = (
        Metric("supported", "Share of the answer's statements (claims) the judge found "
               "supported by the document (with a quote found in it, for `claims`); absent "
               "when the judge's reply could not be read.", default_threshold=1.0),
        Metric("statements", "How many statements (claims) were checked.", 0.0, 10000.0),
        Metric("parsed", "1 when every reply of the judge could be read, else 0 (the reason "
               "is in score_details)."),
    )  # fmt: skip

    def __init__(self, options: GroundingJudgeOptions | None = None) -> None:
        super().__init__(options)
        if self.options.method not in METHODS:
            raise ConfigError(
                f"validators.grounding_judge.method: expected one of {', '.join(METHODS)},"
                f" got {self.options.method!r}"
            )
        if self.options.chunk_tokens < 1:
            raise ConfigError("validators.grounding_judge.chunk_tokens: must be at least 1")
        self._backend: Backend | None = None

    def _generate(self, prompts: Sequence[Prompt], max_new_tokens: int) -> list[str | None]:
        """Each prompt's reply, or None where the backend failed it."""
        if self._backend is None:
            self._backend = judge_backend(self.options)
        params = judge_params(self.options, max_new_tokens)
        replies = self._backend.generate(list(prompts), params) if prompts else []
        return [None if r.error else r.text for r in replies]

    def score(self, candidates: Sequence[Candidate]) -> list[dict[str, Any]]:
        if self.options.method == "minicheck":
            return self._minicheck(candidates)
        return self._claims(candidates)

    # -- claims -----------------------------------------------------------------------------

    def _claims(self, candidates: Sequence[Candidate]) -> list[dict[str, Any]]:
        first = [_chat(STATEMENTS_PROMPT.format(
            question=c.fields.get(self.options.question_field, ""),
            answer=c.fields.get(self.options.answer_field, ""),
        )) for c in candidates]  # fmt: skip
        statements: list[list[str] | None] = []
        results: list[dict[str, Any]] = []
        for reply in self._generate(first, self.options.max_new_tokens):
            found, reason = parse_statements(reply)
            statements.append(found)
            results.append({} if found else _unread("statements", reason, reply))
        asking = [i for i, found in enumerate(statements) if found]
        second = [self._verdict_prompt(candidates[i], statements[i] or []) for i in asking]
        for i, reply in zip(asking, self._generate(second, self.options.max_new_tokens),
                            strict=True):  # fmt: skip
            found = statements[i] or []
            verdicts, reason = parse_verdicts(reply, len(found))
            if verdicts is None:
                results[i] = _unread("verdicts", reason, reply, statements=found)
                continue
            results[i] = _judged(found, verdicts, candidates[i].document.text)
        return results

    def _verdict_prompt(self, candidate: Candidate, statements: list[str]) -> Prompt:
        numbered = "\n".join(f"{n}. {s}" for n, s in enumerate(statements, start=1))
        document = candidate.document.text[: self.options.max_document_chars]
        return _chat(VERDICTS_PROMPT.format(document=document, statements=numbered))

    # -- minicheck --------------------------------------------------------------------------

    def _minicheck(self, candidates: Sequence[Candidate]) -> list[dict[str, Any]]:
        plans = []
        prompts: list[Prompt] = []
        for candidate in candidates:
            claims, _ = answer_claims(candidate.fields.get(self.options.answer_field, ""))
            chunks = document_chunks(candidate.document.text, self.options.chunk_tokens)
            plans.append((claims, chunks, len(prompts)))
            prompts += [_minicheck_prompt(chunk, claim) for claim in claims for chunk in chunks]
        replies = self._generate(prompts, 4)
        results = []
        for claims, chunks, start in plans:
            if not claims or not chunks:
                results.append({"supported": 0.0, "statements": 0.0, "parsed": 1.0,
                                 "details": {"no_claims": True}})  # fmt: skip
                continue
            end = start + len(claims) * len(chunks)
            results.append(_minicheck_result(claims, chunks, replies[start:end]))
        return results


def _minicheck_result(
    claims: list[str], chunks: tuple[str, ...], replies: Sequence[str | None]
) -> dict[str, Any]:
    """One candidate's verdicts from its replies (claim by claim, chunk by chunk). A claim is
    supported when some chunk's reply says Yes, unsupported when every reply says No, and
    unknown otherwise: an unread reply never counts as support, nor as its absence."""
    checked: list[dict[str, Any]] = []
    unread: list[dict[str, Any]] = []
    unknown = False
    for k, claim in enumerate(claims):
        verdicts = [parse_minicheck(r) for r in replies[k * len(chunks) : (k + 1) * len(chunks)]]
        unread += [{"claim": claim, "reply": replies[k * len(chunks) + j]}
                   for j, verdict in enumerate(verdicts) if verdict is None]  # fmt: skip
        support = next((chunks[j] for j, verdict in enumerate(verdicts) if verdict), None)
        unknown |= support is None and None in verdicts
        checked.append({"claim": claim, "supported": support is not None, "chunk": support})
    details: dict[str, Any] = {"method": "minicheck", "claims": checked}
    result: dict[str, Any] = {"statements": float(len(claims)), "parsed": 0.0 if unread else 1.0}
    if unread:
        details["unread"] = unread
    if not unknown:
        result["supported"] = sum(c["supported"] for c in checked) / len(checked)
    result["details"] = details
    return result


def _chat(text: str) -> Prompt:
    return Prompt(text, messages=({"role": "user", "content": text},))


def _minicheck_prompt(chunk: str, claim: str) -> Prompt:
    user = f"Document: {chunk}\nClaim: {claim}"
    return Prompt(
        f"{MINICHECK_SYSTEM}\n\n{user}\nAnswer:",
        messages=({"role": "system", "content": MINICHECK_SYSTEM},
                  {"role": "user", "content": user}),
    )  # fmt: skip


def _unread(step: str, reason: str, reply: str | None, **more: Any) -> dict[str, Any]:
    details = {"method": "claims", "unread": step, "reason": reason, "reply": reply, **more}
    return {"parsed": 0.0, "details": details}


def _judged(statements: list[str], verdicts: list[dict[str, Any]], document: str) -> dict:
    checked = []
    for statement, verdict in zip(statements, verdicts, strict=True):
        quote = str(verdict.get("quote") or "")
        said = bool(verdict.get("supported"))
        found = bool(quote) and _normalise(quote) in _normalise(document)
        entry: dict[str, Any] = {"statement": statement, "supported": said and found,
                                 "quote": quote}  # fmt: skip
        if said and not found:
            entry["reason"] = "quote not in the document" if quote else "no quote given"
        checked.append(entry)
    supported = sum(e["supported"] for e in checked) / len(checked)
    return {"supported": supported, "statements": float(len(checked)), "parsed": 1.0,
            "details": {"method": "claims", "statements": checked}}  # fmt: skip


def _normalise(text: str) -> str:
    """Quotes are compared without case, punctuation spacing or curly quotes mattering."""
    text = text.lower().replace("\u2019", "'").replace("\u201c", '"').replace("\u201d", '"')
    return re.sub(r"\s+", " ", re.sub(r"\s*([,.;:!?])", r"\1", text)).strip(" .")


def _json_list(reply: str | None) -> tuple[list[Any] | None, str]:
    """The first JSON list in a reply (models wrap it in prose or code fences)."""
    if reply is None:
        return None, "the backend failed the call"
    start, end = reply.find("["), reply.rfind("]")
    if start < 0 or end <= start:
        return None, "no JSON list in the reply"
    try:
        value = json.loads(reply[start : end + 1])
    except json.JSONDecodeError as error:
        return None, f"not valid JSON: {error.msg}"
    if not isinstance(value, list):
        return None, "not a JSON list"
    return value, ""


def parse_statements(reply: str | None) -> tuple[list[str] | None, str]:
    """The statements of a reply to :data:`STATEMENTS_PROMPT`, or None and why."""
    value, reason = _json_list(reply)
    if value is None:
        return None, reason
    statements = [str(s).strip() for s in value if isinstance(s, str) and s.strip()]
    if not statements:
        return None, "no statements listed"
    return statements, ""


def parse_verdicts(reply: str | None, count: int) -> tuple[list[dict[str, Any]] | None, str]:
    """One verdict per statement from a reply to :data:`VERDICTS_PROMPT`, or None and why."""
    value, reason = _json_list(reply)
    if value is None:
        return None, reason
    verdicts = [v for v in value if isinstance(v, dict) and "supported" in v]
    if len(verdicts) != count:
        return None, f"{len(verdicts)} verdicts for {count} statements"
    return verdicts, ""


def parse_minicheck(reply: str | None) -> bool | None:
    """True for "Yes", False for "No", None for anything else."""
    if reply is None:
        return None
    word = re.match(r"\W*(yes|no)\b", reply, re.I)
    return None if word is None else word.group(1).lower() == "yes"


@hookimpl
def register_validators(register: Register) -> None:
    register(GroundingJudgeValidator)
