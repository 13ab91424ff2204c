"""The test-server helpers wait for a ready server, not merely an open port."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from tests._servers import RedisServer, wait_for_redis


@pytest.fixture
def loading_then_ready() -> Iterator[tuple[int, list[bytes]]]:
    """A fake Redis that answers ``-LOADING`` to the first three PINGs, then ``+PONG``."""
    listener = socket.create_server(("127.0.0.1", 0))
    replies: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(64)
                reply = (
                    b"-LOADING Redis is loading the dataset in memory\r\n"
                    if len(replies) < 3
                    else b"+PONG\r\n"
                )
                replies.append(reply)
                conn.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], replies
    listener.close()
    thread.join(5)


def test_wait_for_redis_waits_through_loading(loading_then_ready: tuple[int, list[bytes]]) -> None:
    port, replies = loading_then_ready
    wait_for_redis(port, timeout=30)
    assert [r[:8] for r in replies] == [b"-LOADING"] * 3 + [b"+PONG\r\n"]


def test_restarted_redis_answers_commands_as_soon_as_start_returns() -> None:
    server = RedisServer()
    try:
        server.start()
        for kill in (True, False):
            server.stop(kill=kill)
            server.start()
            # A command right after start(): no BusyLoadingError, no refused connection.
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            with sock:
                sock.sendall(b"SET k v\r\n")
                assert sock.recv(64) == b"+OK\r\n"
    finally:
        server.close()
