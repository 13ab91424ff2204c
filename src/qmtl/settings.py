"""Configuration loading shared by both services: YAML file + ``QMTL__`` environment overrides.

One YAML file may hold both sections (``worldservice.server`` and ``gateway``); each service
reads only its own. An environment variable ``QMTL__<SECTION>__<KEY>[__<SUBKEY>…]``
overrides the file (``QMTL__GATEWAY__REBALANCE_SCHEMA_VERSION=2``); its value is parsed
as JSON when it looks like JSON (``[...]``, ``{...}``) and otherwise left as a string.

Nothing is guessed, because a guess is how a typo starts a service with defaults and auth off:

* unknown keys at every level — a misspelled section (``gatway:``) in the file, a
  ``QMTL__GATWAY__…`` variable, a key inside a section — are errors naming the dotted key;
* an empty configuration file is an error (a file was named, so something was meant);
* booleans are ``true``/``false`` only (YAML ``yes``/``on``/``off`` are plain strings here,
  and the environment's ``"true"``/``"false"`` in any letter case); integers are integers
  (``2.0``, ``"2.0"`` and ``true`` are refused) — see :func:`check_scalars`.
"""

from __future__ import annotations

import json
import os
import re
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin
from urllib.parse import parse_qsl, urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from qmtl.contracts.errors import ConfigError

__all__ = [
    "ENV_PREFIX",
    "AuthSettings",
    "SECTIONS",
    "check_redis_url",
    "check_scalars",
    "load_section",
    "validation_error_to_config_error",
]

ENV_PREFIX = "QMTL__"
M = TypeVar("M", bound=BaseModel)

SECTIONS: tuple[tuple[str, ...], ...] = (("worldservice", "server"), ("gateway",))


