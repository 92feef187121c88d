"""Free TCP ports on the loopback interface for servers started by tests."""

from __future__ import annotations

import socket

# The kernel may hand the same ephemeral port out again once its socket is closed, so two
# servers of one test could be given one port; remembering what was handed out prevents it.
_handed_out: set[int] = set()


def free_port() -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port
