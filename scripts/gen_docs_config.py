"""Generate ``docs/reference/configuration.md`` from the pydantic settings models.

Every key, type, default and constraint comes from the models themselves
(``qmtl.worldservice.config.WorldServiceSettings`` and ``qmtl.gateway.config.GatewaySettings``);
only the one-line *effect* of each key is written here, in :data:`EFFECTS`. A key without an
effect, or an effect for a key that no longer exists, is an error, so the page cannot drift
from the code::

    uv run python scripts/gen_docs_config.py            # rewrite the page
    uv run python scripts/gen_docs_config.py --check    # exit 1 when the page is stale

``tests/docs/test_config_reference.py`` runs the check.
"""

from __future__ import annotations

import argparse
import enum
import sys
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "reference" / "configuration.md"
ENV_PREFIX = "QMTL__"
DICT_KEY = "<venue>"

EFFECTS: dict[str, str] = {
    # --- worldservice.server -------------------------------------------------------------
    "worldservice.server.dsn": (
        "The store. `sqlite:///FILE` and `postgresql://…`/`postgres://…` are rewritten to the "
        "async drivers (`sqlite+aiosqlite`, `postgresql+asyncpg`); any other scheme and an "
        "in-memory SQLite database are refused. Migrations run at start-up."),
    "worldservice.server.controlbus": (
        "Where `rebalancing_planned` events are published: `memory://NAME` (in-process, shared "
        "by name) or `redis://HOST:PORT/DB` / `rediss://…` (Redis Streams, key "
        "`qmtl:controlbus:rebalancing`). Optional `?retention=N` entries kept per topic."),
    "worldservice.server.compat_rebalance_v2": (
        "Serve plan schema v2 (`alpha_metrics` + `rebalance_intent`) to callers that ask for it. "
        "Off: every answer and event is v1."),
    "worldservice.server.alpha_metrics_required": (
        "Refuse requests below `schema_version` 2 with 400 `E_SCHEMA_VERSION_REQUIRED`. Needs "
        "`compat_rebalance_v2: true`, otherwise start-up is refused."),
    "worldservice.server.bind.host": "Address `qmtl worldservice serve` listens on.",
    "worldservice.server.bind.port": "TCP port `qmtl worldservice serve` listens on.",
    "worldservice.server.auth.tokens": (
        "Bearer tokens. Empty: authentication off. Otherwise every route except `/health` and "
        "`/metrics` (`/metrics` too with `auth.protect_metrics`), including `/docs` and "
        "`/openapi.json`, answers 401 `E_UNAUTHORIZED` without one of them."),
    "worldservice.server.auth.protect_metrics": (
        "`/metrics` needs a bearer token too (401 `E_UNAUTHORIZED` without one): give your "
        "scraper one of `auth.tokens` (Prometheus `authorization: {credentials: …}`). Off: "
        "`/metrics` is open for scrapers. `/health` is always open for probes. Needs "
        "`auth.tokens`, otherwise start-up is refused."),
    "worldservice.server.max_body_bytes": (
        "Largest request body in bytes (also counted on chunked uploads); larger is 413 "
        "`E_PAYLOAD_TOO_LARGE`."),
    "worldservice.server.max_positions": (
        "Most positions in one request; more is 413 `E_PAYLOAD_TOO_LARGE` with `positions` "
        "and `limit_positions` in the detail."),
    "worldservice.server.periods_per_year": (
        "P used for the plan's `alpha_metrics` (Sharpe annualisation and CAGR)."),
    "worldservice.server.source": "The CloudEvent `source` of every published event: "
                                  "printable text, at most 256 characters (checked at "
                                  "start-up).",
    "worldservice.server.store_timeout": (
        "Seconds: SQLite lock wait; PostgreSQL connect and command timeout. A store that does "
        "not answer in time gives 503 `E_STORE_UNAVAILABLE`."),
    "worldservice.server.legacy_request_digest": (
        "Store the request digest of the releases before the columnar apply (slower to "
        "compute: ~0.25 s at 100,000 positions) instead of the columnar one. Set it while "
        "replicas of an older release share the store (a rolling upgrade), so that a replayed "
        "apply landing on an old replica is recognised instead of 409 `E_RUN_ID_CONFLICT`; "
        "turn it off once every replica is upgraded. Runs stored either way replay on the new "
        "release."),
    "worldservice.server.relay.poll_interval": (
        "Seconds between outbox polls for rows written by other replicas or left over from a "
        "restart (an apply in the same process wakes the relay at once)."),
    "worldservice.server.relay.batch_size": "Outbox rows read per relay cycle.",
    "worldservice.server.relay.backoff_initial": (
        "Seconds before the first retry of a failed publish; the n-th retry waits "
        "`min(backoff_max, backoff_initial · 2^(n−1))`."),
    "worldservice.server.relay.backoff_max": (
        "Upper bound of the publish retry delay (must be ≥ `backoff_initial`)."),
    # --- gateway -------------------------------------------------------------------------
    "gateway.worldservice_url": "Base URL of the WorldService (`http://` or `https://`).",
    "gateway.worldservice_token": (
        "Bearer token the gateway sends to the WorldService (when the WorldService has "
        "`auth.tokens`)."),
    "gateway.rebalance_schema_version": (
        "Plan schema version this gateway asks the WorldService for and advertises on "
        "`/health`. A client may ask for less, never more; v2 falls back to v1 once when a "
        "legacy WorldService refuses it."),
    "gateway.alpha_metrics_capable": (
        "Advertise `alpha_metrics_capable` on `/health` (the SDK switches its alpha features on "
        "from it). Needs `rebalance_schema_version: 2`, otherwise start-up is refused."),
    "gateway.compute_context_contract": (
        "Optional contract label published as `capabilities.compute_context_contract` on "
        "`/health`; omitted when unset."),
    "gateway.timeouts.connect": (
        "Seconds to connect to the WorldService (then 504 `E_WORLDSERVICE_TIMEOUT`)."),
    "gateway.timeouts.read": (
        "Seconds to wait for a WorldService answer (then 504 `E_WORLDSERVICE_TIMEOUT`)."),
    "gateway.timeouts.write": "Seconds to send a request body to the WorldService.",
    "gateway.timeouts.pool": "Seconds to wait for a free connection to the WorldService.",
    "gateway.retries.attempts": (
        "Tries in all for safe calls (`GET /health` of the WorldService) after connection "
        "errors; 1 = no retry. Plan, apply and execute are never retried."),
    "gateway.retries.backoff": (
        "Seconds before the first retry; the n-th retry waits `backoff · 2^(n−1)`."),
    "gateway.breaker.failure_threshold": (
        "Consecutive WorldService failures (transport errors, timeouts, 5xx except 501) that "
        "open the circuit; calls then fail fast with 503 `E_WORLDSERVICE_UNAVAILABLE`."),
    "gateway.breaker.reset_timeout": (
        "Seconds the circuit stays open before one trial call is let through (half-open); "
        "success closes it, failure reopens it."),
    "gateway.capability_refresh_seconds": (
        "Seconds between background probes of the WorldService's `/health` (its schema "
        "versions decide `effective_rebalance_schema_version`)."),
    "gateway.enforce_live_guard": (
        "`submit=true` on `/rebalancing/execute` needs the header `X-Allow-Live: true`, "
        "otherwise 403 `E_PERMISSION_DENIED`."),
    "gateway.shared_account_policy.enabled": (
        "Allow `shared_account=true` (netting across worlds). Off: 403 "
        "`E_SHARED_ACCOUNT_DISABLED`."),
    "gateway.shared_account_policy.max_gross_notional": (
        "Limit on Σ|order notional| of the netted orders, base currency; over it is 422 "
        "`E_SHARED_ACCOUNT_POLICY` with the figures under `context`. Unset: no limit."),
    "gateway.shared_account_policy.max_net_notional": (
        "Limit on |Σ signed order notional|, base currency (422 `E_SHARED_ACCOUNT_POLICY`). "
        "Unset: no limit."),
    "gateway.shared_account_policy.min_margin_headroom": (
        "Lowest acceptable margin headroom after the orders, a ratio ≤ 1 (422 "
        "`E_SHARED_ACCOUNT_POLICY`). Unset: no limit."),
    "gateway.venue_policies.<venue>.lot_size": (
        "Order quantities at this venue are rounded toward zero to a multiple of this "
        "(instrument units). Unset: no rounding."),
    "gateway.venue_policies.<venue>.min_notional": (
        "Orders below this notional (base currency) at this venue are dropped."),
    "gateway.venue_policies.<venue>.supports_reduce_only": (
        "Whether orders that move their holder's position toward zero are flagged "
        "`reduce_only` at this venue (an order crossing zero is then split into a reduce-only "
        "closing part and an opening part); `false`: no flag, no split."),
    "gateway.venue_policies.<venue>.requires_ioc": (
        "Every order at this venue gets `time_in_force: IOC`."),
    "gateway.venue_policies.<venue>.default_time_in_force": (
        "`time_in_force` of orders at this venue unless `requires_ioc`."),
    "gateway.default_venue_policy.lot_size": (
        "As `venue_policies.<venue>.lot_size`, for venues without a policy and for "
        "positions without a venue."),
    "gateway.default_venue_policy.min_notional": (
        "As `venue_policies.<venue>.min_notional`, for every other venue."),
    "gateway.default_venue_policy.supports_reduce_only": (
        "As `venue_policies.<venue>.supports_reduce_only`, for every other venue."),
    "gateway.default_venue_policy.requires_ioc": (
        "As `venue_policies.<venue>.requires_ioc`, for every other venue."),
    "gateway.default_venue_policy.default_time_in_force": (
        "As `venue_policies.<venue>.default_time_in_force`, for every other venue."),
    "gateway.commit_log": (
        "Where submitted order batches go: `sqlite:///PATH` (relative after three slashes, "
        "absolute after four) or `redis://…`/`rediss://…` (Redis Streams, shareable by "
        "several gateways)."),
    "gateway.controlbus": (
        "The ControlBus the gateway consumes `rebalancing_planned` events from; must be the "
        "WorldService's (`memory://NAME` only works inside one process)."),
    "gateway.bind.host": "Address `qmtl gateway serve` listens on.",
    "gateway.bind.port": "TCP port `qmtl gateway serve` listens on.",
    "gateway.auth.tokens": (
        "Bearer tokens. Empty: authentication off. Otherwise `/rebalancing/*`, `/docs` and "
        "`/openapi.json` answer 401 `E_UNAUTHORIZED` and `/ws` closes with 1008 without one "
        "(`/health` stays open; `/metrics` too unless `auth.protect_metrics`)."),
    "gateway.auth.protect_metrics": (
        "`/metrics` needs a bearer token too (401 `E_UNAUTHORIZED` without one): give your "
        "scraper one of `auth.tokens`. Off: `/metrics` is open for scrapers. `/health` is "
        "always open for probes. Needs `auth.tokens`, otherwise start-up is refused."),
    "gateway.ws.history_size": (
        "Relayed events kept (and loaded from the ControlBus at start-up) for `since_seq` "
        "resume; a resume from further back is answered `recovered: false`."),
    "gateway.ws.client_queue_size": (
        "Live events a WebSocket client may have waiting; a client that falls further behind "
        "is disconnected with close code 1013 (it reconnects with `since_seq`)."),
    "gateway.max_body_bytes": (
        "Largest request body in bytes; larger is 413 `E_PAYLOAD_TOO_LARGE`. 0 switches the "
        "limit off."),
}

