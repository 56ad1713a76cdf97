"""The public API is what plugins use: the built-in plugins (and the example plugin, the
scaffold and the docs' remote backend) import only the public modules of ``groundset.core``,
each public module keeps its ``__all__`` and loads no model library, the docs name every public
helper, and the remote backend of docs/writing-plugins.md works against a real server."""

from __future__ import annotations

import ast
import importlib
import json
import re
import subprocess
import sys
import threading
import time
import tomllib
import types
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from groundset.core import BackendError, GenerationParams, Prompt
from groundset.core.options import build_options
from groundset.core.scaffold import KINDS, new_plugin

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
HEAVY = ("torch", "transformers", "sentence_transformers", "ibm_watsonx_ai", "nltk", "gguf")

#: the documented public modules of ``groundset.core`` (docs/plugin-hooks.md); only the names
#: in their ``__all__`` are public
PUBLIC_MODULES = (
    "groundset.core",
    "groundset.core.remote",
    "groundset.core.quiet_loading",
    "groundset.core.testing",
)
#: public packages whose submodules are public too (test helpers such as fake servers)
PUBLIC_PACKAGES = ("groundset.core.testing",)
#: folder -> package of the built-in plugins
BUILTIN_PLUGINS = {
    "backends": "groundset.backends",
    "validators": "groundset.validators",
    "plugins": "groundset.plugins",
}


def is_public(module: str) -> bool:
    return module in PUBLIC_MODULES or module.startswith(tuple(p + "." for p in PUBLIC_PACKAGES))


def _exported(module: str) -> set[str] | None:
    """The module's ``__all__``, or None where it has none (then any name without a leading
    underscore counts as exported)."""
    names = getattr(importlib.import_module(module), "__all__", None)
    return None if names is None else set(names)


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    parts = package.split(".")
    base = parts[: len(parts) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def non_public_imports(source: str, package: str, filename: str = "<source>") -> list[str]:
    """Each import of a non-public part of ``groundset.core`` in ``source`` (a module of
    ``package``), anywhere in it (functions, classes, ``TYPE_CHECKING`` blocks included), as
    ``"LINE: what"``."""
    found = []

    def check(line: int, module: str, name: str | None = None) -> None:
        if module != "groundset.core" and not module.startswith("groundset.core."):
            return  # ``from groundset import core`` is the public package itself
        if not is_public(module):
            if f"{line}: {module}" not in found:  # once per statement, not per name
                found.append(f"{line}: {module}")
            return
        if name is None or name == "*":
            return
        exported = _exported(module)
        public = name in exported if exported is not None else not name.startswith("_")
        if not public and not is_public(f"{module}.{name}"):
            found.append(f"{line}: {module}.{name} (not in {module}.__all__)")

    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                check(node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node, package)
            for alias in node.names:
                check(node.lineno, module, alias.name)
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (isinstance(node.func, ast.Name) and node.func.id == "__import__")
                or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
            )
        ):
            check(node.lineno, node.args[0].value)
    return found


def _package_of(path: Path, root: Path, package: str) -> str:
    """The package a module file belongs to (``package`` for files at ``root``)."""
    return ".".join([package, *path.parent.relative_to(root).parts])


def _violations(root: Path, package: str) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if any(part.startswith(".") or part == "__pycache__" for part in parts):
            continue
        source = path.read_text(encoding="utf-8")
        where = path.relative_to(REPO) if path.is_relative_to(REPO) else path
        for hit in non_public_imports(source, _package_of(path, root, package), str(path)):
            found.append(f"{where}:{hit}")
    return found


def test_the_built_in_plugins_import_only_the_public_api():
    found = [
        hit
        for folder, package in BUILTIN_PLUGINS.items()
        for hit in _violations(REPO / folder, package)
    ]
    assert not found, (
        "built-in plugins must use only the public API (groundset.core and "
        f"{', '.join(PUBLIC_MODULES[1:])}): export what they need or move it; found\n"
        + "\n".join(found)
    )


def test_the_example_plugin_and_the_scaffold_import_only_the_public_api(tmp_path):
    example = DOCS / "example-plugin"
    found = _violations(example / "groundset_example", "groundset_example")
    for kind in KINDS:
        folder = new_plugin(f"check_{kind}", kind, tmp_path)
        package = f"groundset_check_{kind}"
        found += _violations(folder / package, package)
    assert not found, "\n".join(found)


