from groundset.core import GenerationParams, Prompt
from groundset.core.testing import check_backend

from groundset_example import EchoBackend


def test_echo_keeps_the_backend_contract():
    check_backend(EchoBackend())


def test_echo_answers_with_the_first_sentence_of_the_last_document():
    prompt = Prompt("[document]: Old news.\n\n[document]: New text here. More text.\n\n")
    [generation] = EchoBackend().generate([prompt], GenerationParams())
    assert generation.text == (
        "[question]: What does the document say first?\n[answer]: New text here."
    )
    assert generation.model_id == "echo-1" and generation.error is None


def test_a_prompt_without_a_document_fails_alone():
    prompts = [Prompt("no document here"), Prompt("[document]: Fine.")]
    bad, good = EchoBackend().generate(prompts, GenerationParams())
    assert bad.error == "no [document]: in prompt"
    assert good.error is None and good.text.endswith("[answer]: Fine.")
