"""The quickstart works as written: the README and the docs give the same first commands, and
every command and code sample of ``docs/quickstart.md`` runs against a real ``qmtl up``."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli._up import QMTL, QmtlUp

from ._markdown import DOCS, README, ROOT, blocks, section, shell_commands

QUICKSTART = DOCS / "quickstart.md"
DEFAULT_GATEWAY = "http://127.0.0.1:8000"


def _first_bash_block(text_or_path: str | Path) -> str:
    text = text_or_path.read_text() if isinstance(text_or_path, Path) else text_or_path
    match = re.search(r"```bash\n(.*?)```", text, re.DOTALL)
    assert match, "no ```bash block"
    return match.group(1)


def test_readme_quickstart_commands_are_the_docs_quickstart_commands() -> None:
    readme = shell_commands(_first_bash_block(section(README, "Quickstart")))
    docs = shell_commands(_first_bash_block(QUICKSTART))
    assert readme == docs
    assert readme == ["uv run qmtl up", "uv run pytest"]  # the commands themselves, not prose


def _bash_blocks() -> list[str]:
    return [b.body for b in blocks(QUICKSTART) if b.lang == "bash"]


def _second_terminal() -> list[str]:
    # The block that follows "In a second terminal:".
    text = QUICKSTART.read_text()
    match = re.search(r"in a second terminal:\s*```bash\n(.*?)```", text, re.DOTALL)
    assert match
    return shell_commands(match.group(1))


def test_the_second_terminal_block_uses_the_default_gateway() -> None:
    commands = _second_terminal()
    assert len(commands) >= 5
    # QMTL_GATEWAY_URL covers the commands that do not name the gateway themselves.
    assert commands[0] == f"export QMTL_GATEWAY_URL={DEFAULT_GATEWAY}"
    assert all(c.startswith("uv run qmtl ") for c in commands[1:])


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QmtlUp]:
    server = QmtlUp(tmp_path_factory.mktemp("quickstart-up")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def workdir(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    return tmp_path


def _run(command: str, *, url: str, cwd: Path,
         env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    args = shlex.split(command.replace(DEFAULT_GATEWAY, url))
    assert args[:3] == ["uv", "run", "qmtl"], command
    return subprocess.run([QMTL, *args[3:]], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QMTL__", "QMTL_GATEWAY"))}
    env["COLUMNS"] = "200"
    return env


@pytest.mark.e2e
def test_local_plan_of_the_quickstart_runs(workdir: Path) -> None:
    command = shell_commands(_bash_blocks()[1])[0]
    assert command == "uv run qmtl plan examples/rebalance.json"
    result = _run(command, url=DEFAULT_GATEWAY, cwd=workdir, env=_env())
    assert result.returncode == 0, result.stderr
    # The page shows these figures; hand check: crypto-momentum 0.3 -> 0.2 scales by 2/3, so
    # BTC (0.6 + 0.9) moves by -0.5 and ETH 12 by -4; crypto-meanrev 0.2 -> 0.3 scales by 1.5,
    # BTC 0.5 by +0.25 and ETH -4 by -2; netted: BTC -0.25, ETH -6.
    assert "-0.25" in result.stdout and "-6" in result.stdout
    assert "-0.25" in QUICKSTART.read_text()


@pytest.mark.e2e
def test_every_second_terminal_command_succeeds(up: QmtlUp, workdir: Path) -> None:
    env = _env()
    for command in _second_terminal():
        if command.startswith("export "):
            name, _, value = command[len("export "):].partition("=")
            env[name] = value.replace(DEFAULT_GATEWAY, up.gateway_url)
            continue
        result = _run(command, url=up.gateway_url, cwd=workdir, env=env)
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    assert (workdir / "rehearsal" / "rehearsal.json").is_file()


@pytest.mark.e2e
def test_the_python_sample_runs(up: QmtlUp) -> None:
    samples = [b.body for b in blocks(QUICKSTART) if b.lang == "python"]
    assert len(samples) == 1
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(samples[0].replace(DEFAULT_GATEWAY, up.gateway_url), "quickstart", "exec"),
             {"__name__": "__docs__"})
    assert out.getvalue().split() == ["2", "True"]  # qmtl up is v2 end to end
