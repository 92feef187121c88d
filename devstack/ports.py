"""Fail fast, before anything starts, when a port the stack needs is taken."""

from __future__ import annotations

import errno
import socket
import time

from devstack.options import HOST, DevOptions


class PortInUseError(RuntimeError):
    """A port is busy; the message names the port and the option that changes it."""


def port_is_free(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR: a socket left in TIME_WAIT by our own previous run is not "in use";
        # on Linux it still refuses to bind over a live listener.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
        return True


def check_ports(options: DevOptions, host: str = HOST) -> None:
    """Raise PortInUseError naming the first busy (or doubly assigned) port."""
    seen: dict[int, str] = {}
    for opt, port in options.ports():
        if not 0 < port < 65536:
            raise PortInUseError(f"{opt.flag} {port} is not a valid port number")
        if port in seen:
            raise PortInUseError(
                f"port {port} is given to both {seen[port]} and {opt.flag}; choose another "
                f"with {opt.flag}"
            )
        seen[port] = opt.flag
        if not port_is_free(port, host):
            raise PortInUseError(
                f"port {port} ({opt.what}) is already in use on {host}; stop what uses it or "
                f"choose another port with {opt.flag}"
            )


def wait_for_port(port: int, timeout: float, host: str = HOST) -> bool:
    """True once something accepts TCP connections on host:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False
