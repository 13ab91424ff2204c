"""``worldservice.server.*``: defaults, DSN normalisation, strict booleans, keys named in errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from qmtl.contracts.errors import ConfigError
from qmtl.worldservice.config import WorldServiceSettings, load_settings, normalize_dsn

ENV = "QMTL__WORLDSERVICE__SERVER__"


def test_defaults_match_the_spec() -> None:
    settings = load_settings(environ={})
    assert settings.dsn == "sqlite+aiosqlite:///./.qmtl/worldservice.db"
    assert settings.controlbus == "memory://"
    assert settings.compat_rebalance_v2 is False
    assert settings.alpha_metrics_required is False
    assert (settings.bind.host, settings.bind.port) == ("127.0.0.1", 8080)
    assert settings.auth.tokens == []
    assert settings.periods_per_year == 252
    assert settings.source == "qmtl.worldservice"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///./x.db", "sqlite+aiosqlite:///./x.db"),
        ("sqlite:////abs/x.db", "sqlite+aiosqlite:////abs/x.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("postgresql://u:p@h:5432/db", "postgresql+asyncpg://u:p@h:5432/db"),
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
    ],
)
def test_dsn_is_normalised_to_the_async_driver(given: str, expected: str) -> None:
    assert normalize_dsn(given) == expected
    assert load_settings(environ={ENV + "DSN": given}).dsn == expected


@pytest.mark.parametrize("dsn", ["mysql://u@h/db", "postgresql+psycopg://u@h/db", "not a url",
                                 "sqlite://", "sqlite:///", "sqlite:///:memory:",
                                 "sqlite+aiosqlite:///:memory:", "redis://h:1/0"])
def test_bad_dsn_names_the_key(dsn: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ={ENV + "DSN": dsn})
    assert "worldservice.server.dsn" in str(info.value)
    assert info.value.context["key"] == "worldservice.server.dsn"


@pytest.mark.parametrize(("raw", "expected"), [("false", False), ("true", True),
                                               ("False", False)])
def test_booleans_from_the_environment_are_parsed_strictly(raw: str, expected: bool) -> None:
    settings = load_settings(environ={ENV + "COMPAT_REBALANCE_V2": raw})
    assert settings.compat_rebalance_v2 is expected


@pytest.mark.parametrize("raw", ["yes please", "2", "", "nope", "yes", "1", "0", "off"])
def test_junk_boolean_names_the_key(raw: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ={ENV + "COMPAT_REBALANCE_V2": raw})
    assert "worldservice.server.compat_rebalance_v2" in str(info.value)


def test_alpha_metrics_required_without_compat_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ={ENV + "ALPHA_METRICS_REQUIRED": "true"})
    message = str(info.value)
    assert "worldservice.server.alpha_metrics_required" in message
    assert "worldservice.server.compat_rebalance_v2" in message


def test_alpha_metrics_required_with_compat_is_accepted() -> None:
    settings = load_settings(environ={ENV + "ALPHA_METRICS_REQUIRED": "true",
                                      ENV + "COMPAT_REBALANCE_V2": "true"})
    assert settings.alpha_metrics_required and settings.compat_rebalance_v2


def test_unknown_key_in_the_file_is_named(tmp_path: Path) -> None:
    config = tmp_path / "qmtl.yml"
    config.write_text("worldservice:\n  server:\n    compat_rebalance_v3: true\n")
    with pytest.raises(ConfigError, match=r"worldservice\.server\.compat_rebalance_v3: unknown"):
        load_settings(config, environ={})


def test_nested_keys_from_file_and_environment(tmp_path: Path) -> None:
    config = tmp_path / "qmtl.yml"
    config.write_text(
        "worldservice:\n  server:\n    bind: {host: 0.0.0.0, port: 9000}\n"
        "    auth: {tokens: [abc]}\n    relay: {batch_size: 10}\n"
        "gateway:\n  rebalance_schema_version: 2\n"
    )
    settings = load_settings(config, environ={ENV + "BIND__PORT": "9100"})
    assert settings.bind.host == "0.0.0.0"
    assert settings.bind.port == 9100  # the environment wins over the file
    assert settings.auth.tokens == ["abc"]
    assert settings.relay.batch_size == 10


@pytest.mark.parametrize(
    ("key", "value"),
    [("controlbus", "kafka://h:9092"), ("controlbus", "redis://h:1/0?retention=abc"),
     ("bind.port", 0), ("relay.poll_interval", 0),
     ("max_positions", 0), ("periods_per_year", -1), ("auth.tokens", [" "]),
     ("relay.backoff_max", 0.01), ("source", "qmtl\nworldservice"), ("source", " ")],
)
def test_invalid_values_name_their_key(key: str, value: object) -> None:
    data: dict[str, object] = {}
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})  # type: ignore[assignment]
    node[parts[-1]] = value
    with pytest.raises(ConfigError) as info:
        load_settings(environ={}, overrides=data)
    assert f"worldservice.server.{parts[0]}" in str(info.value)


def test_settings_model_refuses_unknown_fields() -> None:
    with pytest.raises(ValueError, match="extra"):
        WorldServiceSettings.model_validate({"dsn": "sqlite:///x.db", "bogus": 1})


def test_protect_metrics_needs_tokens() -> None:
    with pytest.raises(ConfigError, match=r"worldservice\.server\.auth: protect_metrics needs"):
        load_settings(environ={ENV + "AUTH__PROTECT_METRICS": "true"})
    settings = load_settings(environ={ENV + "AUTH__PROTECT_METRICS": "true",
                                      ENV + "AUTH__TOKENS": '["t"]'})
    assert settings.auth.protect_metrics is True
