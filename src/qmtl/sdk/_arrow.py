"""Positions as a table: pyarrow Tables and pandas/polars DataFrames on the wire as Arrow IPC.

:func:`positions_table` turns what a caller holds into a ``pyarrow.Table`` with the id
columns dictionary-encoded (the server then reads categories instead of hashing a string per
row, and the body is smaller); :func:`arrow_plan_body` adds the rest of the request to the
schema metadata (``qmtl.request``, docs/arrow.md). pyarrow is optional (the ``arrow``
extra): without it a pandas DataFrame is sent as JSON records instead.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Mapping
from typing import Any

from qmtl.contracts import ARROW_POSITION_COLUMNS, encode_arrow_request, require_pyarrow

__all__ = ["arrow_available", "arrow_plan_body", "positions_records", "positions_table"]

_ID_COLUMNS = ("world_id", "strategy_id", "symbol", "venue")


def arrow_available() -> bool:
    """True when pyarrow can be imported (the ``arrow`` extra is installed)."""
    return importlib.util.find_spec("pyarrow") is not None


def positions_table(positions: Any) -> Any:
    """A ``pyarrow.Table`` of the position columns, ids dictionary-encoded.

    Accepts a ``pyarrow.Table``, a polars DataFrame (``to_arrow``) or a pandas DataFrame
    (index dropped). Columns other than the position columns are left out.

    Raises:
        UnsupportedMediaType: pyarrow is not installed.
        TypeError: ``positions`` is none of those.
    """
    pa = require_pyarrow()
    if isinstance(positions, pa.Table):
        table = positions
    elif hasattr(positions, "to_arrow"):
        table = positions.to_arrow()
    elif type(positions).__module__.startswith("pandas"):
        table = pa.Table.from_pandas(positions, preserve_index=False)
    else:
        raise TypeError(
            f"positions must be a pyarrow Table or a pandas/polars DataFrame, "
            f"got {type(positions).__name__}"
        )
    columns: dict[str, Any] = {}
    for name in ARROW_POSITION_COLUMNS:
        if name not in table.column_names:
            continue  # the server answers 422 naming a missing required column
        column = table.column(name)
        if name in _ID_COLUMNS and (
            pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
        ):
            column = column.combine_chunks().dictionary_encode()
        columns[name] = column
    return pa.table(columns)


def positions_records(positions: Any) -> list[dict[str, Any]]:
    """JSON rows of a pandas DataFrame (the fallback without pyarrow): NaN ids become null."""
    if not hasattr(positions, "to_dict"):
        raise TypeError(
            "sending a DataFrame without pyarrow needs a pandas DataFrame; "
            "install qmtl-rebalancing[arrow] for pyarrow and polars tables"
        )
    rows: list[dict[str, Any]] = positions.to_dict("records")
    return [
        {
            k: (None if isinstance(v, float) and math.isnan(v) and k in _ID_COLUMNS else v)
            for k, v in row.items()
            if k in ARROW_POSITION_COLUMNS
        }
        for row in rows
    ]


def arrow_plan_body(fields: Mapping[str, Any], positions: Any) -> bytes:
    """An Arrow IPC request body: ``positions`` as the table, ``fields`` (the request
    without ``positions``) in the schema metadata.

    Raises:
        UnsupportedMediaType: pyarrow is not installed.
    """
    rest = {k: v for k, v in fields.items() if k != "positions"}
    return encode_arrow_request(positions_table(positions), rest)
