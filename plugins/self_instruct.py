"""``self_instruct``: new instruction-following tasks from a few examples, the way Self-Instruct
and Stanford Alpaca turned 175 human-written tasks into 52k, with every task kept and scored.

The prompt is Alpaca's ``prompt.txt`` followed by ``k`` example tasks in its ``###`` /
``N. Instruction:`` / ``N. Input:`` / ``N. Output:`` format, ending at the next task's
``Instruction:`` for the model to continue. Examples are sampled from the seed tasks and, when
bootstrapping toward a target, from the machine tasks accepted so far (Self-Instruct's mix)."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

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

__all__ = ["SelfInstruct", "Task", "encode_prompt", "load_seed_tasks", "parse_tasks"]

#: stop reasons meaning the output hit the token limit, across backends
LENGTH_STOPS = frozenset({"length", "max_tokens", "max_new_tokens", "token_limit"})
_FIELD = re.compile(r"\d+\s?\.\s?(Instruction|Input|Output):")
#: the one pseudo-document of a run without documents: candidates need a document row
SEED_POOL_DOCUMENT = Document(
    text="Self-Instruct tasks: no source document.",
    title="self_instruct",
    source="groundset.plugins.self_instruct",
)


@dataclass(frozen=True)
class Task:
    instruction: str
    input: str
    output: str

    def as_fields(self) -> dict[str, str]:
        return {"instruction": self.instruction, "input": self.input, "output": self.output}


def _data(name: str) -> Any:
    return resources.files("groundset.plugins") / "data" / name


def load_seed_tasks(path: str | Path | None = None) -> list[Task]:
    """Seed tasks in Self-Instruct's JSONL format (``instruction`` plus ``instances`` of
    ``input``/``output``), or flat ``instruction``/``input``/``output`` rows."""
    source = Path(path) if path else _data("self_instruct_seed_tasks.jsonl")
    tasks = []
    with source.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                instance = (row.get("instances") or [row])[0]
                tasks.append(
                    Task(
                        str(row["instruction"]),
                        str(instance.get("input") or ""),
                        str(instance.get("output") or ""),
                    )
                )
            except (ValueError, KeyError, TypeError, AttributeError) as error:
                raise InputError(f"{source}:{number}: not a seed task ({error})") from None
    if not tasks:
        raise InputError(f"{source}: no seed tasks")
    return tasks


def encode_prompt(header: str, tasks: Sequence[Task]) -> str:
    """Alpaca's ``encode_prompt``: the header, each task numbered, then the next number's
    ``Instruction:`` for the model to continue."""
    prompt = header.rstrip("\n") + "\n"
    for index, task in enumerate(tasks, 1):
        instruction = re.sub(r"\s+", " ", task.instruction).strip().rstrip(":")
        prompt += "###\n"
        prompt += f"{index}. Instruction: {instruction}\n"
        prompt += f"{index}. Input:\n{task.input or '<noinput>'}\n"
        prompt += f"{index}. Output:\n{task.output}\n"
    prompt += "###\n"
    prompt += f"{len(tasks) + 1}. Instruction:"
    return prompt


def parse_tasks(text: str, stop_reason: str | None = None) -> list[ParsedCandidate]:
    """Every task in a completion that continues an ``encode_prompt`` prompt. A task missing a
    part is a failure saying which; the last one, when the output hit the length limit, is a
    failure saying it was cut off (Alpaca drops both silently)."""
    blocks = ("0. Instruction:" + text).split("###")
    found: list[ParsedCandidate] = []
    for index, block in enumerate(blocks):
        raw = block[len("0. Instruction:") :] if index == 0 else block
        if not raw.strip():
            continue
        last = index == len(blocks) - 1
        if last and stop_reason in LENGTH_STOPS:
            found.append(ParsedCandidate({}, raw, "cut off by the length limit"))
            continue
        parts = _FIELD.split(block)
        labels = parts[1::2]
        if labels != ["Instruction", "Input", "Output"]:
            missing = [name for name in ("Instruction", "Input", "Output") if name not in labels]
            reason = f"missing {', '.join(missing)}" if missing else "parts out of order"
            found.append(ParsedCandidate({}, raw, f"task {len(found) + 1}: {reason}"))
            continue
        instruction, given, output = (p.strip() for p in parts[2::2])
        given = "" if given.lower() == "<noinput>" else given
        if not instruction:
            found.append(ParsedCandidate({}, raw, f"task {len(found) + 1}: empty instruction"))
            continue
        found.append(ParsedCandidate(Task(instruction, given, output).as_fields(), raw))
    if not found:
        found.append(ParsedCandidate({}, text, "no task in the output"))
    return found


class SelfInstruct(Strategy):
    """Alpaca's prompt with ``num_examples`` sampled tasks; parses every task in the output."""

    strategy_id = "self_instruct"
    description = "Self-Instruct / Alpaca: new instruction, input, output tasks from examples"
    fields = ("instruction", "input", "output")
    needs_documents = False
    bootstraps = True

    @dataclass(frozen=True)
    class Options:
        #: JSONL seed tasks (Self-Instruct's format); default: the 175 of Self-Instruct
        seed_tasks: str | None = None
        #: example tasks per prompt (Alpaca: 3)
        num_examples: int = 3
        #: of those, how many come from accepted machine tasks once there are some
        #: (Self-Instruct: 2 of 8); 0 keeps to the seed tasks, as Alpaca
        machine_examples: int = 1
        #: prompts generated per round
        prompts_per_round: int = 8
        #: replaces Alpaca's prompt.txt
        prompt: str | None = None

    def __init__(self, options: SelfInstruct.Options | None = None) -> None:
        super().__init__(options)
        o = self.options
        if o.num_examples < 1:
            raise ConfigError("num_examples must be at least 1")
        if not 0 <= o.machine_examples <= o.num_examples:
            raise ConfigError("machine_examples must be between 0 and num_examples")
        if o.prompts_per_round < 1:
            raise ConfigError("prompts_per_round must be at least 1")
        self.seed_tasks = load_seed_tasks(o.seed_tasks)
        if len(self.seed_tasks) < o.num_examples:
            raise ConfigError(
                f"num_examples is {o.num_examples} but there are {len(self.seed_tasks)} seed tasks"
            )
        self.header = o.prompt or _data("self_instruct_prompt.txt").read_text(encoding="utf-8")

    def plan(
        self, documents: Sequence[Document], samples: int, rng: random.Random
    ) -> list[PlannedPrompt]:
        """The first round: without a target, the whole run."""
        return self.plan_round(0, [], rng)

    def plan_round(
        self, round_index: int, accepted: Sequence[dict[str, str]], rng: random.Random
    ) -> list[PlannedPrompt]:
        """``prompts_per_round`` prompts, mixing seed tasks with accepted machine tasks."""
        machine = [
            Task(a["instruction"], a.get("input", ""), a.get("output", "")) for a in accepted
        ]
        o = self.options
        prompts = []
        for _ in range(o.prompts_per_round):
            from_machine = min(o.machine_examples, len(machine))
            examples = rng.sample(self.seed_tasks, o.num_examples - from_machine)
            examples += rng.sample(machine, from_machine)
            rng.shuffle(examples)
            prompts.append(
                PlannedPrompt(SEED_POOL_DOCUMENT, Prompt(encode_prompt(self.header, examples)))
            )
        return prompts

    def stop_sequences(self) -> tuple[str, ...]:
        return ("\n20.", "\n20 .")  # Alpaca's: the prompt asks for 20 tasks

    def parse(self, generation: Generation) -> list[ParsedCandidate]:
        if generation.error is not None:
            return [ParsedCandidate({}, generation.text, f"backend error: {generation.error}")]
        return parse_tasks(generation.text, generation.stop_reason)


@hookimpl
def register_strategies(register: Callable[[type], type]) -> None:
    """Register the ``self_instruct`` strategy."""
    register(SelfInstruct)
