"""Loopback networking helpers shared by every layer that starts a child server.

Process launching itself (health waits, termination) lives in ``app/ops``; this module
holds only what layers *below* ops also need, so they do not have to import ops.
"""

from __future__ import annotations

import socket
from contextlib import closing


def free_port(host: str = "127.0.0.1") -> int:
    """A currently free TCP port on ``host`` (loopback by default)."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
