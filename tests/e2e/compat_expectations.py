"""The expected compatibility matrix (issue #6 item 1), written from SPEC — not from observation.

Dimensions::

    WorldService  v1-only      compat_rebalance_v2=false                      serves [1]
                  v2           compat_rebalance_v2=true                       serves [1, 2]
                  v2-required  compat_rebalance_v2=true, alpha_metrics_required=true
    Gateway       schema-1        rebalance_schema_version=1, alpha_metrics_capable=false
                  schema-2-alpha  rebalance_schema_version=2, alpha_metrics_capable=true
    Client        legacy   plain httpx / websockets: sends no schema_version, ignores unknown keys
                  sdk-v2   qmtl.sdk Runner + GatewayClient: asks v2 (and sends its recorded
                           returns as alpha_series) only when its alpha feature is on
    Operation     plan, apply, execute (dry run), events (the WebSocket relay of the apply)

How each expectation follows from SPEC:

* Feature rule (SPEC 1, 2.7): the SDK's alpha feature is on iff the gateway is alpha capable
  and the *effective* version (best version common to the gateway's
  ``rebalance_schema_version`` and the WorldService's ``schema_versions``) is >= 2.
* The gateway asks ``min(client's schema_version or its own, its own)`` and never more than
  the WorldService serves (SPEC 2.5, 2.7: it knows ``schema_versions`` from WS ``/health``).
  A client that sends nothing therefore gets the gateway's version; a legacy client ignores
  the v2-only keys it does not know, so that is safe for it.
* The WorldService serves ``min(requested or 1, 2 if compat else 1)`` and refuses a request
  below 2 with 400 ``E_SCHEMA_VERSION_REQUIRED`` (message names ``schema_version>=2``) when
  ``alpha_metrics_required`` is on (SPEC 2.5, 8). The gateway relays it unchanged (SPEC 6).
* A v1 document has no ``alpha_metrics`` key; a v2 document always has it: zeros without
  raw data, the values of the SDK's own metric function with ``alpha_series`` (SPEC 2.3, 2.4).
* Execute reports the version actually served as ``rebalance_schema_version`` and claims
  ``alpha_metrics_capable`` only when the gateway is capable *and* the plan it executed was a
  v2 plan with metrics (SPEC 1: never claim metrics that were not received; SPEC 4).
* Events carry the negotiated version of the apply that produced them and, only in v2, the
  world's alpha slice (SPEC 2.6); the gateway relays ``data`` unchanged (SPEC 10). A refused
  apply commits nothing, so nothing is relayed.

``render_markdown()`` turns this table into ``docs/compatibility.md``
(``uv run python scripts/gen_compat_matrix.py``); a test fails when the page drifts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "CLIENTS",
    "EXPECTED",
    "GATEWAY_CONFIGS",
    "OPERATIONS",
    "PAIR_EXPECTED",
    "WORLDSERVICE_CONFIGS",
    "Cell",
    "GatewayConfig",
    "Outcome",
    "PairOutcome",
    "WorldServiceConfig",
    "render_markdown",
]

Alpha = Literal["absent", "zeros", "computed"]
"""``absent``: no ``alpha_metrics`` key (v1). ``zeros``: every value 0.0 (v2 without data).
``computed``: the recorded returns' metrics (equal to empyrical's) and zeros elsewhere."""


@dataclass(frozen=True, slots=True)
class WorldServiceConfig:
    compat_rebalance_v2: bool
    alpha_metrics_required: bool

    @property
    def schema_versions(self) -> tuple[int, ...]:
        return (1, 2) if self.compat_rebalance_v2 else (1,)


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    rebalance_schema_version: int
    alpha_metrics_capable: bool


WORLDSERVICE_CONFIGS: dict[str, WorldServiceConfig] = {
    "v1-only": WorldServiceConfig(compat_rebalance_v2=False, alpha_metrics_required=False),
    "v2": WorldServiceConfig(compat_rebalance_v2=True, alpha_metrics_required=False),
    "v2-required": WorldServiceConfig(compat_rebalance_v2=True, alpha_metrics_required=True),
}
GATEWAY_CONFIGS: dict[str, GatewayConfig] = {
    "schema-1": GatewayConfig(rebalance_schema_version=1, alpha_metrics_capable=False),
    "schema-2-alpha": GatewayConfig(rebalance_schema_version=2, alpha_metrics_capable=True),
}
CLIENTS: tuple[str, ...] = ("legacy", "sdk-v2")
OPERATIONS: tuple[str, ...] = ("plan", "apply", "execute", "events")

Cell = tuple[str, str, str, str]
"""(worldservice, gateway, client, operation)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one cell does.

    Attributes:
        status: HTTP status (``None`` for ``events``).
        schema_version: the served version (plan/apply ``schema_version``, execute
            ``rebalance_schema_version``, the events' ``data.schema_version``).
        alpha: the ``alpha_metrics`` of the document or of every event (see :data:`Alpha`;
            an observation that is none of those is described as ``"unexpected: …"``).
        alpha_metrics_capable: execute only.
        events: how many events of the apply were relayed (one per world of the plan).
        error_code: ``detail.code`` of an error answer.
        error_mentions: text the error message must contain.
    """

    status: int | None = None
    schema_version: int | None = None
    alpha: Alpha | str | None = None
    alpha_metrics_capable: bool | None = None
    events: int | None = None
    error_code: str | None = None
    error_mentions: str | None = None

    def describe(self) -> str:
        """A short human form for the docs table."""
        if self.error_code is not None:
            return f"**{self.status} `{self.error_code}`**"
        if self.events is not None:
            if self.events == 0:
                return "no event"
            return f"{self.events} events · v{self.schema_version} · alpha {self.alpha}"
        if self.alpha_metrics_capable is not None:
            return (f"{self.status} · v{self.schema_version} · "
                    f"capable={'true' if self.alpha_metrics_capable else 'false'}")
        return f"{self.status} · v{self.schema_version} · alpha {self.alpha}"


@dataclass(frozen=True, slots=True)
class PairOutcome:
    """What a client sees on the gateway's ``GET /health`` for one WorldService x Gateway pair.

    Attributes:
        effective_schema_version: ``effective_rebalance_schema_version``.
        worldservice_status: the ``worldservice`` component's status (``degraded`` when the
            WorldService requires a version this gateway will not send).
        sdk_alpha_feature: the Runner's alpha feature after reading the capabilities.
        v2_rollout_check: whether ``qmtl check-health --expect-schema-version 2
            --expect-alpha-metrics`` (``qmtl.sdk.check_gateway_health``) passes.
    """

    effective_schema_version: int
    worldservice_status: str
    sdk_alpha_feature: bool
    v2_rollout_check: bool


# --- the building blocks of the table ------------------------------------------------------

WORLDS_PER_PLAN = 2
"""The matrix request plans two worlds, so an apply publishes two events."""

REFUSED = Outcome(status=400, error_code="E_SCHEMA_VERSION_REQUIRED",
                  error_mentions="schema_version>=2")
NO_EVENT = Outcome(events=0)


def served(version: int, alpha: Alpha) -> Outcome:
    return Outcome(status=200, schema_version=version, alpha=alpha)


def executed(version: int, *, capable: bool) -> Outcome:
    return Outcome(status=200, schema_version=version, alpha_metrics_capable=capable)


def relayed(version: int, alpha: Alpha) -> Outcome:
    return Outcome(events=WORLDS_PER_PLAN, schema_version=version, alpha=alpha)


V1 = (served(1, "absent"), served(1, "absent"), executed(1, capable=False),
      relayed(1, "absent"))
V2_NO_DATA = (served(2, "zeros"), served(2, "zeros"), executed(2, capable=True),
              relayed(2, "zeros"))
V2_COMPUTED = (served(2, "computed"), served(2, "computed"), executed(2, capable=True),
               relayed(2, "computed"))
REFUSED_ALL = (REFUSED, REFUSED, REFUSED, NO_EVENT)

# --- the table ------------------------------------------------------------------------------

_ROWS: list[tuple[str, str, str, tuple[Outcome, Outcome, Outcome, Outcome], str]] = [
    # worldservice, gateway, client, (plan, apply, execute, events), why
    ("v1-only", "schema-1", "legacy", V1,
     "everyone speaks v1"),
    ("v1-only", "schema-1", "sdk-v2", V1,
     "gateway not alpha capable: SDK feature off, sends no version"),
    ("v1-only", "schema-2-alpha", "legacy", V1,
     "gateway prefers v2 but the WorldService serves only [1]: it asks v1"),
    ("v1-only", "schema-2-alpha", "sdk-v2", V1,
     "effective version 1: SDK feature off; RebalanceResult.alpha_metrics is None"),
    ("v2", "schema-1", "legacy", V1,
     "gateway asks v1; WorldService serves min(1, 2) = 1"),
    ("v2", "schema-1", "sdk-v2", V1,
     "gateway not alpha capable: SDK feature off"),
    ("v2", "schema-2-alpha", "legacy", V2_NO_DATA,
     "gateway asks v2 on the client's behalf; no alpha_series, so the envelope is all zeros; "
     "the legacy client ignores the v2 keys"),
    ("v2", "schema-2-alpha", "sdk-v2", V2_COMPUTED,
     "SDK feature on: asks v2 with its recorded returns; metrics computed by the WorldService "
     "with the SDK's function"),
    ("v2-required", "schema-1", "legacy", REFUSED_ALL,
     "gateway asks v1; the WorldService requires v2 and refuses (relayed unchanged)"),
    ("v2-required", "schema-1", "sdk-v2", REFUSED_ALL,
     "as legacy: the gateway caps every request at v1, whatever the SDK could do"),
    ("v2-required", "schema-2-alpha", "legacy", V2_NO_DATA,
     "the v2 gateway asks v2, so even a legacy client passes the requirement"),
    ("v2-required", "schema-2-alpha", "sdk-v2", V2_COMPUTED,
     "SDK feature on, v2 with computed metrics"),
]

EXPECTED: dict[Cell, Outcome] = {
    (ws, gw, client, op): outcome
    for ws, gw, client, outcomes, _why in _ROWS
    for op, outcome in zip(OPERATIONS, outcomes, strict=True)
}
WHY: dict[tuple[str, str, str], str] = {(ws, gw, client): why
                                         for ws, gw, client, _o, why in _ROWS}

PAIR_EXPECTED: dict[tuple[str, str], PairOutcome] = {
    # The rollout check needs advertised and effective versions >= 2 and alpha capability,
    # exactly the SDK's feature condition.
    ("v1-only", "schema-1"): PairOutcome(1, "ok", False, v2_rollout_check=False),
    ("v1-only", "schema-2-alpha"): PairOutcome(1, "ok", False, v2_rollout_check=False),
    ("v2", "schema-1"): PairOutcome(1, "ok", False, v2_rollout_check=False),
    ("v2", "schema-2-alpha"): PairOutcome(2, "ok", True, v2_rollout_check=True),
    ("v2-required", "schema-1"): PairOutcome(1, "degraded", False, v2_rollout_check=False),
    ("v2-required", "schema-2-alpha"): PairOutcome(2, "ok", True, v2_rollout_check=True),
}


# --- rendering ------------------------------------------------------------------------------

_INTRO = """\
# Compatibility matrix