@pytest.mark.parametrize(
    ("source", "package", "expected"),
    [
        ("from groundset.core import Backend, scrub\nimport groundset.core.remote", "x", []),
        ("from groundset.core.remote import RemoteBackend, resolve_env", "x", []),
        ("from groundset.core.quiet_loading import quiet_loading", "x", []),
        ("from groundset.core import remote, testing\nfrom groundset import core", "x", []),
        ("from groundset.validators.models import embedder", "groundset.validators", []),
        ("from . import models\nfrom .nli import nli_model", "groundset.validators", []),
        ("from groundset.core.errors import GroundsetWarning", "x", ["1: groundset.core.errors"]),
        ("import groundset.core.store as s", "x", ["1: groundset.core.store"]),
        (
            "def f():\n    if True:\n        from groundset.core.threads import DaemonThreadPool",
            "x",
            ["3: groundset.core.threads"],
        ),
        (
            "class C:\n    def m(self):\n        import groundset.core.secrets",
            "x",
            ["3: groundset.core.secrets"],
        ),
        (
            "from groundset.core import hookspecs",
            "x",
            ["1: groundset.core.hookspecs (not in groundset.core.__all__)"],
        ),
        (
            "from groundset.core.remote import DaemonThreadPool",
            "x",
            ["1: groundset.core.remote.DaemonThreadPool (not in groundset.core.remote.__all__)"],
        ),
        ("from groundset import core\nfrom groundset.core import *", "x", []),
        (
            "from ..core import records",
            "groundset.backends",
            ["1: groundset.core.records (not in groundset.core.__all__)"],
        ),
        ("from ..core.records import Prompt", "groundset.backends", ["1: groundset.core.records"]),
        (
            "import importlib\nimportlib.import_module('groundset.core.engine')",
            "x",
            ["2: groundset.core.engine"],
        ),
        ("__import__('groundset.core.manager')", "x", ["1: groundset.core.manager"]),
    ],
)
def test_the_import_check_finds_every_kind_of_import(source, package, expected):
    assert non_public_imports(source, package) == expected


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_every_public_module_has_a_docstring_and_every_name_it_exports(module):
    loaded = importlib.import_module(module)
    assert (loaded.__doc__ or "").strip(), f"{module} needs a docstring: it is public"
    names = getattr(loaded, "__all__", None)
    assert names, f"{module} must name its public API in __all__"
    missing = [name for name in names if not hasattr(loaded, name)]
    assert not missing, f"{module}.__all__ names what it lacks: {missing}"


