"""``groundset plugin new``: a working plugin package to start from, with a passing test that
runs the contract checks of ``groundset.core.testing`` against it."""

from __future__ import annotations

import re
from pathlib import Path

from groundset.core.errors import ConfigError

__all__ = ["KINDS", "new_plugin"]

KINDS = ("validator", "backend", "strategy")

_PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "groundset-{dist}"
version = "0.1.0"
description = "A groundset {kind}: {name}"
requires-python = ">=3.11"
dependencies = ["groundset"]

[project.optional-dependencies]
test = ["pytest>=8"]

# groundset finds the plugin through this entry point
[project.entry-points.groundset]
{name} = "{package}"

[tool.setuptools]
packages = ["{package}"]
"""

_README = """\
# groundset-{dist}

A groundset {kind} plugin.

    pip install -e ".[test]"
    groundset plugins          # lists {name}
    python -m pytest

See groundset's docs/writing-plugins.md for the hooks, the testing kit and publishing.
"""

_VALIDATOR = '''\
"""The ``{name}`` validator: replace the example metric with your own."""

from __future__ import annotations

from dataclasses import dataclass

from groundset.core import Metric, Validator, hookimpl


class {cls}(Validator):
    """Share of answer words that also appear in the document (an example metric)."""

    validator_id = "{name}"
    version = "1"  # bump whenever the scores would change
    cost = "lexical"  # lexical, embedding, cross-encoder or llm
    description = "Example: share of answer words found in the document."
    metrics = (
        Metric("word_support", "Share of answer words found in the document.",
               low=0.0, high=1.0, higher_is_better=True, default_threshold=0.5),
    )

    @dataclass(frozen=True)
    class Options:
        field: str = "answer"

    def score(self, candidates):
        results = []
        for candidate in candidates:
            words = candidate.fields.get(self.options.field, "").lower().split()
            document = set(candidate.document.text.lower().split())
            share = sum(w in document for w in words) / len(words) if words else 0.0
            results.append({{"word_support": share}})
        return results


@hookimpl
def register_validators(register):
    register({cls})
'''

_BACKEND = '''\
"""The ``{name}`` backend: replace ``generate`` with calls to your model."""

from __future__ import annotations

from dataclasses import dataclass

from groundset.core import Backend, Generation, hookimpl


class {cls}(Backend):
    """Answers every prompt with a fixed grounded question/answer (an example backend)."""

    backend_id = "{name}"
    description = "Example backend: a fixed answer."

    @dataclass(frozen=True)
    class Options:
        model: str = "{name}-model"

    @property
    def model_id(self) -> str:
        return self.options.model

    def load(self) -> None:
        """Load the model or open a connection here (called once, before the first batch)."""

    def generate(self, prompts, params):
        outputs = []
        for prompt in prompts:
            try:
                text = "[question]: What is this about?\\n[answer]: " + prompt.text[:40]
                outputs.append(Generation(text=text, model_id=self.model_id, stop_reason="stop"))
            except Exception as error:  # one prompt's failure, not the batch's
                outputs.append(Generation(text="", model_id=self.model_id, error=str(error)))
        return outputs


@hookimpl
def register_backends(register):
    register({cls})
'''

_STRATEGY = '''\
"""The ``{name}`` strategy: replace the prompt and the parser with your own."""

from __future__ import annotations

import re
from dataclasses import dataclass

from groundset.core import ParsedCandidate, PlannedPrompt, Prompt, Strategy, hookimpl

_PAIR = re.compile(r"\\[question\\]:(.*?)\\[answer\\]:(.*)", re.S)


class {cls}(Strategy):
    """One question per document and sample (an example strategy)."""

    strategy_id = "{name}"
    description = "Example strategy: one question per document."
    fields = ("question", "answer")

    @dataclass(frozen=True)
    class Options:
        instruction: str = "Write one question the document answers, and its answer."

    def plan(self, documents, samples, rng):
        plans = []
        for document in documents:
            for _ in range(samples):  # use only rng for randomness: plans must repeat
                text = f"{{self.options.instruction}}\\n\\n[document]: {{document.text}}\\n\\n"
                plans.append(PlannedPrompt(document, Prompt(text + "[question]:")))
        return plans

    def stop_sequences(self):
        return ("[document]:",)

    def parse(self, generation):
        match = _PAIR.search(generation.text)
        if not match or not match.group(1).strip() or not match.group(2).strip():
            return [ParsedCandidate({{}}, generation.text, "no [question]/[answer] pair")]
        question, answer = match.group(1).strip(), match.group(2).strip()
        return [ParsedCandidate({{"question": question, "answer": answer}}, generation.text)]


@hookimpl
def register_strategies(register):
    register({cls})
'''

_TESTS = {
    "validator": """\
from groundset.core.testing import check_validator, sample_candidates
from {package} import {cls}


def test_keeps_the_validator_contract():
    check_validator({cls}())


def test_scores_what_the_document_supports():
    candidates = [c for c in sample_candidates() if c.parsed]
    scores = {cls}().score(candidates)
    assert all(0.0 <= s["word_support"] <= 1.0 for s in scores)
""",
    "backend": """\
from groundset.core import GenerationParams, Prompt
from groundset.core.testing import check_backend
from {package} import {cls}


def test_keeps_the_backend_contract():
    check_backend({cls}())


def test_answers_every_prompt_in_order():
    prompts = [Prompt("first"), Prompt("second")]
    outputs = {cls}().generate(prompts, GenerationParams())
    assert [o.text.endswith(p.text) for o, p in zip(outputs, prompts)] == [True, True]
""",
    "strategy": """\
from groundset.core import Generation
from groundset.core.testing import check_strategy
from {package} import {cls}


def test_keeps_the_strategy_contract():
    check_strategy({cls}())


def test_parses_a_pair():
    [candidate] = {cls}().parse(Generation(" Why?\\n[answer]: Because.", "m"))
    assert candidate.error is not None  # no [question] marker in this output
    [candidate] = {cls}().parse(Generation("[question]: Why?\\n[answer]: Because.", "m"))
    assert candidate.fields == {{"question": "Why?", "answer": "Because."}}
""",
}

_SOURCES = {"validator": _VALIDATOR, "backend": _BACKEND, "strategy": _STRATEGY}


def new_plugin(name: str, kind: str, parent: Path) -> Path:
    """Write ``groundset-NAME/`` under ``parent``; returns its folder. Refuses to overwrite."""
    if kind not in KINDS:
        raise ConfigError(f"--kind {kind!r}: one of {', '.join(KINDS)}")
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise ConfigError(
            f"plugin name {name!r}: use lower-case letters, digits and _ (it is the {kind} id)"
        )
    package = f"groundset_{name}"
    folder = parent / f"groundset-{name.replace('_', '-')}"
    if folder.exists():
        raise ConfigError(f"{folder} already exists: choose another name or folder")
    values = {
        "name": name,
        "kind": kind,
        "package": package,
        "dist": name.replace("_", "-"),
        "cls": "".join(part.capitalize() for part in name.split("_")) + kind.capitalize(),
    }
    files = {
        "pyproject.toml": _PYPROJECT,
        "README.md": _README,
        f"{package}/__init__.py": _SOURCES[kind],
        f"tests/test_{name}.py": _TESTS[kind],
    }
    for relative, template in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**values), encoding="utf-8")
    return folder
