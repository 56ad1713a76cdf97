"""Regenerate docs/cli.md from the commands' own --help (a test checks it is current):
python docs/generate_cli_reference.py"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from groundset.core.cli import cli

HEADER = """# Command-line reference

Generated from `--help` by `python docs/generate_cli_reference.py`; a test fails when a command
changes and this page does not.
"""


def render() -> str:
    parts = [HEADER]
    for command in ["", *sorted(cli.commands)]:
        args = [command, "--help"] if command else ["--help"]
        output = CliRunner().invoke(cli, args, prog_name="groundset").output
        parts.append(f"## groundset {command}".rstrip() + f"\n\n```\n{output.strip()}\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    Path(__file__).with_name("cli.md").write_text(render(), encoding="utf-8")
