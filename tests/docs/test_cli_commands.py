"""Every ``qmtl …`` command line in the docs and the README names a real command and real
options of the typer app (docs cannot drift from the CLI)."""

from __future__ import annotations

from typing import Any

import pytest
import typer.main

from qmtl.cli.main import app

from ._markdown import README, ROOT, CommandLine, command_lines, pages_and_readme

ROOT_COMMAND: Any = typer.main.get_command(app)
PLACEHOLDER_PREFIXES = ("<", "…", "...")


def _clean(token: str) -> str:
    return token.strip("[](){},.`'\"")


def _is_group(command: Any) -> bool:
    # typer vendors click (typer._click), so test the shape rather than the class.
    return isinstance(getattr(command, "commands", None), dict)


def _options(command: Any) -> set[str]:
    names = {"--help"}
    for param in command.params:
        names.update(param.opts)
        names.update(param.secondary_opts)
    return names


def check(line: CommandLine) -> list[str]:
    """Problems with one command line (empty when it is valid)."""
    command: Any = ROOT_COMMAND
    path = ["qmtl"]
    commands: list[Any] = [command]
    problems: list[str] = []
    for raw in line.args:
        token = _clean(raw)
        if not token or token.startswith(PLACEHOLDER_PREFIXES):
            if _is_group(command) and len(commands) == 1:
                return problems  # `qmtl <command> --help`: nothing concrete to check
            continue
        if _is_group(command) and len(commands) == 1 and not token.startswith("-"):
            names = token.split("|")
            unknown = [n for n in names if n not in command.commands]
            if unknown:
                return [f"{' '.join(path)}: no sub-command {unknown} "
                        f"(known: {sorted(command.commands)})"]
            commands = [command.commands[n] for n in names]
            command = commands[0]
            path.append(token)
            continue
        if token.startswith("-") and token != "-":
            for option in token.split("=", 1)[0].split("/"):
                for cmd in commands:
                    if option not in _options(cmd):
                        problems.append(f"{' '.join(path)} has no option {option}")
    if _is_group(command) and line.args:
        problems.append(f"{' '.join(path)} is a group: a sub-command is missing")
    return problems


ALL_LINES = [line for page in pages_and_readme() for line in command_lines(page)]


def test_the_docs_contain_command_lines() -> None:
    # The parser must find the commands; an empty list would make the checks below vacuous.
    assert len(ALL_LINES) > 50
    found = {line.args[0] for line in ALL_LINES if line.args}
    assert set(ROOT_COMMAND.commands) <= found  # every top-level command is documented


@pytest.mark.parametrize("line", ALL_LINES, ids=lambda line: line.where()[:120])
def test_command_line_names_real_commands_and_options(line: CommandLine) -> None:
    assert check(line) == [], line.where()


def test_every_option_of_every_command_is_documented_somewhere() -> None:
    text = "\n".join(p.read_text() for p in pages_and_readme())
    missing = []

    def walk(command: Any, path: str) -> None:
        if _is_group(command):
            for name, sub in command.commands.items():
                walk(sub, f"{path} {name}")
            return
        for option in _options(command) - {"--help"}:
            if option.startswith("--") and option not in text:
                missing.append(f"{path} {option}")

    walk(ROOT_COMMAND, "qmtl")
    assert missing == []


@pytest.mark.parametrize("text, problem", [
    ("qmtl plann FILE", "no sub-command"),
    ("qmtl plan FILE --gatway URL", "has no option --gatway"),
    ("qmtl schemas export|chek", "no sub-command"),
    ("uv run qmtl gateway serve --alpha-metrics-capable/--no-alpha", "has no option --no-alpha"),
    ("qmtl worldservice", "is a group"),
])
def test_the_checker_catches_mistakes(text: str, problem: str) -> None:
    from ._markdown import _qmtl_args

    args = _qmtl_args(text)
    assert args is not None
    problems = check(CommandLine(README, text, args))
    assert any(problem in p for p in problems), problems


def test_prose_lines_are_not_commands() -> None:
    from ._markdown import _qmtl_args

    assert _qmtl_args("data in .qmtl; press Ctrl-C to stop") is None
    assert _qmtl_args("pip install qmtl now") is None
    assert _qmtl_args("QMTL__GATEWAY__X=1 uv run qmtl up --demo # comment") == ("up", "--demo")
    assert ROOT.exists()
