"""Small builders for engine tests (plain data, no engine code)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from qmtl.contracts import MultiWorldRebalanceRequest, MultiWorldRebalanceResponse


def pos(
    world: str, strategy: str, symbol: str, qty: float, mark: float, venue: str | None = None
) -> dict[str, Any]:
    return {
        "world_id": world,
        "strategy_id": strategy,
        "symbol": symbol,
        "qty": qty,
        "mark": mark,
        "venue": venue,
    }


def request(**fields: Any) -> MultiWorldRebalanceRequest:
    fields.setdefault("total_equity", 1_000_000.0)
    fields.setdefault("world_alloc_after", {})
    return MultiWorldRebalanceRequest.model_validate(fields)


def deltas_of(response: MultiWorldRebalanceResponse, world: str) -> list[tuple[Any, str, float]]:
    return [(d.venue, d.symbol, d.delta_qty) for d in response.per_world[world].deltas]


def global_of(response: MultiWorldRebalanceResponse) -> list[tuple[Any, str, float]]:
    return [(d.venue, d.symbol, d.delta_qty) for d in response.global_deltas]


WORLDS = ("w1", "w2", "w3")
STRATEGIES = ("s1", "s2", "s3", "s4")
SYMBOLS = ("AAA", "BBB", "CCC")
VENUES = (None, "v1", "v2")

quantities = st.integers(min_value=-100_000, max_value=100_000).map(lambda i: i / 1000)
marks = st.integers(min_value=1, max_value=1_000_000).map(lambda i: i / 100)
ratios = st.integers(min_value=0, max_value=300).map(lambda i: i / 1000)


@st.composite
def positions(draw: st.DrawFn, *, min_size: int = 0, max_size: int = 25) -> list[dict[str, Any]]:
    return draw(
        st.lists(
            st.builds(
                pos,
                st.sampled_from(WORLDS),
                st.sampled_from(STRATEGIES),
                st.sampled_from(SYMBOLS),
                quantities,
                marks,
                st.sampled_from(VENUES),
            ),
            min_size=min_size,
            max_size=max_size,
        )
    )


@st.composite
def allocations(draw: st.DrawFn) -> dict[str, float]:
    """A world allocation map over a subset of WORLDS (sums to <= 0.9)."""
    chosen = draw(st.lists(st.sampled_from(WORLDS), unique=True))
    return {world: draw(ratios) for world in chosen}
