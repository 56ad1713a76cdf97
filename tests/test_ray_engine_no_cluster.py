"""``--engine ray`` without a cluster: its options are checked, bootstrapping runs stay local,
a missing Ray names the extra to install, a private cluster reports no usage and keeps Ray's
token notice out of the progress bar, and the model validator the cluster tests compare is
batch-sensitive."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the Ray engine needs the [ray] extra")

from groundset.core.errors import ConfigError  # noqa: E402
from groundset.core.factory import create_plugin  # noqa: E402
from groundset.core.records import Candidate, Document  # noqa: E402
from groundset.core.runner import prepare_run, start_run  # noqa: E402
from groundset.core.settings import settings_from_config  # noqa: E402
from groundset.core.store import Store  # noqa: E402
from groundset.core.testing import MockBackendPlugin, registered_plugin  # noqa: E402
from tests.ray_helpers import ray_config, write_documents  # noqa: E402


@pytest.fixture(scope="module")
def documents(tmp_path_factory) -> Path:
    return write_documents(tmp_path_factory.mktemp("ray-docs") / "plants.jsonl")


def test_the_model_validator_is_batch_sensitive():
    """Otherwise the parity above would prove less: scoring the same candidates in other
    batches changes grounding_embedding's floats, so equal rows need equal batches."""
    validator = create_plugin("validator", "grounding_embedding", {})
    docs = [
        Document(title=f"d{i}", text=f"Plant {i} in Ohio made {i * 7} engines.") for i in range(4)
    ]
    candidates = [
        Candidate(f"c{i}", "r", f"w{i}", docs[i % 4], {"question": "How many?", "answer": a}, "")
        for i, a in enumerate(["It made 7 engines.", "In Ohio.", "Ana.", "It made 14."] * 2)
    ]
    together = validator.score(candidates)
    alone = [r for c in candidates for r in validator.score([c])]
    assert together != alone


def test_bootstrapping_runs_stay_on_the_local_engine(tmp_path, documents):
    config = ray_config(
        documents, tmp_path / "t.duckdb", {"strategy": "self_instruct", "target": 10}
    )
    settings = settings_from_config(config, "test.toml", tmp_path)
    with registered_plugin(MockBackendPlugin(), "mock-backend"):
        prepared = prepare_run(settings)
    with Store(tmp_path / "t.duckdb") as store, pytest.raises(ConfigError, match="local engine"):
        start_run(prepared, store, engine="ray")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"generate_actors": 0}, "ray.generate_actors and ray.validate_actors"),
        ({"max_retries": -1}, "ray.max_retries must be >= 0"),
        ({"validate_num_gpus": -1}, "ray CPU and GPU counts"),
        ({"actors": 2}, "actors"),
    ],
)
def test_ray_options_are_checked(tmp_path, documents, options, message):
    config = ray_config(documents, tmp_path / "x.duckdb", **options)
    with pytest.raises(ConfigError, match=message):
        settings_from_config(config, "x.toml", tmp_path)


def test_without_ray_the_engine_names_the_extra(monkeypatch):
    from groundset.core import ray_engine

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ConfigError, match=r"pip install 'groundset\[ray\]'"):
        ray_engine._import_ray()


def test_a_private_cluster_reports_no_usage_unless_asked(monkeypatch):
    from groundset.core import ray_engine

    monkeypatch.delenv("RAY_USAGE_STATS_ENABLED", raising=False)
    with ray_engine._no_usage_reports():
        assert os.environ["RAY_USAGE_STATS_ENABLED"] == "0"
    assert "RAY_USAGE_STATS_ENABLED" not in os.environ
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "1")
    with ray_engine._no_usage_reports():
        assert os.environ["RAY_USAGE_STATS_ENABLED"] == "1"
    assert os.environ["RAY_USAGE_STATS_ENABLED"] == "1"


def test_rays_token_notice_is_kept_out_of_the_progress_bar(capsys):
    """The notice Ray logs on every private cluster (token authentication on, its default) is
    held back while the cluster starts; the logger is Ray's own (a rename would show here)."""
    import importlib

    from groundset.core import ray_engine

    module = importlib.import_module("ray._private.authentication.authentication_token_setup")
    assert module.logger.name == ray_engine.TOKEN_NOTICE
    logger = logging.getLogger(ray_engine.TOKEN_NOTICE)
    handler = logging.StreamHandler(sys.stderr)
    logger.addHandler(handler)
    try:
        with ray_engine._quiet(ray_engine.TOKEN_NOTICE):
            module._warn_token_auth_enabled()
        assert capsys.readouterr().err == ""
        module._warn_token_auth_enabled()
        assert "Token authentication is enabled" in capsys.readouterr().err
    finally:
        logger.removeHandler(handler)
