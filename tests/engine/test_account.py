"""Shared-account figures computed by hand."""

from __future__ import annotations

import pytest

from qmtl.contracts import SymbolDelta
from qmtl.contracts.errors import PlanInputInvalid
from qmtl.engine import shared_account_figures

from ._build import pos, request

POSITIONS = [
    pos("w1", "s1", "BTC", 1, 100),
    pos("w2", "s1", "BTC", 1, 200),
    pos("w2", "s2", "ETH", -2, 50, venue="v"),
]
DELTAS = [
    SymbolDelta(symbol="BTC", delta_qty=-0.5),
    SymbolDelta(symbol="ETH", delta_qty=1.0, venue="v"),
]


def test_figures_by_hand() -> None:
    # BTC mark across worlds = (1 * 100 + 1 * 200) / 2 = 150; ETH mark 50.
    # gross = |-0.5 * 150| + |1 * 50| = 75 + 50 = 125
    # net   = -75 + 50 = -25
    # post-trade gross = |(2 - 0.5) * 150| + |(-2 + 1) * 50| = 225 + 50 = 275
    # headroom = 1 - 275 / 1000 = 0.725
    figures = shared_account_figures(request(total_equity=1000, positions=POSITIONS), DELTAS)
    assert figures.gross_notional == 125
    assert figures.net_notional == -25
    assert figures.margin_headroom == pytest.approx(0.725, abs=1e-15)


def test_zero_equity() -> None:
    # Exposure left after the trades -> 0.0; nothing left -> 1.0.
    figures = shared_account_figures(request(total_equity=0, positions=POSITIONS), DELTAS)
    assert figures.margin_headroom == 0.0
    closing = [
        SymbolDelta(symbol="BTC", delta_qty=-2.0),
        SymbolDelta(symbol="ETH", delta_qty=2.0, venue="v"),
    ]
    figures = shared_account_figures(request(total_equity=0, positions=POSITIONS), closing)
    # gross = 2 * 150 + 2 * 50 = 400; net = -300 + 100 = -200; nothing left -> 1.0
    assert (figures.gross_notional, figures.net_notional, figures.margin_headroom) == (
        400,
        -200,
        1.0,
    )


def test_overlay_instrument_uses_the_overlay_price() -> None:
    # ES is held by nobody: mark = overlay price 10. gross = 5 * 10 = 50, net = +50;
    # post-trade gross = BTC |2 * 150| + ETH |-2 * 50| + ES |5 * 10| = 300 + 100 + 50 = 450.
    req = request(
        total_equity=1000,
        positions=POSITIONS,
        mode="overlay",
        overlay={"instrument_by_world": {"w1": "ES"}, "price_by_symbol": {"ES": 10}},
    )
    figures = shared_account_figures(req, [SymbolDelta(symbol="ES", delta_qty=5)])
    assert (figures.gross_notional, figures.net_notional) == (50, 50)
    assert figures.margin_headroom == pytest.approx(1 - 450 / 1000, abs=1e-15)


def test_unknown_symbol_is_a_coded_error() -> None:
    with pytest.raises(PlanInputInvalid) as caught:
        shared_account_figures(
            request(total_equity=1000, positions=POSITIONS),
            [SymbolDelta(symbol="ZZZ", delta_qty=1)],
        )
    assert caught.value.context["symbol"] == "ZZZ"
