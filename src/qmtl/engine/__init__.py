"""The planning engine: pure, vectorised rebalancing maths (SPEC 3, 4 and 2.4).

Pure functions over ``qmtl.contracts`` models and numpy arrays: no I/O, no web framework,
database or network client, and inputs are never modified.

Modules (import them by name for the lower-level pieces):

* :mod:`~qmtl.engine.book` — :class:`PositionBook` (columnar positions) and group sums;
* :mod:`~qmtl.engine.scales` — world and strategy scale factors;
* :mod:`~qmtl.engine.rounding` — lot rounding and float-noise cleaning;
* :mod:`~qmtl.engine.planning` — :func:`plan_rebalance` and the columnar core :func:`plan_book`;
* :mod:`~qmtl.engine.columns` — the columnar wire path: JSON bytes or plain data →
  arrays → plan → wire document (:func:`plan_rebalance_data`), no model per row;
* :mod:`~qmtl.engine.overlay` — overlay trades;
* :mod:`~qmtl.engine.split` — per-strategy orders (each strategy's own move);
* :mod:`~qmtl.engine.orders` — venue policies and orders;
* :mod:`~qmtl.engine.account` — shared-account figures;
* :mod:`~qmtl.engine.explain` — the explain document (why each world delta exists);
* :mod:`~qmtl.engine.alpha` — alpha performance metrics and the envelope.
"""

from __future__ import annotations

from .account import shared_account_figures
from .alpha import AlphaResult, alpha_envelope, alpha_performance, alpha_performance_detail
from .book import Key, PositionBook, mark_by_key, net_qty_by_key
from .orders import OrderDict, VenuePolicy, build_orders, order_dicts
from .planning import BookPlan, plan_book, plan_rebalance
from .scales import AllocationInputs
from .split import StrategyOrders, split_per_strategy, strategy_orders

__all__ = [
    "AllocationInputs",
    "AlphaResult",
    "BookPlan",
    "OrderDict",
    "Key",
    "PositionBook",
    "StrategyOrders",
    "VenuePolicy",
    "alpha_envelope",
    "alpha_performance",
    "alpha_performance_detail",
    "build_orders",
    "mark_by_key",
    "net_qty_by_key",
    "order_dicts",
    "plan_book",
    "plan_rebalance",
    "shared_account_figures",
    "split_per_strategy",
    "strategy_orders",
]
