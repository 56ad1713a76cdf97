"""Packaging: every code folder is a listed subpackage, bare folder imports are banned, and the
CLI starts without loading any model library."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "transformers", "sentence_transformers", "ibm_watsonx_ai", "nltk", "gguf")


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _code_folders() -> dict[str, str]:
    """groundset.X -> folder, for every folder at the root (or below) holding an __init__.py."""
    found = {}
    for init in REPO.glob("*/**/__init__.py"):
        folder = init.parent.relative_to(REPO)
        # training/ builds the shipped NLI model; it is run from a checkout, never installed
        if folder.parts[0] in ("tests", "docs", "bench", "examples", "build", "training") or any(
            part.startswith(".") for part in folder.parts
        ):
            continue
        found["groundset." + ".".join(folder.parts)] = str(folder)
    return found


def test_every_code_folder_is_a_listed_subpackage():
    setuptools = _pyproject()["tool"]["setuptools"]
    folders = _code_folders()
    assert {
        "groundset.core",
        "groundset.backends",
        "groundset.validators",
        "groundset.plugins",
    } <= set(folders)
    missing = sorted(set(folders) - set(setuptools["packages"]))
    assert not missing, f"add to [tool.setuptools] packages: {missing}"
    for package, folder in folders.items():
        top = ".".join(package.split(".")[:2])
        assert top in setuptools["package-dir"], f"add {top} to [tool.setuptools.package-dir]"
        assert folder.startswith(setuptools["package-dir"][top])


def test_no_root_init_and_no_tests_init():
    assert not (REPO / "__init__.py").exists()
    assert not (REPO / "tests" / "__init__.py").exists()


def test_bare_folder_imports_are_banned_by_ruff(tmp_path):
    for statement in ("import core", "from validators import overlap", "import plugins.loaders"):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "ruff",
                "check",
                "--no-cache",
                "--select",
                "TID251",
                "--config",
                str(REPO / "pyproject.toml"),
                "--stdin-filename",
                "x.py",
                "-",
            ],
            input=statement + "\n",
            capture_output=True,
            text=True,
        )
        assert result.returncode == 1 and "TID251" in result.stdout, statement
    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--no-cache",
            "--select",
            "TID251",
            "--config",
            str(REPO / "pyproject.toml"),
            "--stdin-filename",
            "x.py",
            "-",
        ],
        input="import groundset.core\n",
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0


def test_cli_import_and_plugin_loading_load_no_model_library():
    code = (
        "import sys, json\n"
        "import groundset.core.cli\n"
        "from groundset.core.manager import load_plugins\n"
        "load_plugins()\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == []


def test_package_data_ships_with_the_wheel():
    data = _pyproject()["tool"]["setuptools"]["package-data"]
    assert "data/*" in data["groundset.plugins"]
    assert (REPO / "plugins" / "data" / "grounded_qa_examples.jsonl").exists()


def test_built_wheel_holds_every_module_and_the_data(tmp_path):
    import zipfile

    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    [wheel] = tmp_path.glob("groundset-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for package, folder in _code_folders().items():
        for module in (REPO / folder).glob("*.py"):
            assert f"{package.replace('.', '/')}/{module.name}" in names
    assert "groundset/plugins/data/grounded_qa_prompt.txt" in names
    assert not any(n.startswith(("core/", "tests/")) for n in names)