WorldService, Gateway and SDK are deployed independently, so every mix of old and new
configurations must either work or fail with a clear, documented error — never a silent
mis-parse. This page lists what each mix does. It is generated from the declarative table in
`tests/e2e/compat_expectations.py` by `uv run python scripts/gen_compat_matrix.py`, and the
end-to-end test `tests/e2e/test_compat_matrix.py` runs every cell against real
`qmtl worldservice serve` / `qmtl gateway serve` processes on a Redis ControlBus and fails when
an observed outcome differs from this table (or when this page differs from the table).
The negotiation rules themselves are described in the
[contract](contract.md#version-negotiation).
"""

_CONFIGS = """\
## The configurations

| WorldService | `compat_rebalance_v2` | `alpha_metrics_required` | `/health` `schema_versions` |
|---|---|---|---|
{ws_rows}

| Gateway | `rebalance_schema_version` | `alpha_metrics_capable` |
|---|---|---|
{gw_rows}

| Client | what it sends and reads |
|---|---|
{client_rows}
"""

_CLIENT_ROWS = (
    ("legacy", "plain HTTP (httpx) and a raw WebSocket: sends **no** `schema_version`, "
               "ignores unknown keys"),
    ("sdk-v2", "`qmtl.sdk.Runner` + `GatewayClient`: reads `/health`; when its alpha feature "
               "is on (gateway alpha capable **and** effective version ≥ 2) it asks "
               "`schema_version=2` and sends its recorded returns as "
               "`alpha_series.per_strategy`; otherwise it sends neither"),
)

_RULES = """\
## Rules behind the table

* The gateway asks the WorldService for `min(client's schema_version or its own, its own)`,
  lowered to the best version the WorldService lists in `/health` `schema_versions`. A client
  that sends no version therefore gets the gateway's version (legacy clients ignore the v2 keys).
* The WorldService serves `min(requested or 1, 2 if compat_rebalance_v2 else 1)`; with
  `alpha_metrics_required` it answers **400 `E_SCHEMA_VERSION_REQUIRED`** (the message says
  `schema_version>=2`) to anything below 2, and the gateway relays that status and detail
  unchanged.
* A v1 document has no `alpha_metrics` / `rebalance_intent` keys at all; a v2 document always
  has both. Without `alpha_series` every metric is `0.0`; with it, the values are those of the
  SDK's own metric function (the test checks them against empyrical).
* Execute's `rebalance_schema_version` is the version actually served for the plan it executed;
  `alpha_metrics_capable` is true only when the gateway is capable **and** that plan was v2 with
  metrics.
* Each apply publishes one `rebalancing_planned` event per world; the gateway relays its `data`
  unchanged, so the WebSocket sees the apply's version (v2 events carry the world's alpha
  slice). A refused apply writes nothing and publishes nothing.
