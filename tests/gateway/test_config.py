"""Gateway settings: defaults, file + environment + overrides, strict validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from qmtl.contracts.errors import ConfigError
from qmtl.engine import VenuePolicy
from qmtl.gateway.config import GatewaySettings, load_gateway_settings


def test_defaults_match_the_spec() -> None:
    s = load_gateway_settings(environ={})
    assert s.rebalance_schema_version == 1
    assert s.alpha_metrics_capable is False
    assert s.compute_context_contract is None
    assert s.enforce_live_guard is True
    assert s.shared_account_policy.enabled is False
    assert s.worldservice_url == "http://127.0.0.1:8080"
    assert s.commit_log == "sqlite:///./.qmtl/commitlog.db"
    assert s.controlbus == "memory://"
    assert (s.bind.host, s.bind.port) == ("127.0.0.1", 8000)
    assert s.auth.tokens == []
    timeout = s.timeouts.to_httpx()
    assert (timeout.connect, timeout.read, timeout.write, timeout.pool) == (5.0, 30.0, 30.0, 5.0)


def test_file_then_environment_then_overrides(tmp_path: Path) -> None:
    path = tmp_path / "qmtl.yml"
    path.write_text(
        "worldservice:\n  server: {compat_rebalance_v2: true}\n"
        "gateway:\n"
        "  rebalance_schema_version: 2\n"
        "  alpha_metrics_capable: true\n"
        "  worldservice_url: http://ws.example:9000/\n"
        "  venue_policies:\n"
        "    binance: {lot_size: 0.001, min_notional: 10, requires_ioc: true}\n"
        "  shared_account_policy: {enabled: true, max_gross_notional: 1000000}\n"
        "  bind: {port: 8100}\n"
    )
    env = {"QMTL__GATEWAY__ENFORCE_LIVE_GUARD": "false", "QMTL__GATEWAY__BIND__PORT": "8200",
           "QMTL__GATEWAY__AUTH__TOKENS": '["t1"]'}
    s = load_gateway_settings(path, environ=env, overrides={"bind": {"port": 8300}})
    assert s.rebalance_schema_version == 2 and s.alpha_metrics_capable is True
    assert s.worldservice_url == "http://ws.example:9000"
    assert s.venue_policies["binance"] == VenuePolicy(lot_size=0.001, min_notional=10,
                                                      requires_ioc=True)
    assert s.shared_account_policy.max_gross_notional == 1_000_000
    assert s.enforce_live_guard is False  # "false" is false
    assert s.bind.port == 8300
    assert s.auth.tokens == ["t1"]


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "qmtl.yml"
    path.write_text("gateway: {rebalance_schema_version: 1}\n")
    s = load_gateway_settings(path, environ={"QMTL__GATEWAY__REBALANCE_SCHEMA_VERSION": "2"})
    assert s.rebalance_schema_version == 2


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"QMTL__GATEWAY__ENFORCE_LIVE_GUARD": "maybe"}, "gateway.enforce_live_guard"),
        ({"QMTL__GATEWAY__REBALANCE_SCHEMA_VERSION": "3"}, "gateway.rebalance_schema_version"),
        ({"QMTL__GATEWAY__REBALANCE_SCHEMA_VERSION": "0"}, "gateway.rebalance_schema_version"),
        ({"QMTL__GATEWAY__TIMEOUTS__READ": "-1"}, "gateway.timeouts.read"),
        ({"QMTL__GATEWAY__TYPO": "1"}, "gateway.typo"),
        ({"QMTL__GATEWAY__WORLDSERVICE_URL": "ftp://x"}, "gateway.worldservice_url"),
        ({"QMTL__GATEWAY__COMMIT_LOG": "postgres://x"}, "gateway.commit_log"),
        ({"QMTL__GATEWAY__CONTROLBUS": "kafka://x"}, "gateway.controlbus"),
        ({"QMTL__GATEWAY__BREAKER__FAILURE_THRESHOLD": "0"}, "gateway.breaker.failure_threshold"),
        ({"QMTL__GATEWAY__WS__CLIENT_QUEUE_SIZE": "0"}, "gateway.ws.client_queue_size"),
        ({"QMTL__GATEWAY__DEFAULT_VENUE_POLICY__LOT_SIZE": "0"},
         "gateway.default_venue_policy.lot_size"),
        ({"QMTL__GATEWAY__SHARED_ACCOUNT_POLICY__MAX_NET_NOTIONAL": "nan"},
         "gateway.shared_account_policy.max_net_notional"),
        ({"QMTL__GATEWAY__REBALANCE_SCHEMA_VERSION": "2.0"}, "gateway.rebalance_schema_version"),
        ({"QMTL__GATEWAY__ENFORCE_LIVE_GUARD": "off"}, "gateway.enforce_live_guard"),
        ({"QMTL__GATEWAY__SHARED_ACCOUNT_POLICY__ENABLED": "1"},
         "gateway.shared_account_policy.enabled"),
        ({"QMTL__GATEWAY__VENUE_POLICIES": '{"binance": {"requires_ioc": "yes"}}'},
         "gateway.venue_policies.binance.requires_ioc"),
        ({"QMTL__GATWAY__AUTH__TOKENS": '["t"]'}, "QMTL__GATWAY__AUTH__TOKENS"),
        ({"QMTL__GATEWAY__AUTH__PROTECT_METRICS": "true"}, "gateway.auth"),
    ],
)
def test_invalid_values_name_the_key(env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_gateway_settings(environ=env)
    assert key in info.value.message


def test_alpha_capable_with_v1_is_refused_naming_both_keys() -> None:
    with pytest.raises(ConfigError) as info:
        load_gateway_settings(environ={"QMTL__GATEWAY__ALPHA_METRICS_CAPABLE": "true"})
    assert "gateway.alpha_metrics_capable" in info.value.message
    assert "gateway.rebalance_schema_version" in info.value.message


def test_settings_are_immutable() -> None:
    s = GatewaySettings()
    with pytest.raises(ValueError):
        s.rebalance_schema_version = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('gateway:\n  rebalance_schema_version: "2.0"\n', "gateway.rebalance_schema_version"),
        ("gateway:\n  rebalance_schema_version: 2.0\n", "gateway.rebalance_schema_version"),
        ("gateway:\n  enforce_live_guard: off\n", "gateway.enforce_live_guard"),
        ("gateway:\n  default_venue_policy: {supports_reduce_only: no}\n",
         "gateway.default_venue_policy.supports_reduce_only"),
        ("gatway:\n  auth: {tokens: [secret]}\n", "gatway"),
        ("gateway:\n  auth: {tokns: [secret]}\n", "gateway.auth.tokns"),
    ],
)
def test_file_values_are_strict_and_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "qmtl.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_gateway_settings(path, environ={})
    assert info.value.context["key"] == key
