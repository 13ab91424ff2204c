"""A blocking facade over :class:`GatewayClient` for scripts and notebooks.

It owns one private event loop (:class:`asyncio.Runner`) and runs the async core on it — the
arq ``check_health`` pattern — so there is a single implementation of every call. Do not use
it from inside a running event loop; use :class:`GatewayClient` there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator, Sequence
from types import TracebackType
from typing import Any, TypeVar

from ._capabilities import Capabilities, GatewayHealthView
from ._client import GatewayClient, RequestLike
from ._events import EventStream, RebalancingEvent, ReconnectPolicy, SubscriptionInfo
from ._reads import ApplyOutcome

__all__ = ["SyncEventStream", "SyncGatewayClient"]

T = TypeVar("T")


class SyncGatewayClient:
    """Blocking twin of :class:`GatewayClient`; takes the same arguments.

    Use as ``with SyncGatewayClient(url) as client: ...`` or call :meth:`close`.
    """

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        self._runner = asyncio.Runner()
        self._client = GatewayClient(base_url, **kwargs)
        self._closed = False

    @property
    def base_url(self) -> str:
        return self._client.base_url

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coro.close()
            raise RuntimeError("this SyncGatewayClient is closed; create a new one")
        return self._runner.run(coro)

    def health(self) -> GatewayHealthView:
        """See :meth:`GatewayClient.health`."""
        return self._run(self._client.health())

    def capabilities(self, *, refresh: bool = False) -> Capabilities:
        """See :meth:`GatewayClient.capabilities`."""
        return self._run(self._client.capabilities(refresh=refresh))

    def plan(self, request: RequestLike, *, schema_version: int | None = None,
             positions: Any = None) -> dict[str, Any]:
        """See :meth:`GatewayClient.plan`."""
        return self._run(self._client.plan(request, schema_version=schema_version,
                                           positions=positions))

    def plan_table(self, request: RequestLike, *, positions: Any = None,
                   schema_version: int | None = None) -> tuple[Any, dict[str, Any]]:
        """See :meth:`GatewayClient.plan_table`."""
        return self._run(self._client.plan_table(request, positions=positions,
                                                 schema_version=schema_version))

    def apply(self, request: RequestLike, *, run_id: str | None = None,
              if_match: str | None = None) -> dict[str, Any]:
        """See :meth:`GatewayClient.apply`."""
        return self._run(self._client.apply(request, run_id=run_id, if_match=if_match))

    def execute(self, request: RequestLike, *, per_strategy: bool = False,
                shared_account: bool = False, submit: bool = False,
                allow_live: bool = False) -> dict[str, Any]:
        """See :meth:`GatewayClient.execute`."""
        return self._run(self._client.execute(
            request, per_strategy=per_strategy, shared_account=shared_account, submit=submit,
            allow_live=allow_live))

    def apply_outcome(self, request: RequestLike, *, run_id: str | None = None,
                      if_match: str | None = None) -> ApplyOutcome:
        """See :meth:`GatewayClient.apply_outcome`."""
        return self._run(self._client.apply_outcome(request, run_id=run_id, if_match=if_match))

    def allocations(self, *, world_id: str | None = None) -> dict[str, Any]:
        """See :meth:`GatewayClient.allocations`."""
        return self._run(self._client.allocations(world_id=world_id))

    def run(self, run_id: str) -> dict[str, Any]:
        """See :meth:`GatewayClient.run`."""
        return self._run(self._client.run(run_id))

    def audit(self, world_id: str, *, limit: int | None = None) -> dict[str, Any]:
        """See :meth:`GatewayClient.audit`."""
        return self._run(self._client.audit(world_id, limit=limit))

    def events(self, *, world_ids: Sequence[str] | None = None, since_seq: int | None = None,
               reconnect: ReconnectPolicy | None = None,
               epoch: str | None = None) -> SyncEventStream:
        """See :meth:`GatewayClient.events`; iterate the result with ``for``."""
        stream = self._client.events(world_ids=world_ids, since_seq=since_seq,
                                     reconnect=reconnect, epoch=epoch)
        return SyncEventStream(stream, self)

    def close(self) -> None:
        """Close the client and its event loop (idempotent)."""
        if self._closed:
            return
        try:
            self._runner.run(self._client.aclose())
        finally:
            self._closed = True
            self._runner.close()

    def __enter__(self) -> SyncGatewayClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class SyncEventStream(Iterator[RebalancingEvent]):
    """Blocking iterator over an :class:`EventStream` (same reconnect and resume rules)."""

    def __init__(self, stream: EventStream, owner: SyncGatewayClient) -> None:
        self.stream = stream
        self._owner = owner

    def subscribed(self) -> SubscriptionInfo:
        """See :meth:`EventStream.subscribed`."""
        return self._owner._run(self.stream.subscribed())

    def __next__(self) -> RebalancingEvent:
        try:
            return self._owner._run(self.stream.__anext__())
        except StopAsyncIteration:
            raise StopIteration from None

    def close(self) -> None:
        """Stop the stream (idempotent)."""
        self._owner._run(self.stream.aclose())