class AuthSettings(BaseModel):
    """``auth`` of either service: bearer tokens; an empty list switches authentication off.
    ``/health`` is always open for probes; ``/metrics`` too unless ``protect_metrics`` (then
    scrapers send a token)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens: list[str] = Field(default_factory=list)
    protect_metrics: bool = False

    @field_validator("tokens")
    @classmethod
    def _no_blank_tokens(cls, tokens: list[str]) -> list[str]:
        if any(not token.strip() for token in tokens):
            raise ValueError("a token must be a non-empty string")
        return tokens

    @model_validator(mode="after")
    def _protection_needs_tokens(self) -> AuthSettings:
        if self.protect_metrics and not self.tokens:
            raise ValueError("protect_metrics needs auth.tokens: without a token there is "
                             "nothing to protect /metrics with")
        return self
"""Every section a QMTL configuration may hold; anything else is an unknown key."""


class _StrictBoolLoader(yaml.SafeLoader):
    """YAML 1.2 booleans: only ``true``/``false`` — ``yes``, ``on``, ``off`` stay strings."""


_BOOL_TAG = "tag:yaml.org,2002:bool"
_StrictBoolLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictBoolLoader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(
            f"cannot read config file {path}: {exc.strerror}", path=str(path)
        ) from exc
    try:
        data = yaml.load(text, Loader=_StrictBoolLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}", path=str(path)) from exc
    if data is None:
        raise ConfigError(f"config file {path} is empty: name no file to run with the "
                          "defaults, or give it a worldservice: or gateway: section",
                          path=str(path))
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    _check_layout(data, (), str(path))
    return data


def _check_layout(node: Mapping[str, Any], at: tuple[str, ...], source: str) -> None:
    """Refuse keys above the sections that are not on the path to a known section."""
    children = sorted({s[len(at)] for s in SECTIONS if s[:len(at)] == at and len(s) > len(at)})
    for key, value in node.items():
        where = (*at, str(key))
        if key not in children:
            dotted = ".".join(where)
            known = ", ".join(".".join((*at, c)) for c in children)
            raise ConfigError(f"{dotted}: unknown key in {source} (expected {known})",
                              key=dotted)
        if where not in SECTIONS and isinstance(value, Mapping):
            _check_layout(value, where, source)


def _dig(data: Mapping[str, Any], section: tuple[str, ...], source: str) -> dict[str, Any]:
    node: Any = data
    for i, part in enumerate(section):
        if not isinstance(node, Mapping):
            raise ConfigError(f"{'.'.join(section[:i])} must be a mapping ({source})")
        node = node.get(part, {})
    if node is None:
        return {}
    if not isinstance(node, Mapping):
        raise ConfigError(f"{'.'.join(section)} must be a mapping ({source})")
    return dict(node)


def _env_value(raw: str) -> Any:
    stripped = raw.strip()
    if stripped[:1] in ("[", "{"):
        try:
            return json.loads(stripped)
        except ValueError:
            return raw
    return raw


def _check_env_sections(environ: Mapping[str, str]) -> None:
    prefixes = [ENV_PREFIX + "__".join(p.upper() for p in s) + "__" for s in SECTIONS]
    for name in environ:
        if name.startswith(ENV_PREFIX) and not any(name.startswith(p) for p in prefixes):
            raise ConfigError(
                f"environment variable {name} names no configuration section (expected "
                + " or ".join(p + "…" for p in prefixes) + ")", key=name)


def _env_overrides(section: tuple[str, ...], environ: Mapping[str, str]) -> dict[str, Any]:
    _check_env_sections(environ)
    prefix = ENV_PREFIX + "__".join(p.upper() for p in section) + "__"
    overrides: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(prefix):
            continue
        path = [p.lower() for p in name[len(prefix) :].split("__") if p]
        if not path:
            continue
        node = overrides
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"environment variable {name} conflicts with another override")
        node[path[-1]] = _env_value(raw)
    return overrides


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


_INT_TEXT = re.compile(r"^[+-]?[0-9]+$")


def _unwrap_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _scalar_problem(annotation: Any, value: Any) -> str | None:
    if annotation is bool:
        if isinstance(value, bool) or (isinstance(value, str)
                                       and value.strip().lower() in ("true", "false")):
            return None
        return f"must be true or false, got {value!r:.60}"
    if annotation is int:
        if (isinstance(value, int) and not isinstance(value, bool)) or (
                isinstance(value, str) and _INT_TEXT.match(value.strip())):
            return None
        return f"must be an integer, got {value!r:.60}"
    return None


def check_scalars(model: type[BaseModel], data: Mapping[str, Any], at: tuple[str, ...]) -> None:
    """Refuse lenient booleans and integers before pydantic would coerce them.

    pydantic's lax mode reads ``"yes"``, ``"1"``, ``"off"`` as booleans and ``2.0`` or
    ``"2.0"`` as the integer 2; a configuration must say exactly what it means. Walks the
    raw ``data`` along ``model``'s fields (nested models, ``dict[str, Model]`` and
    ``list[Model]`` included); None is left to the model (it says whether None is allowed).

    Raises:
        ConfigError: naming the dotted key of the first bad value.
    """
    for name, field in model.model_fields.items():
        if name not in data or data[name] is None:
            continue
        key = (*at, name)
        _check_value(_unwrap_optional(field.annotation), data[name], key)


def _check_value(annotation: Any, value: Any, key: tuple[str, ...]) -> None:
    problem = _scalar_problem(annotation, value)
    if problem is not None:
        dotted = ".".join(key)
        raise ConfigError(f"invalid configuration: {dotted}: {problem}", key=dotted)
    origin = get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if isinstance(value, Mapping):
            check_scalars(annotation, value, key)
    elif origin is dict and isinstance(value, Mapping):
        item = _unwrap_optional(get_args(annotation)[1])
        for k, v in value.items():
            if v is not None:
                _check_value(item, v, (*key, str(k)))
    elif origin is list and isinstance(value, list):
        item = _unwrap_optional(get_args(annotation)[0])
        for i, v in enumerate(value):
            if v is not None:
                _check_value(item, v, (*key, str(i)))


_REDIS_URL_PARAMS = frozenset({
    # What redis-py's URL parser understands; any other parameter would only fail at the
    # first connection, long after start-up.
    "db", "socket_timeout", "socket_connect_timeout", "socket_keepalive", "retry_on_timeout",
    "max_connections", "health_check_interval", "ssl_check_hostname", "ssl_cert_reqs",
    "ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "timeout",
})


def check_redis_url(url: str, *, extra_params: frozenset[str] = frozenset()) -> str:
    """``url`` if it is a usable ``redis://`` / ``rediss://`` URL, else ``ValueError``.

    redis-py reads ``redis://h:6379/abc`` as database 0 and fails on ``redis://h:notaport/0``
    only when the first connection is made (a traceback at start-up); both are refused here,
    with the reason, so the configuration loader names the key.
    """
    parts = urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError:
        port_text = parts.netloc.rpartition("@")[2].rpartition(":")[2]
        raise ValueError(f"Redis URL port {port_text!r} is not a number from 1 to 65535"
                         ) from None
    if port == 0:
        raise ValueError("Redis URL port 0 is not a port")
    database = parts.path.strip("/")
    if database and not database.isdecimal():
        raise ValueError(f"Redis URL database {database!r} is not a number (redis://HOST:PORT/0)")
    for key, _ in parse_qsl(parts.query, keep_blank_values=True):
        if key not in _REDIS_URL_PARAMS and key not in extra_params:
            raise ValueError(f"Redis URL parameter {key!r} is not supported")
    return url


def validation_error_to_config_error(exc: ValidationError, section: tuple[str, ...]) -> ConfigError:
    """A :class:`ConfigError` whose message names every bad dotted key."""
    problems = []
    first_key = None
    for err in exc.errors():
        key = ".".join([*section, *(str(p) for p in err["loc"])])
        first_key = first_key or key
        if err["type"] == "extra_forbidden":
            problems.append(f"{key}: unknown key")
        else:
            # A validator's own message is the reason; pydantic's prefix adds nothing.
            problems.append(f"{key}: {err['msg'].removeprefix('Value error, ')}")
    return ConfigError("invalid configuration: " + "; ".join(problems), key=first_key)


def load_section(
    model: type[M],
    section: tuple[str, ...],
    *,
    path: Path | str | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> M:
    """Build ``model`` from a YAML section, then environment, then explicit overrides.

    Args:
        model: the section's settings model (``extra="forbid"`` so typos are errors).
        section: the path of the section in the file, e.g. ``("worldservice", "server")``.
        path: the YAML file, or ``None`` for defaults + environment only.
        environ: the environment (``os.environ`` by default).
        overrides: values that win over everything (command-line flags).
        defaults: values below the file (an embedding program's own defaults, e.g. ``qmtl up``).

    Raises:
        ConfigError: unreadable or empty file, unknown key (in the file or a ``QMTL__``
            variable), or invalid value — naming the dotted key.
    """
    data = _dig(_read_yaml(Path(path)), section, str(path)) if path is not None else {}
    if defaults:
        data = _merge(dict(defaults), data)
    data = _merge(data, _env_overrides(section, os.environ if environ is None else environ))
    if overrides:
        data = _merge(data, {k: v for k, v in overrides.items() if v is not None})
    check_scalars(model, data, section)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error_to_config_error(exc, section) from exc
