"""Is a TCP port free to bind? Checked by ``qmtl up`` before starting its servers, so a port
in use is one line that names the flag to change instead of a uvicorn log and exit 1."""

from __future__ import annotations

import errno
import socket

__all__ = ["port_in_use"]


def port_in_use(host: str, port: int) -> bool:
    """Whether binding ``host:port`` fails because the address is in use (other errors, such
    as an address this machine does not have, are left to the server to report)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # uvicorn sets SO_REUSEADDR too: a port in TIME_WAIT is not "in use" for it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False
