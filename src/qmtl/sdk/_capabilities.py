"""Strict parsing of the gateway's capability bits and health document (SPEC 2.7).

The gateway's ``GET /health`` carries the bits twice: nested under ``capabilities`` and as
top-level copies kept for older SDKs. The nested value wins when both are present. Parsing is
strict because a mis-read bit silently switches a feature:

* booleans (``alpha_metrics_capable``): JSON ``true``/``false`` or the strings ``"true"``,
  ``"false"``, ``"1"``, ``"0"`` (case-insensitive, surrounding blanks ignored);
* versions (``rebalance_schema_version``, ``effective_rebalance_schema_version``): an integer
  ≥ 1 (a boolean is not an integer) or a string of ASCII digits;
* ``compute_context_contract``: a string.

Anything else — including ``null`` for a boolean or the advertised version — raises
:class:`CapabilityError` naming the key. Missing keys take the defaults of a gateway that
predates them: version 1, not alpha capable, no contract. ``effective_rebalance_schema_version``
``null`` means "unknown" (the gateway does not know what its WorldService serves yet).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._errors import CapabilityError

__all__ = [
    "Capabilities",
    "GatewayHealthView",
    "parse_capabilities",
    "parse_health",
]

_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})
_DIGITS = re.compile(r"[0-9]+")
_MISSING = object()

DEFAULT_SCHEMA_VERSION = 1
"""The advertised version of a gateway that does not say (an older gateway: v1 only)."""


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a gateway can do, as read from its ``/health``.

    Attributes:
        rebalance_schema_version: the plan schema version the gateway advertises.
        alpha_metrics_capable: whether the gateway relays alpha metrics.
        compute_context_contract: the compute-context contract label, when set.
        effective_rebalance_schema_version: the version the gateway says its WorldService will
            actually serve (``None`` = unknown, or absent — see ``effective_reported``).
        effective_reported: whether the health document had the effective key at all.
        reachable: ``False`` when the gateway could not be reached (every feature off).
        reason: why the capabilities are off (unreachable gateway), else ``None``.
    """

    rebalance_schema_version: int = DEFAULT_SCHEMA_VERSION
    alpha_metrics_capable: bool = False
    compute_context_contract: str | None = None
    effective_rebalance_schema_version: int | None = None
    effective_reported: bool = False
    reachable: bool = True
    reason: str | None = None

    @classmethod
    def unreachable(cls, reason: str) -> Capabilities:
        """Every feature off because the gateway could not be asked; ``reason`` says why."""
        return cls(reachable=False, reason=reason)

    @property
    def effective_schema_version(self) -> int | None:
        """The version that will actually be served.

        The gateway's ``effective_rebalance_schema_version`` when it reports that key (``None``
        = unknown: features stay off), else the advertised version (older gateways do not
        know about effective versions). ``None`` when the gateway is unreachable.
        """
        if not self.reachable:
            return None
        if self.effective_reported:
            return self.effective_rebalance_schema_version
        return self.rebalance_schema_version

    def supports_alpha_metrics(self) -> bool:
        """Alpha capable and an effective version ≥ 2 (the Runner's feature condition)."""
        effective = self.effective_schema_version
        return self.alpha_metrics_capable and effective is not None and effective >= 2


@dataclass(frozen=True, slots=True)
class GatewayHealthView:
    """A tolerant view of the gateway's ``GET /health`` with strictly parsed capabilities.

    Attributes:
        status: ``"ok"``, ``"degraded"`` or whatever the gateway said (``"unknown"`` if absent).
        capabilities: the parsed bits.
        components: each dependency's state (``worldservice``, ``controlbus``, ``commit_log``)
            as a short string (``"ok"``, ``"down"``…).
        document: the raw health document.
    """

    status: str
    capabilities: Capabilities
    components: dict[str, str] = field(default_factory=dict)
    document: dict[str, Any] = field(default_factory=dict)


def _lookup(document: Mapping[str, Any], nested: Mapping[str, Any], key: str) -> tuple[str, Any]:
    """The value of ``key`` (nested first) and the dotted name it was found under."""
    if key in nested:
        return f"capabilities.{key}", nested[key]
    if key in document:
        return key, document[key]
    return key, _MISSING


def parse_bool(name: str, value: Any) -> bool:
    """A capability boolean (see the module docstring).

    Raises:
        CapabilityError: anything but true/false or "true"/"false"/"1"/"0".
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise CapabilityError(name, value, 'true/false or "true"/"false"/"1"/"0"')


def parse_version(name: str, value: Any) -> int:
    """A schema version: an int ≥ 1 (not a bool) or a string of digits.

    Raises:
        CapabilityError: anything else (``2.0``, ``"v2"``, ``true``, ``0``, ``null``).
    """
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        number = int(value.strip())
    if number is None or number < 1:
        raise CapabilityError(name, value, "an integer >= 1 or a string of digits")
    return number


def parse_capabilities(document: Any) -> Capabilities:
    """Read the capability bits of a gateway health document (see the module docstring).

    Args:
        document: the decoded JSON of ``GET /health``.

    Returns:
        The parsed :class:`Capabilities` (defaults for missing keys).

    Raises:
        CapabilityError: the document or its ``capabilities`` is not an object, or a key has an
            invalid value; the error names the key.
    """
    if not isinstance(document, Mapping):
        raise CapabilityError("(health document)", document, "a JSON object")
    nested = document.get("capabilities", {})
    if nested is None:
        nested = {}
    if not isinstance(nested, Mapping):
        raise CapabilityError("capabilities", nested, "a JSON object")

    name, raw = _lookup(document, nested, "rebalance_schema_version")
    version = DEFAULT_SCHEMA_VERSION if raw is _MISSING else parse_version(name, raw)

    name, raw = _lookup(document, nested, "alpha_metrics_capable")
    alpha = False if raw is _MISSING else parse_bool(name, raw)

    name, raw = _lookup(document, nested, "compute_context_contract")
    contract: str | None = None
    if raw is not _MISSING and raw is not None:
        if not isinstance(raw, str):
            raise CapabilityError(name, raw, "a string")
        contract = raw

    name, raw = _lookup(document, nested, "effective_rebalance_schema_version")
    reported = raw is not _MISSING
    effective = None if raw is _MISSING or raw is None else parse_version(name, raw)

    return Capabilities(
        rebalance_schema_version=version,
        alpha_metrics_capable=alpha,
        compute_context_contract=contract,
        effective_rebalance_schema_version=effective,
        effective_reported=reported,
    )


def _component_state(value: Any) -> str:
    if isinstance(value, Mapping):
        return str(value.get("status", "unknown"))
    if isinstance(value, str):
        return value
    return "unknown"


def parse_health(document: Any) -> GatewayHealthView:
    """A :class:`GatewayHealthView` of a health document.

    Raises:
        CapabilityError: as :func:`parse_capabilities`.
    """
    capabilities = parse_capabilities(document)
    components = {
        name: _component_state(document[name])
        for name in ("worldservice", "controlbus", "commit_log")
        if name in document
    }
    status = document.get("status")
    return GatewayHealthView(
        status=status if isinstance(status, str) else "unknown",
        capabilities=capabilities,
        components=components,
        document=dict(document),
    )
