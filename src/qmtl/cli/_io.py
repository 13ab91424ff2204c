"""Reading inputs and reporting failures for CLI commands (exit codes: SPEC 9)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from pydantic import ValidationError

    from qmtl.contracts import MultiWorldRebalanceRequest
    from qmtl.contracts.errors import QmtlError

# pydantic and the contracts are imported inside the functions that need them: every
# command imports this module, and `qmtl <command> --help` should not pay for them.

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FAILED",
    "OutputFormat",
    "TabularFormat",
    "bind_overrides",
    "console",
    "emit",
    "err_console",
    "fail",
    "load_json_file",
    "load_request",
    "write_json",
    "report_qmtl_error",
    "report_validation_error",
]

EXIT_FAILED = 1
"""A check or a request failed."""
EXIT_BAD_INPUT = 2
"""Bad input or usage."""

console = Console()
err_console = Console(stderr=True)


HIGHLIGHT_LIMIT = 64_000
"""Characters of compact JSON above which even a terminal gets it plain (rich's highlighter
costs seconds on a large plan, for colours nobody reads)."""


class OutputFormat(StrEnum):
    """``--output``: tables for people, JSON for scripts."""

    table = "table"
    json = "json"


class TabularFormat(StrEnum):
    """``--output`` of commands whose rows are deltas or orders: CSV as well."""

    table = "table"
    json = "json"
    csv = "csv"


def write_json(document: Any) -> None:
    """Write ``document`` as JSON to stdout.

    Piped or redirected, or too large to read on screen: one compact line from the C encoder
    (indenting switches json to its pure-Python encoder, seconds on a large plan, and rich's
    highlighter costs more still). A small document on a terminal is indented and highlighted.
    """
    text = json.dumps(document)
    if console.is_terminal and len(text) <= HIGHLIGHT_LIMIT:
        console.print_json(text)
        return
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def emit(
    document: Any,
    output: OutputFormat | TabularFormat,
    *,
    table: Callable[[Console, Any], None],
    csv: Callable[[Any], str] | None = None,
) -> None:
    """Print ``document`` as JSON or CSV (for scripts) or through the ``table`` printer."""
    if output == "json":
        write_json(document)
    elif output == "csv" and csv is not None:
        sys.stdout.write(csv(document))
        sys.stdout.flush()
    else:
        table(console, document)


def bind_overrides(host: str | None, port: int | None) -> dict[str, Any]:
    """The ``bind`` settings that ``--host`` / ``--port`` set (unset flags are left out)."""
    return {k: v for k, v in (("host", host), ("port", port)) if v is not None}


def fail(message: str, *, code: int = EXIT_FAILED) -> NoReturn:
    """Print one line to stderr and exit with ``code``."""
    # escape: a message naming "alpha_series.per_world[w1]" must not be read as rich markup
    err_console.print(f"[bold red]error[/bold red]: {escape(message)}", highlight=False,
                      soft_wrap=True)
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
    from pydantic import ValidationError

    from qmtl.contracts import MultiWorldRebalanceRequest

    payload = load_json_file(path)
    try:
        return MultiWorldRebalanceRequest.model_validate(payload)
    except ValidationError as exc:
        report_validation_error(exc, source=str(path))
