"""The ``qmtl`` command: one typer app whose sub-commands are imported only when run.

``qmtl --help`` must answer in well under half a second (SPEC 7), so this module imports
typer and nothing of QMTL: each command lives in its own module and is loaded when it is
invoked (or when its own ``--help`` is asked for). The root help lists the one-line
summaries below; ``tests/cli/test_main.py`` checks they match the commands' docstrings.
Help is rendered by click's plain formatter (``rich_markup_mode=None``): no panels that cut
option names at 80 columns, and square brackets in help texts are shown, not eaten as markup.
"""

from __future__ import annotations

import importlib
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

__all__ = ["COMMANDS", "LazyCommand", "app", "main"]


@dataclass(frozen=True)
class LazyCommand:
    """Where a sub-command lives (``module:attribute``) and its one-line summary."""

    target: str
    summary: str

    def load(self, name: str) -> Any:
        """Import the command and build its click object (a command or a group)."""
        module_name, attribute = self.target.split(":")
        obj = getattr(importlib.import_module(f"qmtl.cli.{module_name}"), attribute)
        if isinstance(obj, typer.Typer):
            obj.rich_markup_mode = None  # one help style for every command
            obj._add_completion = False
            obj.info.cls = FullSummaryGroup
            if not isinstance(obj.info.help, str) or obj.info.help.endswith(" commands"):
                obj.info.help = self.summary
            if obj.registered_callback is None and len(obj.registered_commands) == 1:
                obj.callback()(_group_callback)  # a group even with one sub-command
            obj.info.name = name
            return typer.main.get_command(obj)
        single = typer.Typer(rich_markup_mode=None, add_completion=False)
        single.command(name)(obj)
        return typer.main.get_command(single)


def _group_callback() -> None:
    pass


COMMANDS: dict[str, LazyCommand] = {
    "up": LazyCommand(
        "up:up_command",
        "Run the WorldService and the Gateway in one process (Ctrl-C stops both)."),
    "demo": LazyCommand(
        "demo:demo_command",
        "Run the example book through plan -> apply -> event -> execute (dry run)."),
    "plan": LazyCommand(
        "plan:plan_command", "Plan a multi-world rebalance and print the response."),
    "apply": LazyCommand(
        "remote:apply_command",
        "Apply a rebalance plan through the gateway (records it and publishes events)."),
    "execute": LazyCommand(
        "remote:execute_command",
        "Turn a rebalance plan into orders through the gateway (a dry run unless --submit)."),
    "events": LazyCommand(
        "events:events_command",
        "Follow rebalancing events from the gateway WebSocket (rebalancing.planned)."),
    "allocations": LazyCommand(
        "reads:allocations_command", "Show the recorded world allocations and their etag."),
    "runs": LazyCommand("reads:runs_app", "Look up recorded apply runs."),
    "audit": LazyCommand("reads:audit_command", "Show the audit trail of one world."),
    "report": LazyCommand(
        "report:report_command",
        "Tear sheet of return series: SPEC 2.4 metrics, CAGR, volatility, Sortino and charts."),
    "check-health": LazyCommand(
        "health:check_health_command",
        "Exit 0 when the gateway serves the expected plan schema version, else 1 with the reason."),
    "rehearsal": LazyCommand(
        "rehearsal:rehearsal_command",
        "Rehearse the v2 rollout: health, capability switch, v2 plan, parity, apply, event."),
    "schemas": LazyCommand("schemas:app", "Export or check the JSON Schemas of the wire contract."),
    "worldservice": LazyCommand("worldservice:app", "Run or migrate the WorldService."),
    "gateway": LazyCommand("gateway:app", "Run the Gateway."),
    "commitlog": LazyCommand("commitlog:app", "Read the execution commit log."),
}


class FullSummaryGroup(TyperGroup):
    """A group whose command list wraps each summary instead of cutting it with "..."."""

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                text = command.short_help or (command.help or "").strip().split("\n\n")[0]
                rows.append((name, " ".join(text.split())))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


class LazyGroup(FullSummaryGroup):
    """A group that imports a sub-command's module only when that command is resolved.

    While the group's own help page is drawn, commands are stand-ins carrying the summary, so
    listing them imports nothing. ``commands`` (read by tools that walk the tree, such as the
    docs tests) loads everything.
    """

    _listing = False

    @property
    def commands(self) -> MutableMapping[str, Any]:
        return {name: self.get_command(None, name) for name in self.list_commands(None)}

    @commands.setter
    def commands(self, value: MutableMapping[str, Any]) -> None:
        self._eager = dict(value)

    def list_commands(self, ctx: Any) -> list[str]:
        return [*COMMANDS, *(n for n in self._eager if n not in COMMANDS)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return self._eager.get(cmd_name)
        if self._listing:
            return TyperCommand(cmd_name, help=entry.summary, short_help=entry.summary)
        if cmd_name not in self._loaded:
            self._loaded[cmd_name] = entry.load(cmd_name)
        return self._loaded[cmd_name]

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    @property
    def _loaded(self) -> dict[str, Any]:
        cache: dict[str, Any] = self.__dict__.setdefault("_loaded_commands", {})
        return cache


app = typer.Typer(
    name="qmtl",
    cls=LazyGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _root() -> None:
    """QMTL Rebalancing: plan, apply and execute multi-world rebalances.

    Events have two names: the ControlBus (Redis) carries type rebalancing_planned, the
    gateway WebSocket relays it as rebalancing.planned.
    """


def main() -> None:
    """Console-script entry point."""
    app()
