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
        "QMTL__WORLDSERVICE__SERVER__DSN": "another section's key",
        "QMTL_GATEWAY_URL": "not a config override (one underscore)",
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
    ("raw", "expected"), [("false", False), ("true", True), ("False", False), ("TRUE", True)]
)
def test_booleans_from_strings_are_parsed_strictly(raw: str, expected: bool) -> None:
    settings = load_section(Section, ("gateway",), environ={"QMTL__GATEWAY__ENABLED": raw})
    assert settings.enabled is expected


@pytest.mark.parametrize("raw", ["yes", "1", "0", "off", "on", "no", "t", "yes please", ""])
def test_lenient_boolean_strings_are_refused_naming_the_key(raw: str) -> None:
    with pytest.raises(ConfigError, match=r"gateway\.enabled: must be true or false") as info:
        load_section(Section, ("gateway",), environ={"QMTL__GATEWAY__ENABLED": raw})
    assert info.value.context["key"] == "gateway.enabled"


@pytest.mark.parametrize("text", ["yes", "off", "on", "no", "1", "0", "'truthy'", "1.0"])
def test_yaml_booleans_are_only_true_and_false(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path, f"gateway:\n  enabled: {text}\n")
    with pytest.raises(ConfigError, match=r"gateway\.enabled: must be true or false"):
        load_section(Section, ("gateway",), path=path, environ={})


@pytest.mark.parametrize("text", ["true", "false", "True", "FALSE"])
def test_yaml_true_and_false_are_booleans(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path, f"gateway:\n  enabled: {text}\n")
    expected = text.lower() == "true"
    assert load_section(Section, ("gateway",), path=path, environ={}).enabled is expected


@pytest.mark.parametrize("text", ['"2.0"', "2.0", "true", "'2x'", "2e0", "'two'"])
def test_integers_are_strict_in_the_file(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path, f"gateway:\n  version: {text}\n")
    with pytest.raises(ConfigError, match=r"gateway\.version: must be an integer"):
        load_section(Section, ("gateway",), path=path, environ={})


@pytest.mark.parametrize("raw", ["2.0", "true", "0x2", "2e0"])
def test_integers_are_strict_in_the_environment(raw: str) -> None:
    with pytest.raises(ConfigError, match=r"gateway\.bind\.port: must be an integer"):
        load_section(Section, ("gateway",), environ={"QMTL__GATEWAY__BIND__PORT": raw})


def test_integer_strings_from_the_environment_are_integers() -> None:
    env = {"QMTL__GATEWAY__VERSION": "2", "QMTL__GATEWAY__BIND__PORT": " 9000"}
    settings = load_section(Section, ("gateway",), environ=env)
    assert (settings.version, settings.bind.port) == (2, 9000)


def test_strict_scalars_reach_into_dicts_of_models(tmp_path: Path) -> None:
    class Venue(BaseModel):
        model_config = ConfigDict(extra="forbid")
        ioc: bool = False

    class WithVenues(BaseModel):
        model_config = ConfigDict(extra="forbid")
        venues: dict[str, Venue] = {}

    path = _write(tmp_path, "gateway:\n  venues: {binance: {ioc: yes}}\n")
    with pytest.raises(ConfigError, match=r"gateway\.venues\.binance\.ioc: must be true"):
        load_section(WithVenues, ("gateway",), path=path, environ={})


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


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n", "---\n"])
def test_empty_file_is_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="is empty"):
        load_section(Section, ("gateway",), path=_write(tmp_path, text), environ={})


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("gatway:\n  auth: {tokens: [secret]}\n", "gatway"),
        ("gateway: {}\nworldservices:\n  server: {}\n", "worldservices"),
        ("worldservice:\n  sever:\n    auth: {tokens: [x]}\n", "worldservice.sever"),
        ("worldservice: {server: {}, gateway: {}}\n", "worldservice.gateway"),
    ],
)
def test_misspelled_section_is_refused_naming_it(tmp_path: Path, text: str, key: str) -> None:
    # Whichever service reads the file: a typo above the sections starts nobody with defaults.
    for section in (("gateway",), ("worldservice", "server")):
        with pytest.raises(ConfigError, match=rf"{key}: unknown key") as info:
            load_section(Section, section, path=_write(tmp_path, text), environ={})
        assert info.value.context["key"] == key


@pytest.mark.parametrize("name", ["QMTL__GATWAY__AUTH__TOKENS", "QMTL__WORLDSERVICE__SEVER__DSN",
                                  "QMTL__WORLDSERVICE__DSN", "QMTL__GATEWAY"])
def test_environment_variable_naming_no_section_is_refused(name: str) -> None:
    with pytest.raises(ConfigError, match=rf"environment variable {name} names no") as info:
        load_section(Section, ("gateway",), environ={name: '["secret"]'})
    assert info.value.context["key"] == name
