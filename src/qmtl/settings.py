"""Configuration loading shared by both services: YAML file + ``QMTL__`` environment overrides.

One YAML file may hold both sections (``worldservice:`` and ``gateway:``); each service
reads only its own. An environment variable ``QMTL__<SECTION>__<KEY>[__<SUBKEY>…]``
overrides the file (``QMTL__GATEWAY__REBALANCE_SCHEMA_VERSION=2``); its value is parsed
as JSON when it looks like JSON (``[...]``, ``{...}``) and otherwise left as a string for
the model to parse strictly (``"false"`` is false, ``"yes please"`` is an error).

Unknown keys — in the file or in the environment — are errors that name the dotted key,
so a typo never silently falls back to a default.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from qmtl.contracts.errors import ConfigError

__all__ = ["ENV_PREFIX", "load_section", "validation_error_to_config_error"]

ENV_PREFIX = "QMTL__"
M = TypeVar("M", bound=BaseModel)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(
            f"cannot read config file {path}: {exc.strerror}", path=str(path)
        ) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}", path=str(path)) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


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


def _env_overrides(section: tuple[str, ...], environ: Mapping[str, str]) -> dict[str, Any]:
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
            problems.append(f"{key}: {err['msg']}")
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
        ConfigError: unreadable file, unknown key, or invalid value — naming the dotted key.
    """
    data = _dig(_read_yaml(Path(path)), section, str(path)) if path is not None else {}
    if defaults:
        data = _merge(dict(defaults), data)
    data = _merge(data, _env_overrides(section, os.environ if environ is None else environ))
    if overrides:
        data = _merge(data, {k: v for k, v in overrides.items() if v is not None})
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error_to_config_error(exc, section) from exc
