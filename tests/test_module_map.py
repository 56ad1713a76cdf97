"""docs/architecture.md opens with a map of the package: one line per module saying its job. A
module added, moved or removed without its line changing fails here, so the map stays true."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE_FOLDERS = ("core", "backends", "validators", "plugins")
#: a map line: "- `core/engine.py`: what it does"
LINE = re.compile(r"^- `(?P<path>[\w/]+\.py)`: (?P<job>\S.*)$")


def _only_a_docstring(path: Path) -> bool:
    body = ast.parse(path.read_text(encoding="utf-8")).body
    return len(body) <= 1 and all(isinstance(node, ast.Expr) for node in body)


def modules_on_disk() -> set[str]:
    """Every module of the package, but ``__init__.py`` files that hold nothing but a
    docstring (they only make a folder a package)."""
    found = set()
    for folder in PACKAGE_FOLDERS:
        for path in (REPO / folder).rglob("*.py"):
            if path.name == "__init__.py" and _only_a_docstring(path):
                continue
            found.add(path.relative_to(REPO).as_posix())
    return found


def module_map() -> dict[str, str]:
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text.split("## Module map", 1)[1].split("\n## ", 1)[0]
    lines = [LINE.match(line) for line in section.splitlines()]
    return {m["path"]: m["job"] for m in lines if m}


def test_the_module_map_names_every_module_and_only_those():
    documented, present = set(module_map()), modules_on_disk()
    assert not present - documented, f"add to the module map: {sorted(present - documented)}"
    assert not documented - present, f"no longer exist: {sorted(documented - present)}"


def test_the_module_map_comes_first_and_each_line_says_a_job():
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    first_section = re.search(r"^## (.+)$", text, re.MULTILINE)
    assert first_section is not None and first_section[1] == "Module map"
    short = [path for path, job in module_map().items() if len(job.split()) < 3]
    assert not short, f"say what these modules are for: {short}"
