"""Reading inputs and reporting failures for CLI commands (exit codes: SPEC 9)."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console

from qmtl.contracts import MultiWorldRebalanceRequest
from qmtl.contracts.errors import QmtlError

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FAILED",
    "OutputFormat",
    "bind_overrides",
    "console",
    "emit",
    "err_console",
    "fail",
    "load_json_file",
    "load_request",
    "report_qmtl_error",
    "report_validation_error",
]

EXIT_FAILED = 1
"""A check or a request failed."""
EXIT_BAD_INPUT = 2
"""Bad input or usage."""

console = Console()
err_console = Console(stderr=True)


class OutputFormat(StrEnum):
    """``--output``: rich tables for people, JSON for scripts."""

    table = "table"
    json = "json"


def emit(document: Any, output: OutputFormat, *, table: Any) -> None:
    """Print ``document`` as JSON (for scripts) or through the ``table`` printer."""
    if output is OutputFormat.json:
        console.print_json(json.dumps(document))
    else:
        table(console, document)


def bind_overrides(host: str | None, port: int | None) -> dict[str, Any]:
    """The ``bind`` settings that ``--host`` / ``--port`` set (unset flags are left out)."""
    return {k: v for k, v in (("host", host), ("port", port)) if v is not None}


def fail(message: str, *, code: int = EXIT_FAILED) -> NoReturn:
    """Print one line to stderr and exit with ``code``."""
    err_console.print(f"[bold red]error[/bold red]: {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def load_json_file(path: Path) -> Any:
    """Parse a JSON file, exiting 2 with one line when it is missing or not JSON."""
    try:
        text = path.read_text()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}", code=EXIT_BAD_INPUT)
    try:
        return json.loads(text)
    except ValueError as exc:
        fail(f"{path} is not valid JSON: {exc}", code=EXIT_BAD_INPUT)


def report_validation_error(exc: ValidationError, *, source: str) -> NoReturn:
    """Print every validation error as ``field.path: message`` and exit 2."""
    err_console.print(
        f"[bold red]error[/bold red]: {source} is not a valid request:", highlight=False
    )
    for err in exc.errors():
        loc = ".".join(str(part) for part in err["loc"]) or "(body)"
        err_console.print(f"  {loc}: {err['msg']}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_BAD_INPUT)


def report_qmtl_error(exc: QmtlError, *, code: int) -> NoReturn:
    """Print ``E_CODE: message`` (plus context) and exit with ``code``."""
    context = {k: v for k, v in exc.context.items() if v is not None}
    suffix = f" {json.dumps(context, default=str)}" if context else ""
    fail(f"{exc.code}: {exc.message}{suffix}", code=code)


def load_request(path: Path) -> MultiWorldRebalanceRequest:
    """Load and validate a request file, exiting 2 with the errors when it is invalid."""
    payload = load_json_file(path)
    try:
        return MultiWorldRebalanceRequest.model_validate(payload)
    except ValidationError as exc:
        report_validation_error(exc, source=str(path))
