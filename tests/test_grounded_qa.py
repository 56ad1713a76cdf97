"""The grounded_qa strategy: the seed's prompt word for word, planning, and the output parser."""

from __future__ import annotations

import json
import random
import re
from importlib import resources
from pathlib import Path

import pytest

from groundset.core import ConfigError, Document, Generation, InputError
from groundset.plugins.grounded_qa import (
    GroundedQA,
    format_target,
    load_examples,
    load_instruction,
    parse_output,
    register_strategies,
    render_completion,
)

#: the seed's "Full Prompt" section, byte for byte (tests/data/NOTICE says whose it is)
FULL_PROMPT = Path(__file__).resolve().parent / "data" / "seed-full-prompt.md"


def _seed_block() -> str:
    """The code block of the seed's "Full Prompt" section, without the closing newline."""
    section = FULL_PROMPT.read_text(encoding="utf-8").split("## Full Prompt\n", 1)[1]
    return section.split("```text\n", 1)[1].split("\n```", 1)[0]


def _generation(text: str, error: str | None = None) -> Generation:
    return Generation(text=text, model_id="test", error=error)


# --- packaged data and the seed prompt -----------------------------------------------------------


def test_the_full_prompt_fixture_is_the_seeds_section(requires_shared) -> None:
    seed = requires_shared("seed/generating-synthetic-data.md").read_text(encoding="utf-8")
    section = seed[seed.index("## Full Prompt\n") : seed.index("## Next Steps")]
    assert FULL_PROMPT.read_text(encoding="utf-8") == section


def test_package_data_is_found_through_importlib_resources() -> None:
    data = resources.files("groundset.plugins") / "data"
    for name in ("grounded_qa_prompt.txt", "grounded_qa_examples.jsonl", "NOTICE"):
        assert (data / name).is_file()
    assert "heidloff.net/article/generating-synthetic-data" in (data / "NOTICE").read_text()


def test_packaged_examples_are_the_seeds_four() -> None:
    examples = load_examples()
    assert [e.question for e in examples] == [
        "How much did IBM pay for Red Hat?",
        "When did IBM acquire Red Hat?",
        "Which interfaces does Watson NLP provide?",
        "How does IBM help ecosystem partners?",
    ]
    assert examples[0].document.startswith("IBM Closes Landmark Acquisition of Red Hat; Defines")
    assert "Red Hat\u2019s open hybrid cloud" in examples[0].document
    assert examples[3].document.endswith("data science expertise.   ")


def test_completion_prompt_is_the_seeds_full_prompt_word_for_word() -> None:
    block = _seed_block()
    assert block.endswith("[document]: ")
    target = "Some target document\nwith two lines."
    text = render_completion(load_instruction(), load_examples(), target)
    assert text == block + target + "\n\n[question]:"


def test_instruction_is_the_seeds_first_paragraph() -> None:
    assert load_instruction() == _seed_block().split("\n\n", 1)[0]
    assert load_instruction().startswith("Given the next [document], create a [question]")
    assert load_instruction().endswith("is provided by a helping AI Agent.")


def test_examples_file_matches_a_fresh_extraction_from_the_seed() -> None:
    rest = _seed_block().split("\n\n", 1)[1]
    pattern = re.compile(r"\[document\]: (.*?)\n\n\[question\]: (.*?)\n\[answer\]: (.*?)\n\n", re.S)
    found = [
        dict(zip(("document", "question", "answer"), m, strict=True))
        for m in (match.groups() for match in pattern.finditer(rest))
    ]
    assert found == [e.__dict__ for e in load_examples()]


def test_completion_prompt_through_the_strategy() -> None:
    strategy = GroundedQA(GroundedQA.Options(prompt_format="completion"))
    [planned] = strategy.plan([Document(text="Body.", title="Title")], 1, random.Random(0))
    assert planned.prompt.messages is None
    assert planned.prompt.text.endswith("[document]: Title\nBody.\n\n[question]:")
    assert planned.prompt.text.startswith(load_instruction() + "\n\n[document]: IBM Closes")


def test_chat_prompt_has_system_examples_and_target_turns() -> None:
    strategy = GroundedQA()
    [planned] = strategy.plan([Document(text="Body.")], 1, random.Random(0))
    messages = planned.prompt.messages
    assert messages is not None and len(messages) == 1 + 2 * 4 + 1
    assert messages[0] == {"role": "system", "content": load_instruction()}
    first = load_examples()[0]
    assert messages[1] == {"role": "user", "content": f"[document]: {first.document}"}
    assert messages[2] == {
        "role": "assistant",
        "content": f"[question]: {first.question}\n[answer]: {first.answer}",
    }
    assert messages[-1] == {"role": "user", "content": "[document]: Body."}
    assert planned.prompt.text == render_completion(load_instruction(), load_examples(), "Body.")


