"""Schemathesis fuzzing of the WorldService and Gateway OpenAPI specs (issue #6 item 5).

Both services run in this process under uvicorn (``qmtl.web.server.ServerThread``, real
sockets): a WorldService (SQLite file, v2 served, alpha metrics not required) and a gateway
(schema 2, alpha capable, SQLite commit log) whose WorldService is that one. Schemathesis reads
each service's ``/openapi.json`` and generates cases for every operation, in its positive
(schema-valid) and negative (schema-violating) modes, through hypothesis.

Each response is checked for:

* no 5xx — except the documented 501 ``E_REBALANCE_MODE_UNSUPPORTED`` (mode ``hybrid``,
  SPEC 2.5 / 8), which must still carry its code;
* every 4xx (and that 501) carries a machine-readable code: ``detail.code`` (``E_…``) or
  FastAPI's validation list where each item has ``type`` and ``loc``;
* schemathesis' ``response_schema_conformance`` and ``content_type_conformance``: the body
  matches the schema the spec declares for that status (where one is declared).

A failing case is recorded (operation, status, a body excerpt, the reproduction) and fuzzing
goes on, so one run reports every distinct problem. Cases are counted as they are sent.
"""

from __future__ import annotations

import json
import math
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from qmtl.gateway.app import create_app as create_gateway_app
from qmtl.gateway.config import GatewaySettings
from qmtl.web.server import ServerThread
from qmtl.worldservice.app import create_app as create_worldservice_app
from qmtl.worldservice.config import WorldServiceSettings

__all__ = ["FuzzReport", "fuzz_service", "fuzz_targets"]

DOCUMENTED_5XX = {501: "E_REBALANCE_MODE_UNSUPPORTED"}
"""5xx answers the spec documents for valid input (hybrid mode is not implemented yet)."""
SMALL_OPERATION_EXAMPLES = 40
"""Examples per mode for operations without a request body (their input space is small)."""
MAX_FAILURES_KEPT = 50


@dataclass
class FuzzReport:
    """What fuzzing one service did and found."""

    service: str
    cases: int = 0
    by_operation: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    """One example per distinct failure kind (operation, status, problem)."""
    failure_kinds: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    @property
    def failure_count(self) -> int:
        return sum(self.failure_kinds.values())

    def fail(self, kind: str, message: str) -> None:
        if kind not in self.failure_kinds and len(self.failures) < MAX_FAILURES_KEPT:
            self.failures.append(f"{kind}: {message}")
        self.failure_kinds[kind] += 1

    def table(self) -> str:
        """A plain-text summary: cases per operation and mode, statuses, failures."""
        width = max([len(k) for k in self.by_operation] + [20])
        lines = [f"{self.service}: {self.cases} cases, {self.failure_count} failing"]
        lines += [f"  {op:<{width}} {n:>6}" for op, n in sorted(self.by_operation.items())]
        statuses = ", ".join(f"{s}={n}" for s, n in sorted(self.statuses.items()))
        lines.append(f"  statuses: {statuses}")
        lines += [f"  note: {note}" for note in self.notes]
        lines += [f"  FAILED x{n}: {kind}" for kind, n in self.failure_kinds.most_common()]
        return "\n".join(lines)


@contextmanager
def fuzz_targets(workdir: Path | None = None) -> Iterator[dict[str, str]]:
    """Run a WorldService and a gateway in front of it; yields ``{service: base URL}``."""
    with tempfile.TemporaryDirectory(prefix="qmtl-fuzz-") as tmp:
        folder = workdir or Path(tmp)
        ws_settings = WorldServiceSettings(
            dsn=f"sqlite:///{folder / 'worldservice.db'}",
            controlbus=f"memory://fuzz-ws-{uuid.uuid4().hex}",
            compat_rebalance_v2=True,
        )
        with ServerThread(create_worldservice_app(ws_settings)) as worldservice:
            gw_settings = GatewaySettings(
                worldservice_url=worldservice.url,
                controlbus=f"memory://fuzz-gw-{uuid.uuid4().hex}",
                commit_log=f"sqlite:///{folder / 'commitlog.db'}",
                rebalance_schema_version=2,
                alpha_metrics_capable=True,
            )
            with ServerThread(create_gateway_app(gw_settings)) as gateway:
                yield {"worldservice": worldservice.url, "gateway": gateway.url}


