"""Arrow IPC plan bodies and answers on their way through the gateway (no re-parse).

The gateway reads only the schema metadata of an Arrow body (its envelope: version, run
id, v2 keys) and forwards the stream; when the version sent differs from the declared one
the metadata is rewritten and the same record batches re-framed (no row is touched). An
Arrow answer is relayed when its metadata document passes ``served.relayable_as_is``.
Needs ``pyarrow`` (``qmtl-rebalancing[arrow]``): without it an Arrow body is a 415.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from qmtl.contracts import ARROW_REQUEST_METADATA, ARROW_RESPONSE_METADATA, ARROW_STREAM
from qmtl.contracts.errors import UnsupportedMediaType
from qmtl.web.bodies import validation_error

__all__ = ["answer_metadata", "request_metadata", "with_request_metadata"]


def _pyarrow() -> ModuleType:
    try:
        return importlib.import_module("pyarrow")
    except ImportError as exc:
        raise UnsupportedMediaType(
            "Arrow IPC bodies need pyarrow on the gateway: install qmtl-rebalancing[arrow], "
            "or send JSON",
            content_type=ARROW_STREAM,
        ) from exc


def _read(raw: bytes) -> Any:
    pa = _pyarrow()
    try:
        with pa.ipc.open_stream(pa.py_buffer(raw)) as reader:
            return reader.read_all()
    except (pa.ArrowException, OSError) as exc:
        raise validation_error(("body",), f"not an Arrow IPC stream: {exc}") from exc


def request_metadata(raw: bytes) -> bytes:
    """The request fields (JSON object bytes) of an Arrow body; ``{}`` when absent.

    Raises:
        UnsupportedMediaType: pyarrow is not installed.
        RequestValidationError: not an Arrow IPC stream.
    """
    metadata = _read(raw).schema.metadata or {}
    return bytes(metadata.get(ARROW_REQUEST_METADATA, b"{}"))


def with_request_metadata(raw: bytes, document: bytes) -> bytes:
    """The Arrow body ``raw`` with its request fields replaced by ``document``."""
    pa = _pyarrow()
    table = _read(raw)
    metadata = dict(table.schema.metadata or {})
    metadata[ARROW_REQUEST_METADATA] = document
    table = table.replace_schema_metadata(metadata)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def answer_metadata(raw: bytes) -> bytes | None:
    """The document (without deltas) of an Arrow answer, or ``None`` when it is not one."""
    pa = _pyarrow()
    try:
        with pa.ipc.open_stream(pa.py_buffer(raw)) as reader:
            metadata = reader.schema.metadata or {}
    except (pa.ArrowException, OSError):
        return None
    value = metadata.get(ARROW_RESPONSE_METADATA)
    return None if value is None else bytes(value)
