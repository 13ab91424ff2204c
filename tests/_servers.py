"""Real Redis and PostgreSQL servers for tests, started as subprocesses on free loopback ports.

There is no Docker on our machines; ``.ci/run`` installs the Debian packages and these
helpers start throw-away instances in temporary folders. A missing binary fails the test
run loudly instead of skipping — CI must never pass by not testing.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["PostgresServer", "RedisServer", "free_port", "wait_for_port", "wait_for_redis"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int, *, timeout: float = 20.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"server process exited with {process.returncode} before port {port} opened"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def _redis_ping(port: int) -> bytes:
    """The first reply line to ``PING`` (``b"+PONG"``, or ``b"-LOADING …"`` while the server
    is still reading its append-only file); ``b""`` when the connection closed first."""
    with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
        sock.sendall(b"PING\r\n")
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = sock.recv(256)
            if not chunk:
                break
            reply += chunk
    return reply.strip()


def wait_for_redis(
    port: int, *, timeout: float = 30.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Wait until Redis answers ``PING`` with ``PONG``.

    An open port is not enough: a restarted Redis accepts connections while it replays its
    append-only file and answers every command with ``-LOADING`` (redis-py raises
    ``BusyLoadingError``) — on a loaded machine for long enough to fail a test.
    """
    deadline = time.monotonic() + timeout
    last = b"(no answer)"
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"redis-server exited with {process.returncode} before it was ready")
        try:
            last = _redis_ping(port)
        except OSError:
            last = b"(connection refused)"
        if last == b"+PONG":
            return
        time.sleep(0.05)
    raise TimeoutError(f"redis on 127.0.0.1:{port} not ready after {timeout}s: {last!r}")


class RedisServer:
    """A redis-server on a fixed free port; can be stopped and restarted on the same port."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install -y redis-server)")
        self.binary = binary
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="qmtl-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                self.dir,
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--protected-mode",
                "no",
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Also after a restart: PONG, not merely an open port (see wait_for_redis).
        wait_for_redis(self.port, process=self.process)

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server; data persists (append-only file) for the next :meth:`start`."""
        if self.process is None or self.process.poll() is not None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        self.process.wait(timeout=20)

    def flush(self) -> None:
        subprocess.run(
            ["redis-cli", "-p", str(self.port), "FLUSHALL"], check=True, stdout=subprocess.DEVNULL
        )

    def close(self) -> None:
        self.stop(kill=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def _pg_bindir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    found = shutil.which("pg_ctl")
    if candidates:
        return Path(candidates[0]).parent
    if found:
        return Path(found).resolve().parent
    raise RuntimeError("PostgreSQL is not installed (apt-get install -y postgresql)")


class PostgresServer:
    """A throw-away PostgreSQL cluster (initdb + pg_ctl) on a free port, trust auth.

    PostgreSQL refuses to run as root, so as root the cluster belongs to the ``postgres``
    user and the binaries run through ``su``.
    """

    def __init__(self) -> None:
        self.bindir = _pg_bindir()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="qmtl-pg-"))
        self.datadir = self.dir / "data"
        self.as_root = os.geteuid() == 0
        self._databases = 0

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.as_root:
            quoted = " ".join(f"'{part}'" for part in cmd)
            cmd = ["su", "postgres", "-s", "/bin/sh", "-c", quoted]
        return subprocess.run(cmd, check=check, capture_output=True, text=True)

    def start(self) -> None:
        if self.as_root:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        if not self.datadir.exists():
            self._run(
                "initdb",
                "-D",
                str(self.datadir),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            )
        result = self._run(
            "pg_ctl",
            "-D",
            str(self.datadir),
            "-l",
            str(self.dir / "log"),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            f"-c max_connections=200",
            "start",
            check=False,
        )
        if result.returncode != 0:
            log = (self.dir / "log").read_text() if (self.dir / "log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {result.stderr}\n{log}")
        wait_for_port(self.port)

    def create_database(self, name: str | None = None) -> str:
        """Create a fresh database; returns its SQLAlchemy asyncpg DSN."""
        self._databases += 1
        name = name or f"qmtl_test_{self._databases}"
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return self.dsn(name)

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "stop", check=False)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
