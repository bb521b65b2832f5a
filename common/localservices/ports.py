"""TCP ports on 127.0.0.1 for local services: picking free ones, checking who listens."""

from __future__ import annotations

import random
import socket
from contextlib import ExitStack

from common.localservices.errors import ServiceError


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    return free_ports(1)[0]


SERVICE_PORTS_FROM = 20000


def _ephemeral_ports_from() -> int:
    """The first port of the kernel's range for outgoing connections."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as fh:
            return int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports, below the kernel's ephemeral range when it can.

    A port picked inside that range can be taken by any process's outgoing
    connection before the service binds it, or binds it again after a restart
    (a RabbitMQ node then refuses to boot: dist_port_already_used). The sockets
    stay bound until all are picked, so no port is handed out twice."""
    below = range(SERVICE_PORTS_FROM, _ephemeral_ports_from())
    candidates = random.sample(below, min(len(below), 64 + count))
    with ExitStack() as stack:
        ports: list[int] = []
        for port in candidates:
            if len(ports) == count:
                break
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            ports.append(port)
        while len(ports) < count:
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


def port_open(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def ensure_port_free(port: int, what: str) -> None:
    """Refuse to start on a port someone else listens on: the readiness probe
    would otherwise be answered by that other server."""
    if port_open(port):
        raise ServiceError(f"cannot start {what}: port {port} on 127.0.0.1 is already in use")
