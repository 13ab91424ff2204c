"""Query-string secrets are redacted from server log records (SPEC 6); the end-to-end check
against a real ``qmtl gateway serve`` log is in tests/gateway/test_websocket_process.py."""

from __future__ import annotations

import logging

import pytest

from qmtl.web.observability import (
    SERVER_LOGGERS,
    QuerySecretFilter,
    redact_query_secrets,
    redact_secrets_in_server_logs,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/ws?token=abc", "/ws?token=***"),
        ("/ws?x=1&token=abc&y=2", "/ws?x=1&token=***&y=2"),
        ("/ws?TOKEN=a%20b", "/ws?TOKEN=***"),
        ("/ws?access_token=zz#frag", "/ws?access_token=***#frag"),
        ('"GET /ws?token=t HTTP/1.1" 403', '"GET /ws?token=*** HTTP/1.1" 403'),
        ("/ws?tokens=kept&mytoken=kept", "/ws?tokens=kept&mytoken=kept"),
        ("/health", "/health"),
    ],
)
def test_redact_query_secrets(text: str, expected: str) -> None:
    assert redact_query_secrets(text) == expected


def test_the_filter_rewrites_arguments_and_message() -> None:
    record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1,
                               '%s - "WebSocket %s" [accepted] /ws?token=in-msg',
                               ("127.0.0.1:5", "/ws?token=in-arg"), None)
    assert QuerySecretFilter().filter(record) is True
    assert record.getMessage() == ('127.0.0.1:5 - "WebSocket /ws?token=***" [accepted] '
                                   "/ws?token=***")


def test_installation_is_idempotent() -> None:
    redact_secrets_in_server_logs()
    redact_secrets_in_server_logs()
    for name in SERVER_LOGGERS:
        filters = logging.getLogger(name).filters
        assert sum(isinstance(f, QuerySecretFilter) for f in filters) == 1
