"""The Arrow IPC form of plan bodies and answers (names only; the readers need pyarrow).

A plan body may be ``application/vnd.apache.arrow.stream``: one IPC stream whose table is
the positions (``world_id``, ``strategy_id``, ``symbol``, ``qty``, ``mark``, optional
``venue``) and whose schema metadata :data:`ARROW_REQUEST_METADATA` holds every other request
field as a JSON object. An answer in that form is a table of every delta (``world_id`` null
for a global delta, ``symbol``, ``venue``, ``delta_qty``) with the rest of the document, its
delta lists empty, as JSON in :data:`ARROW_RESPONSE_METADATA`.
"""

from __future__ import annotations

__all__ = ["ARROW_REQUEST_METADATA", "ARROW_RESPONSE_METADATA", "ARROW_STREAM"]

ARROW_STREAM = "application/vnd.apache.arrow.stream"
ARROW_REQUEST_METADATA = b"qmtl.request"
ARROW_RESPONSE_METADATA = b"qmtl.response"
