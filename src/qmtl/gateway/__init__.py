"""The Gateway (SPEC 2.7, 4, 10): the HTTP + WebSocket front door of QMTL Rebalancing.


Build it with :func:`qmtl.gateway.app.create_app`; run it with ``qmtl gateway serve``.

Modules, by responsibility:

* ``app`` — factory and lifespan; ``config`` — ``gateway.*`` settings; ``deps`` — state access;
* ``routers/`` — ``/health``, ``/rebalancing/{plan,apply,execute}``, ``/ws`` (thin);
* ``worldservice_client`` — httpx client with timeouts, retries of safe calls and the
  ``breaker``; ``negotiation``/``outgoing``/``served`` — schema-version choice, request
  bodies and response parsing;
* ``execute`` (checks, plan, submit) with ``execution`` (orders per scope) and ``batches``
  (commit-log records); ``commitlog/`` — the commit log backends;
* ``consumer`` (ControlBus → hub), ``hub`` (bounded history, per-client outboxes) and
  ``ws_session`` (one WebSocket connection); ``health``; ``metrics``; ``bodies``.

Logger names follow the modules (``qmtl.gateway.execute`` writes the per-batch audit line).
"""

from __future__ import annotations
