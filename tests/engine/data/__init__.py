"""Committed fixtures for the engine tests (regenerate with ``make_alpha_fixtures.py``)."""

from __future__ import annotations

import csv
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent


def load_returns(name: str) -> list[float | None]:
    """Read the ``return`` column of ``DATA_DIR / name``; an empty cell is ``None``."""
    with (DATA_DIR / name).open(newline="") as handle:
        return [float(row["return"]) if row["return"] else None for row in csv.DictReader(handle)]
