"""Tolerant reading of the ``alpha_metrics`` envelope (SPEC 2.4).

Covers ``sanitize_metrics``, ``parse_alpha_metrics``, ``zero_metrics`` and the envelope model.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from qmtl.contracts import (
    ALPHA_METRIC_KEYS,
    ALPHA_PREFIX,
    AlphaCoverage,
    AlphaMetricsEnvelope,
    SeriesCoverage,
    parse_alpha_metrics,
    parse_coverage,
    sanitize_metrics,
    zero_metrics,
)

SHARPE = "alpha_performance.sharpe"
MDD = "alpha_performance.max_drawdown"


def test_metric_keys_are_the_six_prefixed_names() -> None:
    assert ALPHA_PREFIX == "alpha_performance."
    assert ALPHA_METRIC_KEYS == (
        "alpha_performance.sharpe",
        "alpha_performance.max_drawdown",
        "alpha_performance.win_ratio",
        "alpha_performance.profit_factor",
        "alpha_performance.car_mdd",
        "alpha_performance.rar_mdd",
    )


def test_zero_metrics_is_every_key_at_zero_and_a_fresh_dict() -> None:
    first = zero_metrics()
    assert first == dict.fromkeys(ALPHA_METRIC_KEYS, 0.0)
    first[SHARPE] = 9.0
    assert zero_metrics()[SHARPE] == 0.0


def test_sanitize_keeps_known_finite_numbers() -> None:
    got = sanitize_metrics({SHARPE: 1.25, MDD: -0.1, "alpha_performance.win_ratio": 1})
    assert got == {SHARPE: 1.25, MDD: -0.1, "alpha_performance.win_ratio": 1.0}
    assert all(type(v) is float for v in got.values())


def test_sanitize_ignores_unknown_keys() -> None:
    got = sanitize_metrics(
        {SHARPE: 1.0, "alpha_performance.sortino": 2.0, "sharpe": 3.0, "extra": {"x": 1}}
    )
    assert got == {SHARPE: 1.0}


@pytest.mark.parametrize(
    "bad",
    [
        float("nan"),
        float("inf"),
        float("-inf"),
        "1.2",
        True,
        False,
        None,
        [1.0],
        {"v": 1.0},
        10**400,  # an integer literal beyond float64
    ],
)
def test_sanitize_drops_non_finite_and_non_numeric(bad: Any) -> None:
    assert sanitize_metrics({SHARPE: bad, MDD: -0.2}) == {MDD: -0.2}


@pytest.mark.parametrize("payload", [None, [], [1.0], "x", 1.5, True])
def test_sanitize_of_a_non_mapping_is_empty(payload: Any) -> None:
    assert sanitize_metrics(payload) == {}


@pytest.mark.parametrize("payload", [None, [], [{"per_world": {}}], "alpha", 0, 1.5, True])
def test_parse_returns_none_for_a_non_mapping(payload: Any) -> None:
    assert parse_alpha_metrics(payload) is None


def test_parse_sanitizes_every_level() -> None:
    payload = {
        "per_world": {
            "w1": {SHARPE: 1.5, MDD: "oops", "alpha_performance.future": 7.0},
            "w2": "not a mapping",
        },
        "per_strategy": {
            "s1": {"w1": {SHARPE: True, MDD: -0.3}},
            "s2": ["not", "a", "mapping"],
        },
        "unknown_top_level": 1,
    }
    envelope = parse_alpha_metrics(payload)
    assert envelope == AlphaMetricsEnvelope(
        per_world={"w1": {SHARPE: 1.5}, "w2": {}},
        per_strategy={"s1": {"w1": {MDD: -0.3}}},
    )


def test_parse_of_raw_json_with_nan_and_infinity() -> None:
    # Python's json module accepts the NaN/Infinity literals a sloppy producer might send
    text = (
        '{"per_world": {"w1": {"alpha_performance.sharpe": NaN,'
        ' "alpha_performance.max_drawdown": -0.25,'
        ' "alpha_performance.car_mdd": Infinity,'
        ' "alpha_performance.rar_mdd": 1' + "0" * 400 + "}}}"
    )
    envelope = parse_alpha_metrics(json.loads(text))
    assert envelope is not None
    assert envelope.per_world == {"w1": {MDD: -0.25}}
    assert envelope.per_strategy == {}


@pytest.mark.parametrize(
    "payload",
    [{}, {"per_world": None}, {"per_world": [1, 2]}, {"per_strategy": "x"}],
)
def test_parse_of_a_mapping_with_bad_sections_is_empty(payload: dict[str, Any]) -> None:
    assert parse_alpha_metrics(payload) == AlphaMetricsEnvelope()


def test_parse_round_trips_a_valid_envelope() -> None:
    envelope = AlphaMetricsEnvelope(
        per_world={"w1": zero_metrics()},
        per_strategy={"s1": {"w1": {**zero_metrics(), SHARPE: 0.8}}},
    )
    assert parse_alpha_metrics(json.loads(envelope.model_dump_json())) == envelope


def test_envelope_model_rejects_nan() -> None:
    # producers must send finite values; the model refuses NaN outright
    with pytest.raises(ValidationError) as caught:
        AlphaMetricsEnvelope(per_world={"w1": {SHARPE: float("nan")}})
    assert caught.value.errors()[0]["loc"] == ("per_world", "w1", SHARPE)


def test_envelope_model_ignores_unknown_fields() -> None:
    envelope = AlphaMetricsEnvelope.model_validate({"per_world": {}, "future": 1})
    assert envelope == AlphaMetricsEnvelope()


# --- coverage (SPEC 2.4) ---------------------------------------------------------------------

PF = "alpha_performance.profit_factor"


def test_parse_reads_coverage() -> None:
    payload = {
        "per_world": {"w1": zero_metrics()},
        "coverage": {
            "per_world": {"w1": {"observations": 3, "undefined": [PF]}},
            "per_strategy": {"s1": {"w1": {"observations": 0, "undefined": [SHARPE, MDD]}}},
        },
    }
    envelope = parse_alpha_metrics(payload)
    assert envelope is not None
    assert envelope.coverage == AlphaCoverage(
        per_world={"w1": SeriesCoverage(observations=3, undefined=[PF])},
        per_strategy={"s1": {"w1": SeriesCoverage(observations=0, undefined=[SHARPE, MDD])}},
    )


def test_an_envelope_without_coverage_parses_as_unknown_coverage() -> None:
    envelope = parse_alpha_metrics({"per_world": {"w1": {SHARPE: 1.0}}})
    assert envelope is not None and envelope.coverage is None
    # ... and is written back without the key (an older reader never sees a null block)
    assert "coverage" not in json.loads(envelope.model_dump_json())


@pytest.mark.parametrize("bad", [True, -1, 1.5, "3", None, [3]])
def test_parse_drops_coverage_entries_with_a_bad_count(bad: Any) -> None:
    envelope = parse_alpha_metrics(
        {
            "coverage": {
                "per_world": {"w1": {"observations": bad}, "w2": {"observations": 2}},
                "per_strategy": {"s1": {"w1": {"observations": bad}}, "s2": "x"},
            }
        }
    )
    assert envelope is not None
    assert envelope.coverage == AlphaCoverage(
        per_world={"w2": SeriesCoverage(observations=2, undefined=[])},
        per_strategy={"s1": {}},
    )


def test_parse_keeps_only_known_undefined_keys() -> None:
    envelope = parse_alpha_metrics(
        {
            "coverage": {
                "per_world": {
                    "w1": {
                        "observations": 1,
                        "undefined": [PF, "alpha_performance.sortino", 7],
                        "future": True,
                    }
                }
            }
        }
    )
    assert envelope is not None and envelope.coverage is not None
    assert envelope.coverage.per_world["w1"] == SeriesCoverage(observations=1, undefined=[PF])


def test_unhashable_entries_in_undefined_are_dropped_not_fatal() -> None:
    # A list or an object where a key name belongs used to raise TypeError (a 500 at the
    # gateway reading a bad WorldService answer).
    coverage = parse_coverage(
        {"per_world": {"w1": {"observations": 2, "undefined": [[PF], {"k": 1}, PF]}}})
    assert coverage is not None
    assert coverage.per_world["w1"] == SeriesCoverage(observations=2, undefined=[PF])


@pytest.mark.parametrize("payload", [None, [], "all", 3])
def test_parse_of_a_non_mapping_coverage_is_unknown(payload: Any) -> None:
    assert parse_coverage(payload) is None


def test_an_older_reader_ignores_coverage() -> None:
    # An envelope model without the field (as an older SDK has) validates the new document.
    class OlderEnvelope(BaseModel):
        model_config = ConfigDict(extra="ignore")
        per_world: dict[str, dict[str, float]]
        per_strategy: dict[str, dict[str, dict[str, float]]]

    envelope = AlphaMetricsEnvelope(
        per_world={"w1": zero_metrics()},
        per_strategy={},
        coverage=AlphaCoverage(per_world={"w1": SeriesCoverage(observations=0)}),
    )
    older = OlderEnvelope.model_validate_json(envelope.model_dump_json())
    assert older.per_world == {"w1": zero_metrics()}