# --- planning ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "text", "expected"),
    [
        (None, "Body.", "Body."),
        ("Title", "Body.", "Title\nBody."),
        ("Title", "Title\nBody.", "Title\nBody."),
    ],
)
def test_format_target(title: str | None, text: str, expected: str) -> None:
    assert format_target(Document(text=text, title=title)) == expected


def test_target_equal_to_an_example_is_left_out_of_its_prompt() -> None:
    examples = load_examples()
    strategy = GroundedQA(GroundedQA.Options(prompt_format="completion"))
    document = Document(text=examples[1].document)
    [planned] = strategy.plan([document], 1, random.Random(0))
    assert examples[1].question not in planned.prompt.text
    for other in (examples[0], examples[2], examples[3]):
        assert other.question in planned.prompt.text
    assert planned.prompt.text.count("[document]: ") == 4  # three examples and the target


def test_target_equal_to_an_example_with_title_split_off_is_left_out() -> None:
    example = load_examples()[0]
    title, text = example.document.split("\n", 1)
    [planned] = GroundedQA().plan([Document(text=text, title=title)], 1, random.Random(0))
    assert planned.prompt.messages is not None
    assert len(planned.prompt.messages) == 1 + 2 * 3 + 1
    assert example.question not in planned.prompt.text


def test_plan_gives_samples_prompts_per_document_in_order() -> None:
    documents = [Document(text="First."), Document(text="Second.")]
    planned = GroundedQA().plan(documents, 3, random.Random(0))
    assert [p.document for p in planned] == [documents[0]] * 3 + [documents[1]] * 3


def test_plan_samples_examples_deterministically_with_the_rng() -> None:
    strategy = GroundedQA(GroundedQA.Options(num_examples=2))
    documents = [Document(text=f"Document {i}.") for i in range(5)]
    first = strategy.plan(documents, 4, random.Random(42))
    second = strategy.plan(documents, 4, random.Random(42))
    assert [p.prompt for p in first] == [p.prompt for p in second]
    assert all(len(p.prompt.messages or ()) == 1 + 2 * 2 + 1 for p in first)
    assert len({p.prompt.text for p in first}) > 1  # different example pairs get picked
    questions = [e.question for e in load_examples()]
    for planned in first:  # sampled examples keep the file's order
        positions = [questions.index(q) for q in questions if q in planned.prompt.text]
        assert positions == sorted(positions) and len(positions) == 2


def test_zero_examples_is_a_zero_shot_prompt() -> None:
    strategy = GroundedQA(GroundedQA.Options(num_examples=0, prompt_format="completion"))
    [planned] = strategy.plan([Document(text="Body.")], 1, random.Random(0))
    assert planned.prompt.text == f"{load_instruction()}\n\n[document]: Body.\n\n[question]:"


def test_instruction_override() -> None:
    strategy = GroundedQA(GroundedQA.Options(instruction="Ask one question.", num_examples=0))
    [planned] = strategy.plan([Document(text="Body.")], 1, random.Random(0))
    assert planned.prompt.text.startswith("Ask one question.\n\n[document]: Body.")
    assert planned.prompt.messages is not None
    assert planned.prompt.messages[0]["content"] == "Ask one question."


def test_user_examples_file(tmp_path: Path) -> None:
    path = tmp_path / "examples.jsonl"
    rows = [{"document": "Doc A.", "question": "Q A?", "answer": "A A.", "id": 1}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    strategy = GroundedQA(GroundedQA.Options(examples=str(path), prompt_format="completion"))
    [planned] = strategy.plan([Document(text="Body.")], 1, random.Random(0))
    assert "[document]: Doc A.\n\n[question]: Q A?\n[answer]: A A.\n\n" in planned.prompt.text
    assert "IBM" not in planned.prompt.text


# --- option and file errors ----------------------------------------------------------------------


def test_bad_prompt_format_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"strategies\.grounded_qa\.prompt_format.*'chatml'"):
        GroundedQA(GroundedQA.Options(prompt_format="chatml"))


def test_negative_num_examples_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"strategies\.grounded_qa\.num_examples"):
        GroundedQA(GroundedQA.Options(num_examples=-1))


@pytest.mark.parametrize(
    ("lines", "line_number", "message"),
    [
        (['{"document": "d", "question": "q", "answer": "a"}', "{not json"], 2, "invalid JSON"),
        (['{"document": "d", "question": "q"}'], 1, "missing key 'answer'"),
        (["", '{"document": "d", "question": "q", "answer": "a"}', "[1, 2]"], 3, "JSON object"),
        (['{"document": "d", "question": 7, "answer": "a"}'], 1, "'question' must be"),
    ],
)
def test_bad_examples_file_names_file_and_line(
    tmp_path: Path, lines: list[str], line_number: int, message: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        GroundedQA(GroundedQA.Options(examples=str(path)))
    text = str(caught.value)
    assert text.startswith(f"{path}:{line_number}: ")
    assert message in text
    assert "\n" not in text


def test_missing_and_empty_examples_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="examples file not found"):
        load_examples(tmp_path / "nope.jsonl")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(InputError, match="no examples"):
        load_examples(empty)