def _has_code(detail: Any) -> bool:
    if isinstance(detail, dict):
        code = detail.get("code")
        return isinstance(code, str) and code.startswith("E_")
    if isinstance(detail, list) and detail:
        return all(isinstance(item, dict) and isinstance(item.get("type"), str)
                   and isinstance(item.get("loc"), list) for item in detail)
    return False


def _excerpt(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _check_response(case: Any, response: Any, report: FuzzReport, label: str) -> None:
    status = response.status_code
    where = f"{label} -> {status}"
    try:
        body = json.loads(response.content) if response.content else None
    except ValueError:
        body = None
    detail = body.get("detail") if isinstance(body, dict) else None
    code = detail.get("code") if isinstance(detail, dict) else None
    if status >= 500 and DOCUMENTED_5XX.get(status) != code:
        report.fail(f"{where} server error",
                    f"body {_excerpt(response.content)}; request {_excerpt(case.body)}; "
                    f"reproduce: {case.as_curl_command()}")
        return
    if (400 <= status < 500 or status in DOCUMENTED_5XX) and not _has_code(detail):
        report.fail(f"{where} without a machine-readable code",
                    f"{_excerpt(response.content)}; request {_excerpt(case.body)}")
    try:
        case.validate_response(response, checks=[response_schema_conformance,
                                                 content_type_conformance])
    except (AssertionError, BaseExceptionGroup) as exc:  # schemathesis Failure(Group)
        report.fail(f"{where} does not conform to the spec",
                    f"{_excerpt(str(exc), 600)}; request {_excerpt(case.body)}")


def fuzz_service(name: str, base_url: str, *, cases: int, seed_value: int = 0) -> FuzzReport:
    """Send at least ``cases`` generated requests to ``base_url``; returns the report.

    Operations with a request body get the budget (split over both modes); the others get
    :data:`SMALL_OPERATION_EXAMPLES` per mode. Rounds with new seeds repeat until ``cases``
    requests were sent (hypothesis stops early on small input spaces).
    """
    report = FuzzReport(service=name)
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    operations = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            report.fail("the spec has an operation schemathesis cannot read", str(result.err()))
        else:
            operations.append(result.ok())
    with_body = [op for op in operations if op.body]
    session = requests.Session()
    per_body_mode = max(1, math.ceil(cases / max(1, 2 * len(with_body))))

    def run(operation: Any, mode: GenerationMode, examples: int, round_seed: int) -> None:
        label = f"{operation.label} [{mode.value}]"

        @seed(round_seed)
        @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
                  phases=[Phase.generate], suppress_health_check=list(HealthCheck),
                  report_multiple_bugs=False)
        @given(case=operation.as_strategy(generation_mode=mode))
        def one(case: Any) -> None:
            try:
                response = case.call(base_url=base_url, session=session, timeout=60)
            except requests.RequestException as exc:
                report.fail(f"{label} no HTTP answer",
                            f"{type(exc).__name__}: {exc}; reproduce: {case.as_curl_command()}")
                return
            report.cases += 1
            report.by_operation[label] += 1
            report.statuses[response.status_code] += 1
            _check_response(case, response, report, label)

        try:
            one()
        except Unsatisfiable:
            # No schema-violating input exists (e.g. an operation without parameters).
            report.notes.append(f"{label}: no {mode.value} case can be generated")

    try:
        for round_number in range(100):
            round_seed = seed_value * 1000 + round_number
            before = report.cases
            for operation in operations:
                body = operation in with_body
                if round_number and not body:
                    continue
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    run(operation, mode, per_body_mode if body else SMALL_OPERATION_EXAMPLES,
                        round_seed)
            if report.cases >= cases or report.cases == before:
                break
    finally:
        session.close()
    return report
