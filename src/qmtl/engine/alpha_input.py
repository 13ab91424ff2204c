"""Input checks and unit conversions for the alpha metrics (SPEC 2.4).

Everything that turns caller data into the per-period return array the metrics read:

* :func:`as_return_array` validates a 1-D sequence of simple per-period returns (ratios, e.g.
  ``0.01`` = +1 %); ``NaN``/``None`` mark a missing period, ``±inf``, booleans, strings and
  other non-numbers raise :class:`AlphaInputError` naming the offending element.
* :func:`returns_from_series` converts a wire :class:`qmtl.contracts.Series` (returns, an equity
  curve in base currency, or per-period P&L in base currency) into returns, and raises
  :class:`AlphaSeriesUnusable` for supplied data that cannot become returns (SPEC 2.4: never
  reported as "no data").

Pure numpy; no I/O, no logging.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from qmtl.contracts import Series

__all__ = [
    "AlphaInputError",
    "AlphaSeriesUnusable",
    "ReturnsLike",
    "as_return_array",
    "check_finite",
    "check_periods_per_year",
    "dotted_path",
    "returns_from_series",
]

FloatArray = npt.NDArray[np.float64]

ReturnsLike: TypeAlias = npt.ArrayLike | Iterable[float | None]
"""Per-period returns: a 1-D array, list, tuple, iterable or pandas Series; None = missing."""

_NUMERIC_KINDS = frozenset("iuf")  # signed int, unsigned int, float
_NONE_TYPE = type(None)


def _no_data() -> FloatArray:
    return np.empty(0, dtype=np.float64)


class AlphaInputError(ValueError):
    """Invalid input to an alpha metric: the message names the field and, for a sequence, the index.

    Attributes:
        field: the offending argument, e.g. ``"returns[3]"`` or ``"periods_per_year"``.
    """

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


def dotted_path(loc: Iterable[str | int]) -> str:
    """The dotted form of a location.

    ``("alpha_series", "per_world", "w1", "equity", 2)`` → ``alpha_series.per_world.w1.equity[2]``.
    """
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


class AlphaSeriesUnusable(AlphaInputError):
    """Supplied series data that cannot be turned into returns (SPEC 2.4: a 422, not zeros).

    Attributes:
        loc: where, as a path of keys and list indexes: relative to the series
            (``("pnl",)``, ``("equity", 3)``) from :func:`returns_from_series`, from the
            request root (``("alpha_series", "per_world", "w1", "pnl")``) from
            :func:`qmtl.engine.alpha.alpha_envelope`. ``field`` is its dotted form.
    """

    def __init__(self, message: str, *, loc: Iterable[str | int]) -> None:
        self.loc: tuple[str | int, ...] = tuple(loc)
        super().__init__(message, field=dotted_path(self.loc))

    def under(self, *prefix: str | int) -> AlphaSeriesUnusable:
        """The same error located under ``prefix`` (e.g. the request path of the series)."""
        return AlphaSeriesUnusable(str(self.args[0]), loc=(*prefix, *self.loc))


def _is_number(value: Any) -> bool:
    # bool is an int subclass and numpy's bool_ is not a number either.
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def check_finite(name: str, value: Any) -> float:
    """Return ``value`` as a float when it is a finite real number.

    Args:
        name: the argument name used in the error message.
        value: the candidate (int, float or numpy scalar; booleans are rejected).

    Returns:
        ``float(value)``.

    Raises:
        AlphaInputError: ``value`` is not a number, is a boolean, or is NaN/±inf.
    """
    if not _is_number(value):
        raise AlphaInputError(
            f"{name} must be a finite number, got {type(value).__name__} {value!r}", field=name
        )
    try:
        number = float(value)
    except OverflowError as exc:
        raise AlphaInputError(f"{name} does not fit in a float64: {value!r}", field=name) from exc
    if not math.isfinite(number):
        raise AlphaInputError(f"{name} must be finite, got {number!r}", field=name)
    return number


def check_periods_per_year(value: Any) -> float:
    """Validate P, the number of return periods per year (252 for trading days, 12 for months).

    Args:
        value: the candidate P.

    Returns:
        P as a float, finite and > 0.

    Raises:
        AlphaInputError: P is not a finite number > 0.
    """
    periods = check_finite("periods_per_year", value)
    if periods <= 0:
        raise AlphaInputError(
            f"periods_per_year must be > 0, got {periods!r}", field="periods_per_year"
        )
    return periods


def _first_bad_element(values: Iterable[Any], name: str) -> AlphaInputError:
    for index, value in enumerate(values):
        if value is None or _is_number(value):
            continue
        kind = "a boolean" if isinstance(value, bool | np.bool_) else type(value).__name__
        return AlphaInputError(
            f"{name}[{index}] must be a number or null, got {kind} {value!r}",
            field=f"{name}[{index}]",
        )
    return AlphaInputError(f"{name} must be a sequence of numbers", field=name)


def _from_python_sequence(values: list[Any], name: str) -> FloatArray:
    # One pass over the element *types* (not values) keeps a 1e6-element list fast.
    if not all(t is _NONE_TYPE or _is_number_type(t) for t in set(map(type, values))):
        raise _first_bad_element(values, name)
    try:
        # dtype=float64 turns None into NaN.
        return np.asarray(values, dtype=np.float64)
    except OverflowError:
        # Only a Python int beyond ±1.8e308 gets here; find it to name it.
        for index, value in enumerate(values):
            if value is not None:
                check_finite(f"{name}[{index}]", value)
        raise


def _is_number_type(value_type: type) -> bool:
    return issubclass(value_type, int | float | np.integer | np.floating) and not issubclass(
        value_type, bool | np.bool_
    )


def as_return_array(values: ReturnsLike, *, name: str = "returns") -> FloatArray:
    """Validate a 1-D sequence of numbers into a float64 array (``None`` becomes ``NaN``).

    Accepts a numpy array of integer or float dtype, an object array, a list/tuple/iterable
    of numbers and ``None``, or anything exposing ``__array__`` (e.g. a pandas Series). The
    input is never mutated; the result may share memory with a float64 input array.

    Args:
        values: the sequence.
        name: the field name used in error messages.

    Returns:
        A 1-D float64 array whose entries are finite or NaN.

    Raises:
        AlphaInputError: not 1-D, a boolean/string/other non-numeric element or dtype, a
            value outside float64, or ±inf (``"{name}[i] is inf"``).
    """
    if isinstance(values, str | bytes | Mapping | AbstractSet) or not (
        isinstance(values, Iterable) or hasattr(values, "__array__")
    ):
        raise AlphaInputError(
            f"{name} must be a 1-D sequence of numbers, got {type(values).__name__}", field=name
        )
    if hasattr(values, "__array__"):
        array = np.asarray(values)
        if array.ndim != 1:
            raise AlphaInputError(
                f"{name} must be 1-D, got an array of shape {array.shape}", field=name
            )
        if array.dtype.kind == "O":
            result = _from_python_sequence(array.tolist(), name)
        elif array.dtype.kind in _NUMERIC_KINDS:
            result = array.astype(np.float64, copy=False)
        else:
            raise AlphaInputError(
                f"{name} must hold numbers, got an array of dtype {array.dtype}", field=name
            )
    else:
        result = _from_python_sequence(list(values), name)
    infinite = np.isinf(result)
    if infinite.any():
        index = int(np.argmax(infinite))
        raise AlphaInputError(
            f"{name}[{index}] is {float(result[index])!r}: ±inf is invalid "
            "(use NaN or null for a missing period)",
            field=f"{name}[{index}]",
        )
    return result


def _observed(values: list[float | None]) -> tuple[FloatArray, npt.NDArray[np.intp]]:
    """The non-missing values and their indexes in ``values`` (for error messages)."""
    array = np.asarray(values, dtype=np.float64)  # None -> NaN
    kept = np.flatnonzero(~np.isnan(array))
    return array[kept], kept


def _first(mask: npt.NDArray[np.bool_]) -> int:
    return int(np.argmax(mask))


def _equity_returns(values: list[float | None]) -> FloatArray:
    equity, index = _observed(values)
    if equity.size < 2:
        return _no_data()
    divisors = equity[:-1]
    bad = ~(divisors > 0)
    if bad.any():
        at = _first(bad)
        raise AlphaSeriesUnusable(
            f"equity[{index[at]}] is {float(divisors[at])!r}: every value but the last must be "
            "> 0, since the next period's return divides by it (a curve may end at 0: ruin)",
            loc=("equity", int(index[at])),
        )
    with np.errstate(over="ignore"):
        returns = np.diff(equity) / divisors
    overflow = ~np.isfinite(returns)
    if overflow.any():
        at = _first(overflow)
        raise AlphaSeriesUnusable(
            f"the return from equity[{index[at]}] to equity[{index[at + 1]}] does not fit "
            "in a float64",
            loc=("equity", int(index[at + 1])),
        )
    return returns


def _pnl_returns(
    values: list[float | None], *, base_capital: float | None, capital_label: str
) -> FloatArray:
    pnl, index = _observed(values)
    if pnl.size == 0:
        return _no_data()
    if base_capital is None or not base_capital > 0:
        raise AlphaSeriesUnusable(
            f"pnl needs a capital base > 0 to become returns; {capital_label} is "
            f"{0.0 if base_capital is None else base_capital!r}",
            loc=("pnl",),
        )
    with np.errstate(over="ignore", invalid="ignore"):
        capital_before = base_capital + np.concatenate(([0.0], np.cumsum(pnl[:-1])))
        bad = ~(np.isfinite(capital_before) & (capital_before > 0))
        if bad.any():
            at = _first(bad)
            raise AlphaSeriesUnusable(
                f"the capital before pnl[{index[at]}] ({capital_label} + the earlier pnl = "
                f"{float(capital_before[at])!r}) is not a finite number > 0, so its return "
                "has no meaning",
                loc=("pnl", int(index[at])),
            )
        returns = pnl / capital_before
    overflow = ~np.isfinite(returns)
    if overflow.any():
        at = _first(overflow)
        raise AlphaSeriesUnusable(
            f"the return of pnl[{index[at]}] does not fit in a float64", loc=("pnl", int(index[at]))
        )
    return returns


def returns_from_series(
    series: Series, *, base_capital: float | None, capital_label: str = "the base capital"
) -> FloatArray:
    """Turn a wire :class:`~qmtl.contracts.Series` into simple per-period returns.

    The first field present wins:

    1. ``returns`` — used as given (``null`` entries become ``NaN``, which the metrics drop).
    2. ``equity`` E₀…Eₘ (base currency) — missing entries are dropped, then
       rₜ = (Eₜ − Eₜ₋₁) / Eₜ₋₁ = Eₜ/Eₜ₋₁ − 1 for t = 1…m, so a gap yields one compounded
       return over it. Fewer than two observations give no returns.
    3. ``pnl`` p₁…pₘ (base currency per period) — missing entries are dropped, then
       rₜ = pₜ / (B + Σₛ<ₜ pₛ) with B = ``base_capital``, the allocated capital at the start.

    No field set, or a field without observations, is no data (an empty array). Data that
    cannot become returns raises :class:`AlphaSeriesUnusable` (SPEC 2.4 — never a silent
    "no data"): ``pnl`` without a capital base (B unknown or <= 0), a non-positive capital
    at the start of any period (Eₜ₋₁ <= 0 or B + Σₛ<ₜ pₛ <= 0: a return on it has no
    meaning), or a return that does not fit in a float64. Capital that *ends* at or below
    zero is kept: it is a final return <= −1 (ruin).

    Args:
        series: the raw data.
        base_capital: B in base currency (used only for ``pnl``); ``None`` when unknown.
        capital_label: how the error message names B (e.g. ``"total_equity ×
            world_alloc_before[w1]"``).

    Returns:
        A 1-D float64 array of returns (possibly containing NaN when taken from ``returns``).
        Cost O(m).

    Raises:
        AlphaSeriesUnusable: see above; ``loc`` is relative to the series.
    """
    if series.returns is not None:
        return np.asarray(series.returns, dtype=np.float64)
    if series.equity is not None:
        return _equity_returns(series.equity)
    if series.pnl is not None:
        return _pnl_returns(series.pnl, base_capital=base_capital, capital_label=capital_label)
    return _no_data()
