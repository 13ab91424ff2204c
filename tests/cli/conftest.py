"""Fixtures for CLI tests: real ``qmtl up`` processes and request files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ._up import V1_GATEWAY, V1_WORLDSERVICE, QmtlUp

BOOK: dict[str, Any] = {
    "total_equity": 100000.0,
    "world_alloc_before": {"wa": 0.3, "wb": 0.2},
    "world_alloc_after": {"wa": 0.2, "wb": 0.3},
    "positions": [
        {"world_id": "wa", "strategy_id": "sa", "symbol": "BTC", "qty": 0.6, "mark": 20000.0,
         "venue": "x"},
        {"world_id": "wa", "strategy_id": "sb", "symbol": "ETH", "qty": 3.0, "mark": 2000.0,
         "venue": "x"},
        {"world_id": "wb", "strategy_id": "sc", "symbol": "BTC", "qty": 0.5, "mark": 20000.0,
         "venue": "x"},
    ],
    "lot_size_by_symbol": {"BTC": 0.001, "ETH": 0.01},
    "schema_version": 2,
    "alpha_series": {"per_world": {"wa": {"returns": [0.01, -0.02, 0.015]}}},
}


def _up(tmp_path_factory: pytest.TempPathFactory, name: str,
        config: dict[str, Any] | None) -> Iterator[QmtlUp]:
    up = QmtlUp(tmp_path_factory.mktemp(name), config=config)
    up.start()
    try:
        yield up
    finally:
        up.stop()


@pytest.fixture(scope="session")
def up_v2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QmtlUp]:
    """``qmtl up`` on its embedded v2 defaults."""
    yield from _up(tmp_path_factory, "up-v2", None)


@pytest.fixture(scope="session")
def up_v1_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QmtlUp]:
    """``qmtl up`` whose gateway is configured for v1 (not alpha capable)."""
    yield from _up(tmp_path_factory, "up-v1-gw", V1_GATEWAY)


@pytest.fixture(scope="session")
def up_v1_worldservice(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QmtlUp]:
    """``qmtl up`` whose WorldService serves v1 only (gateway v2, alpha capable)."""
    yield from _up(tmp_path_factory, "up-v1-ws", V1_WORLDSERVICE)


def write_request(directory: Path, name: str = "book.json", **changes: Any) -> Path:
    """A request file: the test book with top-level ``changes`` applied."""
    path = directory / name
    path.write_text(json.dumps({**BOOK, **changes}))
    return path


@pytest.fixture
def book(tmp_path: Path) -> Path:
    return write_request(tmp_path)
