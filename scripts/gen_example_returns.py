"""Write ``examples/returns.csv``: five years of daily returns of three strategies and a benchmark.

    uv run python scripts/gen_example_returns.py

Weekdays from 2020-01-02 to 2024-12-31 (no holiday calendar); simple returns rounded to six
decimals. Seeded, so rerunning reproduces the file byte for byte. The series are made up to
look like a desk's: ``market`` (the benchmark), ``trend`` (follows the market with a drawdown
in 2022), ``carry`` (steady with rare sharp losses) and ``reversal`` (low correlation).

    uv run qmtl report --from examples/returns.csv --benchmark market --out report.html
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "examples" / "returns.csv"
SEED = 20250101


def make() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    days = np.arange(np.datetime64("2020-01-02"), np.datetime64("2025-01-01"))
    dates = days[np.is_busday(days)]
    n = dates.size
    rng = np.random.default_rng(SEED)
    market = rng.normal(0.0004, 0.011, n)
    stress = (dates >= np.datetime64("2022-01-03")) & (dates < np.datetime64("2022-10-01"))
    market[stress] += rng.normal(-0.0012, 0.006, int(stress.sum()))
    trend = 0.5 * market + rng.normal(0.0003, 0.007, n)
    trend[stress] -= 0.0008
    carry = rng.normal(0.00035, 0.003, n)
    shocks = rng.random(n) < 0.006
    carry[shocks] -= rng.uniform(0.02, 0.05, int(shocks.sum()))
    reversal = -0.2 * market + rng.normal(0.0003, 0.008, n)
    series = {"trend": trend, "carry": carry, "reversal": reversal, "market": market}
    return dates, {name: np.round(values, 6) for name, values in series.items()}


def main() -> int:
    dates, series = make()
    with OUTPUT.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["date", *series])
        for index, day in enumerate(dates):
            writer.writerow([str(day), *(f"{series[name][index]:.6f}" for name in series)])
    print(f"wrote {OUTPUT.relative_to(ROOT)} ({dates.size} days, columns {', '.join(series)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