SECTION_INTROS = {
    "worldservice.server": (
        "Read by `qmtl worldservice serve`, `qmtl worldservice migrate` and `qmtl up` "
        "(model `qmtl.worldservice.config.WorldServiceSettings`)."),
    "gateway": (
        "Read by `qmtl gateway serve`, `qmtl commitlog tail` and `qmtl up` "
        "(model `qmtl.gateway.config.GatewaySettings`)."),
}


@dataclass(frozen=True, slots=True)
class ConfigKey:
    """One leaf setting."""

    key: str
    type: str
    default: str
    constraints: str
    env: str


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _model_dict_value(annotation: Any) -> type[BaseModel] | None:
    """The model of ``dict[str, Model]``, else ``None``."""
    if typing.get_origin(annotation) is dict:
        args = typing.get_args(annotation)
        if len(args) == 2 and _is_model(args[1]):
            return typing.cast(type[BaseModel], args[1])
    return None


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is typing.Literal:
        return " \\| ".join(f'"{a}"' for a in args)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_name(a) for a in args)
    if origin is list:
        return f"list[{_type_name(args[0])}]"
    if origin is dict:
        return f"dict[{_type_name(args[0])}, {_type_name(args[1])}]"
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation)


def _constraints(field: FieldInfo) -> str:
    parts = []
    for item in field.metadata:
        for attr, symbol in (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤")):
            value = getattr(item, attr, None)
            if isinstance(item, annotated_types.BaseMetadata) and value is not None:
                parts.append(f"{symbol} {_number(value)}")
        if isinstance(item, annotated_types.MinLen) and item.min_length:
            parts.append(f"length ≥ {item.min_length}")
    return ", ".join(parts)


def _number(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000:
        return f"{value:,}"
    return str(value)


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, str):
        return f"`{value}`"
    if isinstance(value, int | float):
        text = f"`{_number(value)}`"
        if isinstance(value, int) and value >= 1024 * 1024 and value % (1024 * 1024) == 0:
            text += f" ({value // (1024 * 1024)} MiB)"
        return text
    if isinstance(value, list | dict) and not value:
        return f"`{value!r}`".replace("'", '"')
    return f"`{value!r}`"


def _env_name(path: list[str]) -> str:
    return ENV_PREFIX + "__".join(p.upper() for p in path)


def iter_keys(model: type[BaseModel], path: list[str]) -> Iterator[ConfigKey]:
    """Every leaf of ``model`` under the dotted ``path``, in declaration order."""
    for name, field in model.model_fields.items():
        here = [*path, name]
        annotation = field.annotation
        if _is_model(annotation):
            yield from iter_keys(typing.cast(type[BaseModel], annotation), here)
            continue
        value_model = _model_dict_value(annotation)
        if value_model is not None:
            yield from iter_keys(value_model, [*here, DICT_KEY])
            continue
        yield ConfigKey(
            key=".".join(here),
            type=_type_name(annotation),
            default=_default(field),
            constraints=_constraints(field),
            env=_env_name(here),
        )


def sections() -> list[tuple[str, list[ConfigKey]]]:
    """``[(section, keys)]`` for the WorldService and the gateway."""
    from qmtl.gateway.config import GatewaySettings
    from qmtl.worldservice.config import SECTION, WorldServiceSettings

    return [
        (".".join(SECTION), list(iter_keys(WorldServiceSettings, list(SECTION)))),
        ("gateway", list(iter_keys(GatewaySettings, ["gateway"]))),
    ]


def all_keys() -> list[str]:
    """Every dotted key of both sections (``<venue>`` stands for any venue name)."""
    return [k.key for _, keys in sections() for k in keys]


def _check_effects(keys: list[str]) -> None:
    missing = [k for k in keys if k not in EFFECTS]
    stale = [k for k in EFFECTS if k not in keys]
    if missing or stale:
        raise SystemExit(
            "scripts/gen_docs_config.py: EFFECTS is out of date with the settings models: "
            + (f"keys without an effect: {missing}; " if missing else "")
            + (f"effects for keys that do not exist: {stale}" if stale else "")
        )


HEADER = """\
# Configuration reference

<!-- Generated by scripts/gen_docs_config.py from the pydantic settings models.
     Do not edit by hand: run `uv run python scripts/gen_docs_config.py`. -->

Both services read one YAML file (`--config FILE`); each reads only its own section, so one
file can configure both. Every key can be overridden by an environment variable
`QMTL__<SECTION>__<KEY>` (nested keys joined with `__`, names are case-insensitive), and the
command-line flags of `qmtl up`, `qmtl worldservice serve` and `qmtl gateway serve` win over
both:

```text
embedded defaults (qmtl up only) < YAML file < QMTL__… environment < command-line flags
```

Rules that hold for every key:

* **Unknown keys are errors at every level** — a misspelled section (`gatway:`,
  `worldservice: {sever: …}`) as much as a key inside one, and a `QMTL__…` variable that names
  no section (`GATWAY` for `GATEWAY`) — naming the dotted key, so a typo never starts a
  service with defaults and authentication off. The only sections are `worldservice.server`
  and `gateway`.
* **An empty configuration file is refused**: a file was named, so something was meant. Run
  without `--config` to get the defaults.
* **Booleans are `true` or `false`, nothing else**: YAML `true`/`false` (YAML 1.1's `yes`,
  `no`, `on`, `off` are read as plain strings and refused), or the strings `"true"`/`"false"`
  in any letter case from the environment. `"yes"`, `"1"`, `"off"`, `"maybe"` are errors
  naming the key.
* **Integers are integers**: `2` or `"2"` (environment); `2.0`, `"2.0"` and `true` are
  refused (`rebalance_schema_version: "2.0"` is an error, not version 2).
* **Invalid values stop start-up** with one line naming the key
  (`invalid configuration: gateway.enforce_live_guard: must be true or false, got 'off'`),
  exit status 2.
* Environment values that start with `[` or `{` are parsed as JSON
  (`QMTL__GATEWAY__AUTH__TOKENS='["t1","t2"]'`); every other value is a string that the model
  parses strictly.
* Two combinations are refused at start-up:
  `worldservice.server.alpha_metrics_required` without
  `worldservice.server.compat_rebalance_v2`, and `gateway.alpha_metrics_capable` without
  `gateway.rebalance_schema_version: 2`.

A complete file with both sections (the values of SPEC §5):

```yaml
worldservice:
  server:
    dsn: sqlite+aiosqlite:///./.qmtl/worldservice.db   # or postgresql+asyncpg://…
    controlbus: memory://                                # or redis://127.0.0.1:6379/0
    compat_rebalance_v2: true
    alpha_metrics_required: false
    bind: {host: 127.0.0.1, port: 8080}
    auth: {tokens: []}
gateway:
  worldservice_url: http://127.0.0.1:8080
  rebalance_schema_version: 2
  alpha_metrics_capable: true
  enforce_live_guard: true
  controlbus: memory://
  commit_log: sqlite:///./.qmtl/commitlog.db           # or redis://…
  shared_account_policy: {enabled: false}
  venue_policies:
    binance: {lot_size: 0.001, min_notional: 10, requires_ioc: true}
  bind: {host: 127.0.0.1, port: 8000}
  auth: {tokens: []}
```

`qmtl up` changes some defaults (v2 end to end, files under `--data-dir`); see
[Embedded mode](../operations/embedded.md).
"""

FOOTER = """\
**Venue names in the environment.** Environment variable names are case-insensitive, so a
venue policy set through the environment has a lower-case venue name
(`QMTL__GATEWAY__VENUE_POLICIES__BINANCE__LOT_SIZE=0.001` configures `binance`). Use the YAML
file for venues whose names have upper-case letters.
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|") if "\\|" not in text else text


def render() -> str:
    """The whole Markdown page."""
    secs = sections()
    _check_effects([k.key for _, keys in secs for k in keys])
    out = [HEADER]
    for section, keys in secs:
        out.append(f"\n## `{section}`\n\n{SECTION_INTROS[section]}\n\n")
        out.append("| key | type | default | effect | environment variable |\n")
        out.append("|---|---|---|---|---|\n")
        for k in keys:
            short = k.key[len(section) + 1:]
            rule = f" ({k.constraints})" if k.constraints else ""
            out.append(f"| `{short}` | {k.type}{rule} | {k.default} | {_cell(EFFECTS[k.key])} "
                       f"| `{k.env}` |\n")
    out.append("\n" + FOOTER)
    return "".join(out)


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when the committed page differs from the models")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not PAGE.exists() or PAGE.read_text() != text:
            print(f"{_display(PAGE)} is stale: "
                  "run uv run python scripts/gen_docs_config.py", file=sys.stderr)
            return 1
        print(f"{_display(PAGE)} is up to date")
        return 0
    PAGE.parent.mkdir(parents=True, exist_ok=True)
    PAGE.write_text(text)
    print(f"wrote {_display(PAGE)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
