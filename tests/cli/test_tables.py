"""Tables never hide data: long values fold on a terminal at 80 columns, piped output is
tab-separated, huge tables fall back to the plain form, CSV quotes what needs quoting; JSON
on a pipe is one plain line (no ANSI colours)."""

from __future__ import annotations

import io
import json

from rich.console import Console

from qmtl.cli import render
from qmtl.cli._io import write_json
from qmtl.cli.tables import RICH_ROW_LIMIT, Section, print_sections, to_csv
from qmtl.contracts import ALPHA_PREFIX

LONG_WORLD = "crypto-momentum-high-frequency-asia-session-sleeve"


def _terminal(width: int = 80) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=width, color_system=None), out


def test_a_terminal_table_folds_long_values_instead_of_cutting_them() -> None:
    console, out = _terminal()
    columns = ("world", "venue", "symbol", "delta_qty", "note")
    row = (LONG_WORLD, "binance-futures-usdm", "BTCUSDT-PERP", "-0.123456789", "x" * 60)
    print_sections(console, ["header"], [Section("Deltas", columns, [row])])
    text = out.getvalue()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    body = [line.split("│")[1:-1] for line in text.splitlines() if line.startswith("│")]
    for index, value in enumerate(row):  # each column's fragments, read down, give the value
        assert value in "".join(cells[index].strip() for cells in body)


def test_piped_output_is_tab_separated() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=40)
    print_sections(console, ["head"], [Section("T", ("a", "b"), [(LONG_WORLD, "tab\there")])],
                   ["foot"])
    assert out.getvalue().splitlines() == ["head", "", "# T", "a\tb",
                                           f"{LONG_WORLD}\ttab here", "", "foot"]


def test_a_huge_table_is_plain_even_on_a_terminal() -> None:
    console, out = _terminal()
    rows = [(str(i), "x") for i in range(RICH_ROW_LIMIT + 1)]
    print_sections(console, [], [Section("Big", ("i", "v"), rows)])
    lines = out.getvalue().splitlines()
    assert lines[1:3] == ["# Big", "i\tv"] and len(lines) == RICH_ROW_LIMIT + 4


def test_csv_quotes_and_keeps_full_precision() -> None:
    text = to_csv(("a", "b", "c"), [("x,y", 0.1 + 0.2, None), ("q\"t", True, 3)])
    assert text.splitlines() == ["a,b,c", '"x,y",0.30000000000000004,', '"q""t",true,3']


def test_json_on_a_pipe_is_one_plain_line(capsys: object) -> None:
    document = {"per_world": {LONG_WORLD: {"deltas": [{"delta_qty": -0.5}]}}}
    write_json(document)
    captured = capsys.readouterr()  # type: ignore[attr-defined]
    assert captured.out == json.dumps(document) + "\n"
    assert "\x1b[" not in captured.out


def test_the_alpha_prefix_mirror_agrees_with_the_contract() -> None:
    assert render.ALPHA_PREFIX == ALPHA_PREFIX


def test_alpha_metrics_go_long_on_a_narrow_terminal() -> None:
    document = {"schema_version": 2, "per_world": {}, "alpha_metrics": {
        "per_world": {"w": {f"{ALPHA_PREFIX}sharpe": 1.5, f"{ALPHA_PREFIX}win_ratio": 0.5}},
        "per_strategy": {"s": {"w": {f"{ALPHA_PREFIX}sharpe": 0.25}}}}}
    narrow, out = _terminal(80)
    render.print_plan(narrow, document)
    assert "│ w     │ (world)  │ win_ratio │   0.5 │" in out.getvalue()
    wide, out = _terminal(140)
    render.print_plan(wide, document)
    assert "│ w     │ (world)  │    1.5 │       0.5 │" in out.getvalue()
    piped = io.StringIO()
    render.print_plan(Console(file=piped, force_terminal=False), document)
    assert "w\ts\t0.25\t" in piped.getvalue()