* WebSocket resume: `subscribed` now carries an `epoch` (clients that ignore unknown keys are
  unaffected). A client older than epochs that resumes with `since_seq` alone still gets the
  events after it, but `recovered: false` — the gateway cannot tell whether that seq is from
  its current numbering (a restarted `qmtl up` numbers from 1 again). Send the `epoch` back
  to be told `recovered: true`; the SDK does.
"""

_LEGEND = """\
Cell legend: `200 · v2 · alpha zeros` = HTTP 200, served schema v2, `alpha_metrics` present
with every value 0.0; `alpha computed` = present with the metrics of the SDK's recorded returns;
`alpha absent` = no `alpha_metrics` key (v1). Execute cells show `rebalance_schema_version` and
`alpha_metrics_capable`. Events cells show how many `rebalancing.planned` events of the apply
reached the WebSocket subscriber, their `data.schema_version` and alpha slice.
"""


def _flag(value: bool) -> str:
    return "true" if value else "false"


def render_markdown() -> str:
    """``docs/compatibility.md``: intro, configurations, the matrix, capabilities, rules."""
    ws_rows = "\n".join(
        f"| {name} | {_flag(c.compat_rebalance_v2)} | {_flag(c.alpha_metrics_required)} | "
        f"{list(c.schema_versions)} |" for name, c in WORLDSERVICE_CONFIGS.items())
    gw_rows = "\n".join(
        f"| {name} | {c.rebalance_schema_version} | {_flag(c.alpha_metrics_capable)} |"
        for name, c in GATEWAY_CONFIGS.items())
    client_rows = "\n".join(f"| {name} | {text} |" for name, text in _CLIENT_ROWS)
    lines = [_INTRO, _CONFIGS.format(ws_rows=ws_rows, gw_rows=gw_rows, client_rows=client_rows)]

    lines.append("## The matrix\n")
    lines.append(_LEGEND)
    lines.append("| WorldService | Gateway | Client | plan | apply | execute | events | why |")
    lines.append("|---|---|---|---|---|---|---|---|")
    for ws, gw, client, _outcomes, why in _ROWS:
        cells = " | ".join(EXPECTED[(ws, gw, client, op)].describe() for op in OPERATIONS)
        lines.append(f"| {ws} | {gw} | {client} | {cells} | {why} |")
    lines.append("")
    lines.append(
        f"{len(EXPECTED)} cells ({len(WORLDSERVICE_CONFIGS)} WorldService x "
        f"{len(GATEWAY_CONFIGS)} Gateway x {len(CLIENTS)} clients x {len(OPERATIONS)} "
        "operations).\n")
    lines.append("Every refusal is **400** with body\n"
                 '`{"detail": {"code": "E_SCHEMA_VERSION_REQUIRED", "message": "… '
                 'schema_version>=2 …", …}}`.\n')

    lines.append("## What the gateway's `/health` tells a client\n")
    lines.append("| WorldService | Gateway | `effective_rebalance_schema_version` | "
                 "`worldservice.status` | SDK alpha feature | `check-health` v2 |")
    lines.append("|---|---|---|---|---|---|")
    for (ws, gw), pair in PAIR_EXPECTED.items():
        lines.append(f"| {ws} | {gw} | {pair.effective_schema_version} | "
                     f"{pair.worldservice_status} | {'on' if pair.sdk_alpha_feature else 'off'} | "
                     f"{'pass' if pair.v2_rollout_check else 'fail'} |")
    lines.append("")
    lines.append("A gateway whose WorldService requires v2 but which is configured for v1 reports "
                 "its `worldservice` component as `degraded` with a detail that says why, so the "
                 "misconfiguration is visible before the first refused request. The pre-rollout "
                 "check `qmtl check-health --gateway URL --expect-schema-version 2 "
                 "--expect-alpha-metrics` passes only where the SDK's alpha feature turns on; "
                 "it fails for a schema-2 gateway in front of a v1-only WorldService "
                 "(effective version 1).\n")
    lines.append(_RULES)
    return "\n".join(lines)