def test_the_public_modules_load_no_model_library():
    code = (
        "import sys, json\n"
        + "".join(f"import {module}\n" for module in PUBLIC_MODULES)
        + f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == []


def _remote_section() -> str:
    text = (DOCS / "writing-plugins.md").read_text(encoding="utf-8")
    start = text.index("\n## Writing a remote backend\n")
    following = re.search(r"^## ", text[start + 2 :], re.M)
    return text[start : start + 2 + following.start()] if following else text[start:]


def test_the_docs_name_every_public_module_and_remote_helper():
    hooks = (DOCS / "plugin-hooks.md").read_text(encoding="utf-8")
    for module in PUBLIC_MODULES:
        assert f"`{module}`" in hooks, f"list {module} in docs/plugin-hooks.md"
    section = _remote_section()
    remote = importlib.import_module("groundset.core.remote")
    for name in remote.__all__:
        assert f"`{name}" in section, f"document {name} in docs/writing-plugins.md"
        assert f"`{name}" in hooks, f"list {name} in docs/plugin-hooks.md"
    core = importlib.import_module("groundset.core")
    for name in ("scrub", "json_lines", "DaemonThreadPool"):
        assert name in core.__all__ and f"`{name}" in hooks, name


# --- the remote backend of docs/writing-plugins.md, against a server on loopback --------------

GOOD_KEY = "acme-key-0123456789"


class _AcmeHandler(BaseHTTPRequestHandler):
    """Acme's API as the example expects it: ``GET /models`` checks the key, ``POST /generate``
    answers ``answer: PROMPT``, with failures picked by the prompt text."""

    attempts: dict[str, int]

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.headers.get("Authorization") != f"Bearer {GOOD_KEY}":
            self._send(401, {"error": "bad key"})
        else:
            self._send(200, {"models": ["acme-large"]})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["prompt"]
        seen = self.attempts[prompt] = self.attempts.get(prompt, 0) + 1
        if prompt == "busy" and seen == 1:
            self._send(429, {"error": "slow down"}, {"Retry-After": "1"})
        elif prompt == "echo the key":  # a server that echoes the request back in its error
            self._send(400, {"error": f"bad request from {self.headers['Authorization']}"})
        elif prompt == "revoked":
            self._send(401, {"error": "key revoked"})
        else:
            self._send(200, {"text": f"answer: {prompt}", "tokens": 2, "stop_reason": "eos"})


@pytest.fixture
def acme_server() -> Iterator[tuple[str, dict[str, int]]]:
    attempts: dict[str, int] = {}
    handler = type("Handler", (_AcmeHandler,), {"attempts": attempts})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", attempts
    server.shutdown()
    server.server_close()


@pytest.fixture
def acme() -> Iterator[types.ModuleType]:
    """The example backend of "Writing a remote backend", as the module a plugin would have."""
    code = re.search(r"```python\n(.*?)```", _remote_section(), re.S)
    assert code, "docs/writing-plugins.md: the remote backend example is gone"
    source = code.group(1)
    assert non_public_imports(source, "groundset_acme") == []
    module = types.ModuleType("groundset_acme_doc_example")
    sys.modules[module.__name__] = module
    try:
        exec(compile(source, "docs/writing-plugins.md", "exec"), module.__dict__)
        yield module
    finally:
        del sys.modules[module.__name__]


def test_the_documented_config_builds_the_example_backend(acme, monkeypatch):
    from groundset.core.remote import resolve_env

    toml = re.search(r"```toml\n(.*?)```", _remote_section(), re.S)
    assert toml
    table = tomllib.loads(toml.group(1))["backends"]["acme"]
    monkeypatch.setenv("ACME_API_KEY", GOOD_KEY)
    values = resolve_env(table, "[backends.acme]")
    backend = acme.AcmeBackend(build_options(acme.AcmeOptions, values, "[backends.acme]"))
    assert backend.options.api_key == GOOD_KEY and backend.options.concurrency == 16
    assert backend.model_id == "acme-large" and backend.secrets() == [GOOD_KEY]
    assert "verify" in backend.operational_options and "concurrency" in backend.operational_options


def test_the_example_remote_backend_retries_records_and_scrubs(acme, acme_server):
    url, attempts = acme_server
    options = acme.AcmeOptions(model="acme-large", base_url=url, api_key=GOOD_KEY, concurrency=4)
    backend = acme.AcmeBackend(options)
    try:
        prompts = [Prompt("hello"), Prompt("busy"), Prompt("echo the key"), Prompt("bye")]
        hello, busy, echoed, bye = backend.generate(prompts, GenerationParams(max_new_tokens=8))
    finally:
        backend.close()
    assert (hello.text, hello.output_tokens, hello.stop_reason) == ("answer: hello", 2, "eos")
    assert bye.text == "answer: bye" and hello.model_id == "acme-large"
    # the 429 was retried after at least the second the server asked for
    assert busy.error is None and busy.text == "answer: busy" and attempts["busy"] == 2
    assert busy.latency_s is not None and busy.latency_s >= 1.0
    # a 400 is this prompt's error, not retried, with the key scrubbed
    assert attempts["echo the key"] == 1
    assert echoed.error and "HTTP 400" in echoed.error
    assert GOOD_KEY not in echoed.error and "***" in echoed.error


def test_the_example_remote_backend_stops_on_bad_credentials(acme, acme_server):
    url, attempts = acme_server
    wrong = acme.AcmeBackend(acme.AcmeOptions(model="m", base_url=url, api_key="wrong-key-42"))
    with pytest.raises(BackendError, match="401"):
        wrong.load()  # connect checks the key before the first batch
    backend = acme.AcmeBackend(acme.AcmeOptions(model="m", base_url=url, api_key=GOOD_KEY))
    started = time.monotonic()
    try:
        with pytest.raises(BackendError, match="refused the credentials") as stopped:
            backend.generate([Prompt("revoked")], GenerationParams())
    finally:
        backend.close()
    assert GOOD_KEY not in str(stopped.value)
    assert attempts["revoked"] == 1 and time.monotonic() - started < 10
