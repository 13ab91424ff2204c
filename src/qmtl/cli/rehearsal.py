"""``qmtl rehearsal --gateway URL``: the v2 rollout rehearsal, with JSON and Markdown artefacts.

Exit 0 when every step passed; 1 naming the first failed step (artefacts are written either
way); 2 for bad usage.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from qmtl.cli._io import EXIT_BAD_INPUT, EXIT_FAILED, console, fail
from qmtl.cli.remote import GatewayOption, TokenOption, require_gateway
from qmtl.cli.tables import Section, print_sections

if TYPE_CHECKING:
    from qmtl.sdk import RehearsalReport

__all__ = ["rehearsal_command", "write_artefacts"]


def write_artefacts(report: RehearsalReport, out_dir: Path) -> tuple[Path, Path]:
    """Write ``rehearsal.json`` and ``rehearsal.md`` into ``out_dir`` (created if needed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "rehearsal.json"
    md_path = out_dir / "rehearsal.md"
    json_path.write_text(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    md_path.write_text(report.to_markdown())
    return json_path, md_path


def _print(report: RehearsalReport) -> None:
    steps = Section(f"Rehearsal against {report.gateway}", ("#", "step", "result", "detail"),
                    [(str(n), step.name, step.status, step.detail)
                     for n, step in enumerate(report.steps, 1)])
    print_sections(console, [], [steps])


def rehearsal_command(
    gateway: GatewayOption = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for rehearsal.json/.md.")]
    = Path("rehearsal"),
    timeout: Annotated[float, typer.Option(
        "--timeout", min=0.1, help="Seconds to wait for the events after apply.")] = 10.0,
    periods_per_year: Annotated[float, typer.Option(
        "--periods-per-year", min=1e-9, help="P the WorldService uses (252 by default).")] = 252.0,
    token: TokenOption = None,
) -> None:
    """Rehearse the v2 rollout: health, capability switch, v2 plan, parity, apply, event."""
    from qmtl.sdk import GatewayClient, run_rehearsal

    url = require_gateway(gateway)

    async def run() -> RehearsalReport:
        async with GatewayClient(url, token=token) as client:
            return await run_rehearsal(client, event_timeout=timeout,
                                       periods_per_year=periods_per_year)

    report = asyncio.run(run())
    _print(report)
    try:
        json_path, md_path = write_artefacts(report, out)
    except OSError as exc:
        fail(f"cannot write the artefacts into {out}: {exc.strerror}", code=EXIT_BAD_INPUT)
    console.print(f"artefacts: {json_path}, {md_path}", highlight=False)
    if not report.ok:
        failed = next(s for s in report.steps if s.status == "failed")
        fail(f"rehearsal failed at step '{failed.name}': {failed.detail}", code=EXIT_FAILED)
    console.print("rehearsal passed", highlight=False)
