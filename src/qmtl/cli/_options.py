"""Options shared by the commands that read a request file or talk to a gateway.

One spelling everywhere: the request file is the positional FILE (``--input``/``-i`` is an
alias), the gateway is ``--gateway`` or ``QMTL_GATEWAY_URL``, the token ``--token`` or
``QMTL_GATEWAY_TOKEN``. This module imports typer only, so any command can use it cheaply.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from qmtl.cli._io import EXIT_BAD_INPUT, OutputFormat, TabularFormat, fail

__all__ = [
    "DEFAULT_GATEWAY_URL",
    "FileArgument",
    "GatewayOption",
    "InputOption",
    "OutputOption",
    "ReadGatewayOption",
    "TabularOutputOption",
    "TokenOption",
    "default_gateway",
    "require_gateway",
    "resolve_input",
]

DEFAULT_GATEWAY_URL = "http://127.0.0.1:8000"
"""Where ``qmtl up`` puts the gateway (SPEC 9): the default of commands that only read."""

GatewayOption = Annotated[str | None, typer.Option(
    "--gateway", envvar="QMTL_GATEWAY_URL", show_envvar=True, metavar="URL",
    help="Gateway URL, e.g. http://127.0.0.1:8000 (not the WorldService's port).")]
ReadGatewayOption = Annotated[str | None, typer.Option(
    "--gateway", envvar="QMTL_GATEWAY_URL", show_envvar=True, metavar="URL",
    help=f"Gateway URL (not the WorldService's).  [default: {DEFAULT_GATEWAY_URL}]")]
TokenOption = Annotated[str | None, typer.Option(
    "--token", envvar="QMTL_GATEWAY_TOKEN", show_envvar=True, metavar="TOKEN",
    help="Bearer token when the gateway requires one.")]
FileArgument = Annotated[Path | None, typer.Argument(
    metavar="FILE", help="Request JSON (MultiWorldRebalanceRequest).", show_default=False)]
InputOption = Annotated[Path | None, typer.Option(
    "--input", "-i", metavar="FILE", help="Alias of FILE.", show_default=False)]
OutputOption = Annotated[OutputFormat, typer.Option(
    "--output", "-o", help="table for people, json for scripts.")]
TabularOutputOption = Annotated[TabularFormat, typer.Option(
    "--output", "-o",
    help="table for people (plain tab-separated lines when piped), json, or csv of the rows.")]


def resolve_input(file: Path | None, input_file: Path | None) -> Path:
    """FILE or ``--input`` (exactly one, or both naming the same file); exit 2 otherwise."""
    if file is not None and input_file is not None and file != input_file:
        fail(f"FILE ({file}) and --input ({input_file}) name different files",
             code=EXIT_BAD_INPUT)
    chosen = file or input_file
    if chosen is None:
        fail("missing the request file: pass FILE (or --input FILE)", code=EXIT_BAD_INPUT)
    return chosen


def require_gateway(gateway: str | None) -> str:
    """The gateway URL, or exit 2 with a hint."""
    if not gateway:
        fail("missing --gateway URL (or set QMTL_GATEWAY_URL)", code=EXIT_BAD_INPUT)
    if not gateway.startswith(("http://", "https://")):
        fail(f"--gateway must be an http:// or https:// URL, got {gateway!r}",
             code=EXIT_BAD_INPUT)
    return gateway


def default_gateway(gateway: str | None) -> str:
    """``--gateway``, else ``QMTL_GATEWAY_URL``, else the ``qmtl up`` default; validated."""
    return require_gateway(gateway or os.environ.get("QMTL_GATEWAY_URL") or DEFAULT_GATEWAY_URL)
