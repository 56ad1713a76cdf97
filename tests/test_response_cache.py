"""The response cache of the LLM calls validators make: the same call is answered once, and a
change in anything that decides the reply (model, prompt, any generation setting, the seed)
misses it."""

from __future__ import annotations

import dataclasses

import pytest
from click.testing import CliRunner

from groundset.core import Candidate, Document, GenerationParams, Prompt, create_backend
from groundset.core.cli import cli
from groundset.core.response_cache import CachedBackend, ResponseCache
from groundset.validators.judge import JudgeValidator

REPLY = "Groundedness: 4\nRelevance: 5"


def judge(tmp_path, **options) -> JudgeValidator:
    backend = {"outputs": [REPLY]}
    backend.update(options.pop("backend_options", {}))
    return JudgeValidator(JudgeValidator.Options(
        backend="mock", backend_options=backend, cache_path=str(tmp_path / "r.duckdb"), **options
    ))  # fmt: skip


def candidates(n: int = 3) -> list[Candidate]:
    document = Document(text="The museum opened in 1994.")
    return [
        Candidate(f"c{i}", "r", "w", document, {"question": "When?", "answer": f"In 199{i}."}, "")
        for i in range(n)
    ]


def inner_calls(validator: JudgeValidator) -> int:
    backend = validator._backend
    assert isinstance(backend, CachedBackend)
    return sum(len(prompts) for prompts, _ in backend.inner.calls)


def test_scoring_again_with_the_same_judge_makes_no_call(tmp_path, mock_backend):
    first = judge(tmp_path)
    scores = first.score(candidates())
    assert inner_calls(first) == 3 and first._backend.hits == 0
    again = judge(tmp_path)  # a new process would build a new validator too
    assert again.score(candidates()) == scores
    assert inner_calls(again) == 0 and again._backend.hits == 3
    # one new candidate among the kept ones: only it is asked
    third = judge(tmp_path)
    third.score(candidates(4))
    assert inner_calls(third) == 1 and third._backend.hits == 3


@pytest.mark.parametrize(
    "change",
    [
        {"seed": 1},
        {"temperature": 0.5},
        {"max_new_tokens": 30},
        {"rubric": "Grade it. {document} {question} {answer}"},
        {"backend_options": {"outputs": [REPLY, REPLY]}},  # another backend setting
    ],
)
def test_any_change_that_decides_the_reply_misses_the_cache(tmp_path, mock_backend, change):
    judge(tmp_path).score(candidates())
    changed = judge(tmp_path, **change)
    changed.score(candidates())
    assert inner_calls(changed) == 3 and changed._backend.hits == 0


def test_failed_replies_are_asked_again(tmp_path, mock_backend):
    cache = ResponseCache(tmp_path / "r.duckdb")
    backend = create_backend("mock", {"outputs": [REPLY]}, cache=str(cache.path))
    prompt = Prompt("grade this")
    params = GenerationParams(temperature=0.0, do_sample=False)
    key_reply = backend.generate([prompt], params)[0]
    assert key_reply.text == REPLY
    failed = dataclasses.replace(key_reply, error="timeout")
    cache.put([("another-key", "mock", failed)])
    assert cache.get(["another-key"]) == {}
    assert [row["entries"] for row in cache.stats()] == [1]


def test_the_cache_command_reports_and_clears(tmp_path, mock_backend):
    judge(tmp_path).score(candidates())
    judge(tmp_path).score(candidates())
    path = str(tmp_path / "r.duckdb")
    stats = CliRunner().invoke(cli, ["cache", "stats", "--path", path])
    assert stats.exit_code == 0, stats.output
    assert "mock" in stats.output and "3 replies, 3 hits" in stats.output
    cleared = CliRunner().invoke(cli, ["cache", "clear", "--model", "nothing", "--path", path])
    assert "removed 0 replies" in cleared.output
    cleared = CliRunner().invoke(cli, ["cache", "clear", "--path", path])
    assert cleared.exit_code == 0 and "removed 3 replies" in cleared.output
    empty = CliRunner().invoke(cli, ["cache", "stats", "--path", path])
    assert "empty" in empty.output


def test_a_file_that_is_not_a_cache_is_a_one_line_error(tmp_path):
    bad = tmp_path / "r.duckdb"
    bad.write_text("not a database")
    result = CliRunner().invoke(cli, ["cache", "stats", "--path", str(bad)])
    assert result.exit_code == 2
    assert f"response cache {bad}: not a DuckDB file" in result.output
    assert "Traceback" not in result.output


def test_credentials_and_pacing_are_not_part_of_the_key(tmp_path, mock_backend):
    from groundset.core.response_cache import response_key

    backend = create_backend("mock", {"outputs": [REPLY]})
    prompt, params = Prompt("p"), GenerationParams()
    base = response_key(backend, {"outputs": [REPLY]}, prompt, params)
    assert response_key(backend, {"outputs": [REPLY], "api_key": "s3cret"}, prompt, params) == base
    assert response_key(backend, {"outputs": ["other"]}, prompt, params) != base
    assert response_key(backend, {"outputs": [REPLY]}, Prompt("p", ({"role": "user",
                        "content": "p"},)), params) != base  # fmt: skip


def test_a_cache_held_by_another_process_answers_without_it(tmp_path, mock_backend):
    import subprocess
    import sys
    import time

    path = tmp_path / "r.duckdb"
    ResponseCache(path).put([])  # nothing to keep: the file is not even created
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]);"
         " print('held', flush=True); time.sleep(60)", str(path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        validator = judge(tmp_path)
        started = time.perf_counter()
        with pytest.warns(UserWarning, match="in use"):
            scores = validator.score(candidates())
        assert time.perf_counter() - started < 30  # it neither waits for the lock nor fails
        assert [s["groundedness"] for s in scores] == [0.75] * 3
        assert inner_calls(validator) == 3
    finally:
        holder.kill()
        holder.wait()


def test_the_cache_settings_leave_the_recorded_version_alone(tmp_path):
    from groundset.core.scoring import version_tag

    cached = JudgeValidator(JudgeValidator.Options(cache_path=str(tmp_path / "a.duckdb")))
    uncached = JudgeValidator(JudgeValidator.Options(cache=False))
    rubric = JudgeValidator(JudgeValidator.Options(rubric="Grade {document} {question} {answer}"))
    assert version_tag(cached) == version_tag(uncached) != version_tag(rubric)
