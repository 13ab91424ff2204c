"""Regenerate the committed alpha-metric fixtures (run once; the CSVs are committed).

    uv run python tests/engine/data/make_alpha_fixtures.py

Each CSV has one column ``return``: simple per-period returns written with ``repr`` (exact
float64 round trip); an empty cell is a missing period. Every generator is seeded, so
rerunning reproduces the files byte for byte.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _daily() -> list[float | None]:
    # 1500 trading days, drift 4 bp/day, 1.2 % daily vol, ~5 % flat (exactly zero) days.
    rng = np.random.default_rng(20240601)
    values = rng.normal(0.0004, 0.012, 1500)
    values[rng.random(1500) < 0.05] = 0.0
    result: list[float | None] = values.tolist()
    return result


def _heavy_tail() -> list[float | None]:
    # Student-t with 3 degrees of freedom: fat tails, occasional -8 % days.
    rng = np.random.default_rng(20240602)
    result: list[float | None] = (0.0002 + 0.008 * rng.standard_t(3, 750)).tolist()
    return result


def _monthly() -> list[float | None]:
    # Ten years of monthly returns (periods_per_year = 12).
    rng = np.random.default_rng(20240603)
    result: list[float | None] = rng.normal(0.008, 0.045, 120).tolist()
    return result


def _crash() -> list[float | None]:
    # A rally, a crash that takes ~60 % off the peak, then a weak recovery: negative CAGR.
    rng = np.random.default_rng(20240604)
    rally = rng.normal(0.002, 0.01, 150)
    crash = rng.normal(-0.012, 0.03, 80)
    recovery = rng.normal(0.0005, 0.015, 170)
    result: list[float | None] = np.concatenate([rally, crash, recovery]).tolist()
    return result


def _gaps() -> list[float | None]:
    # 500 days with ~8 % missing observations (written as empty cells).
    rng = np.random.default_rng(20240605)
    values: list[float | None] = rng.normal(0.0003, 0.01, 500).tolist()
    for index in np.flatnonzero(rng.random(500) < 0.08):
        values[int(index)] = None
    return values


FIXTURES = {
    "alpha_daily.csv": _daily,
    "alpha_heavy_tail.csv": _heavy_tail,
    "alpha_monthly.csv": _monthly,
    "alpha_crash.csv": _crash,
    "alpha_gaps.csv": _gaps,
}


def main() -> None:
    for name, make in FIXTURES.items():
        with (HERE / name).open("w", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(["return"])
            for value in make():
                writer.writerow(["" if value is None else repr(value)])
        print(f"wrote {name}")


if __name__ == "__main__":
    main()
