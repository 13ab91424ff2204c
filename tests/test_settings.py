"""The YAML + environment configuration loader shared by both services."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from qmtl.contracts.errors import ConfigError
from qmtl.settings import load_section


class Bind(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: str = "127.0.0.1"
    port: int = 8000


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = False
    version: int = 1
    tokens: list[str] = []
    bind: Bind = Bind()


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "qmtl.yml"
    path.write_text(text)
    return path


def test_defaults_without_file_or_environment() -> None:
    assert load_section(Section, ("gateway",), environ={}) == Section()


def test_file_section_is_read_and_other_sections_ignored(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "worldservice:\n  server: {x: 1}\ngateway:\n  enabled: true\n  version: 2\n"
    )
    assert load_section(Section, ("gateway",), path=path, environ={}) == Section(
        enabled=True, version=2
    )


def test_environment_overrides_file_with_nested_keys(tmp_path: Path) -> None:
    path = _write(tmp_path, "gateway:\n  version: 2\n  bind: {port: 9000}\n")
    env = {
        "QMTL__GATEWAY__VERSION": "3",
        "QMTL__GATEWAY__BIND__HOST": "0.0.0.0",
        "QMTL__GATEWAY__TOKENS": '["a", "b"]',
        "QMTL__OTHER__X": "ignored",
    }
    settings = load_section(Section, ("gateway",), path=path, environ=env)
    assert settings.version == 3
    assert settings.bind == Bind(host="0.0.0.0", port=9000)
    assert settings.tokens == ["a", "b"]


def test_explicit_overrides_win_and_none_is_skipped() -> None:
    env = {"QMTL__GATEWAY__VERSION": "3"}
    settings = load_section(
        Section, ("gateway",), environ=env, overrides={"version": 5, "enabled": None}
    )
    assert settings.version == 5 and settings.enabled is False


@pytest.mark.parametrize(
    ("raw", "expected"), [("false", False), ("true", True), ("0", False), ("1", True)]
)
def test_booleans_from_strings_are_parsed_strictly(raw: str, expected: bool) -> None:
    settings = load_section(Section, ("gateway",), environ={"QMTL__GATEWAY__ENABLED": raw})
    assert settings.enabled is expected


def test_junk_boolean_names_the_dotted_key() -> None:
    with pytest.raises(ConfigError, match=r"gateway\.enabled"):
        load_section(Section, ("gateway",), environ={"QMTL__GATEWAY__ENABLED": "yes please"})


def test_unknown_key_in_file_names_the_dotted_key(tmp_path: Path) -> None:
    path = _write(tmp_path, "gateway:\n  bind: {prot: 1}\n")
    with pytest.raises(ConfigError, match=r"gateway\.bind\.prot: unknown key") as info:
        load_section(Section, ("gateway",), path=path, environ={})
    assert info.value.context["key"] == "gateway.bind.prot"


def test_unknown_key_in_environment_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"gateway\.verison: unknown key"):
        load_section(Section, ("gateway",), environ={"QMTL__GATEWAY__VERISON": "2"})


def test_nested_section_path(tmp_path: Path) -> None:
    path = _write(tmp_path, "worldservice:\n  server:\n    version: 2\n")
    env = {"QMTL__WORLDSERVICE__SERVER__ENABLED": "true"}
    settings = load_section(Section, ("worldservice", "server"), path=path, environ=env)
    assert settings == Section(enabled=True, version=2)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("gateway: [1, 2]\n", "must be a mapping"),
        ("- a\n- b\n", "mapping at the top level"),
        ("gateway: {enabled: [\n", "not valid YAML"),
    ],
)
def test_malformed_files(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_section(Section, ("gateway",), path=_write(tmp_path, text), environ={})


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_section(Section, ("gateway",), path=tmp_path / "absent.yml", environ={})


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    assert load_section(Section, ("gateway",), path=_write(tmp_path, ""), environ={}) == Section()