# --- parsing -------------------------------------------------------------------------------------

PARSED = [
    # chat-style answer in the seed's format
    (
        "[question]: How much did IBM pay?\n[answer]: About $34 billion.",
        "How much did IBM pay?",
        "About $34 billion.",
    ),
    # completion continuation: the prompt already ends with "[question]:"
    (
        " When was the deal closed?\n[answer]: In July 2019.\n\n[document]: Next doc",
        "When was the deal closed?",
        "In July 2019.",
    ),
    # plain labels, any case
    (
        "Question: What is Kubernetes?\nAnswer: A container platform.",
        "What is Kubernetes?",
        "A container platform.",
    ),
    (
        "QUESTION:What runs the models?\nANSWER:   The NLP runtime.",
        "What runs the models?",
        "The NLP runtime.",
    ),
    # markdown bold in its usual places
    (
        "**[question]**: Who announced it?\n**[answer]**: IBM and Red Hat.",
        "Who announced it?",
        "IBM and Red Hat.",
    ),
    (
        "**Question:** Which APIs exist?\n**Answer:** REST and gRPC.",
        "Which APIs exist?",
        "REST and gRPC.",
    ),
    # the model repeats the document first
    (
        "[document]: IBM Watson NLP runs anywhere.\n\n[question]: Where does Watson NLP run?\n"
        "[answer]: Anywhere.",
        "Where does Watson NLP run?",
        "Anywhere.",
    ),
    # a multi-line answer, then a second pair that must be cut off
    (
        "[question]: What do init containers hold?\n[answer]: Models:\n- predefined\n- custom\n\n"
        "[question]: Another one?\n[answer]: No.",
        "What do init containers hold?",
        "Models:\n- predefined\n- custom",
    ),
    # extra whitespace and both markers on one line
    (
        "  [ Question ] :   Is it open source?   [Answer]:  Yes, it is.  ",
        "Is it open source?",
        "Yes, it is.",
    ),
    # Q:/A: shorthand and a leaked chat-template token
    (
        "Q: Why hybrid cloud?\nA: To run anywhere.<|im_end|>\nuser",
        "Why hybrid cloud?",
        "To run anywhere.",
    ),
    # a chatty preamble before the pair
    (
        "Sure! Here is a pair:\n\n[question]: What is watsonx?\n[answer]: An AI platform.",
        "What is watsonx?",
        "An AI platform.",
    ),
]


@pytest.mark.parametrize(("text", "question", "answer"), PARSED)
def test_parse_finds_the_first_pair(text: str, question: str, answer: str) -> None:
    [candidate] = GroundedQA().parse(_generation(text))
    assert candidate.ok
    assert candidate.fields == {"question": question, "answer": answer}
    assert candidate.raw == text


FAILED = [
    ("", "empty output"),
    ("   \n\n ", "empty output"),
    ("IBM is a company based in Armonk.", "no [question] marker"),
    ("[document]: The model just continues the document.\n\n[answer]: x", "no [question] marker"),
    ("[question]: How much did IBM pay for Red Hat?", "no [answer] marker"),
    ("[question]: Who?\n\n[document]: another\n[answer]: x", "no [answer] marker"),
    ("[question]: How much did IBM pay?\n[answer]:   ", "empty answer"),
    ("[question]: What?\n[answer]: <|im_end|>", "empty answer"),
    ("[question]:\n[answer]: Something.", "empty question"),
]


@pytest.mark.parametrize(("text", "reason"), FAILED)
def test_parse_failures_keep_the_raw_text_and_say_why(text: str, reason: str) -> None:
    [candidate] = GroundedQA().parse(_generation(text))
    assert not candidate.ok
    assert candidate.fields == {}
    assert candidate.raw == text
    assert candidate.error == reason


def test_backend_error_becomes_the_reason() -> None:
    [candidate] = GroundedQA().parse(_generation("", error="CUDA out of memory\ntraceback..."))
    assert candidate.error == "backend error: CUDA out of memory"


def test_parse_output_never_splits_on_bare_words_mid_sentence() -> None:
    text = "[question]: What is the answer: yes or no?\n[answer]: The question: is moot."
    assert parse_output(text).fields == {
        "question": "What is the answer: yes or no?",
        "answer": "The question: is moot.",
    }


def test_stop_sequences_end_one_pair() -> None:
    stops = GroundedQA().stop_sequences()
    assert "\n[document]:" in stops
    assert "\n\n\n" in stops


def test_registers_itself() -> None:
    registered: list[type] = []
    register_strategies(registered.append)
    assert registered == [GroundedQA]
    assert GroundedQA.strategy_id == "grounded_qa"
    assert GroundedQA.fields == ("question", "answer")
