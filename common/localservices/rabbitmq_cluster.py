"""A RabbitMQ cluster of private nodes on one machine.

Erlang nodes find each other through the epmd of their host, so the nodes of a
cluster share one epmd (the cluster's) and one Erlang cookie, but keep their
own ports and data.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Self

from common.localservices.epmd import start_epmd, stop_epmd
from common.localservices.errors import ServiceError
from common.localservices.ports import ensure_port_free, free_ports
from common.localservices.rabbitmq import RabbitMQNode

log = logging.getLogger(__name__)


class RabbitMQCluster:
    """`size` private RabbitMQ nodes on this machine, joined into one cluster.

    Each node has its own directory, ports and node name; all share the
    cluster's epmd and Erlang cookie. `start()` boots the nodes side by side,
    then joins the others to the first (`stop_app`, `join_cluster`,
    `start_app`), as an operator would. A node stopped or killed later and
    started again rejoins by itself: its data remembers the cluster.
    """

    def __init__(self, base_dir: str | Path, size: int = 3):
        if size < 1:
            raise ValueError("a cluster needs at least one node")
        self.base_dir = Path(base_dir).resolve()
        # Picked together, so no two nodes can be handed the same port.
        self.epmd_port, *ports = free_ports(1 + 2 * size)
        cookie = secrets.token_hex(20).upper()
        self.nodes = [RabbitMQNode(self.base_dir / f"node{i + 1}", port=ports[2 * i], dist_port=ports[2 * i + 1],
                                   epmd_port=self.epmd_port, cookie=cookie) for i in range(size)]
        self.log_path = self.base_dir / "epmd.log"
        self.last_start_seconds: float | None = None
        self._epmd: subprocess.Popen[bytes] | None = None

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def __repr__(self) -> str:
        return f"RabbitMQCluster({[node.nodename for node in self.nodes]}, epmd_port={self.epmd_port})"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self, timeout: float = 120) -> Self:
        """Boot every node and join them; returns once all run as one cluster."""
        began = time.monotonic()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        try:
            if self._epmd is None or self._epmd.poll() is not None:
                ensure_port_free(self.epmd_port, "the cluster's epmd")
                self._epmd = start_epmd(self.epmd_port, self.log_path, self.base_dir, dict(os.environ))
            seed, *others = self.nodes
            # A node with data already belongs to the cluster and rejoins by itself.
            joining = [node for node in others if not any((node.base_dir / "mnesia").glob("*/"))]
            self._each(lambda node: node.start(), self.nodes)
            self._each(lambda node: node.ctl("stop_app"), joining)
            for node in joining:  # one at a time: each join changes the cluster's schema
                node.ctl("join_cluster", seed.nodename)
            self._each(lambda node: (node.ctl("start_app"), node.wait_ready()), joining)
            self.wait_running(timeout=timeout)
        except BaseException:
            self.stop()
            raise
        self.last_start_seconds = time.monotonic() - began
        log.info("RabbitMQ cluster of %d nodes ready in %.1fs", len(self.nodes), self.last_start_seconds)
        return self

    @staticmethod
    def _each(action: Callable[[RabbitMQNode], object], nodes: list[RabbitMQNode]) -> list[object]:
        """`action` on every node side by side (each mostly waits on an Erlang VM); the first error wins."""
        if not nodes:
            return []
        with ThreadPoolExecutor(len(nodes)) as pool:
            futures = [pool.submit(action, node) for node in nodes]
            return [future.result() for future in futures]

    @staticmethod
    def running_nodes(via: RabbitMQNode) -> set[str]:
        """The cluster's running node names, as the node `via` sees them."""
        status = json.loads(via.ctl("cluster_status", "--formatter", "json"))
        return set(status.get("running_nodes", []))

    def wait_running(self, timeout: float = 60) -> None:
        """Wait until every started node runs and sees exactly the other started ones."""
        started = [node for node in self.nodes if node.pid is not None]
        expected = {node.nodename for node in started}
        deadline = time.monotonic() + timeout
        while True:
            try:
                seen = self._each(self.running_nodes, started)
            except ServiceError:
                seen = []
            if seen and all(s == expected for s in seen):
                return
            if time.monotonic() > deadline:
                raise ServiceError(f"cluster not formed after {timeout:.0f}s: expected {sorted(expected)}, "
                                   f"nodes see {[sorted(s) for s in seen]}")  # type: ignore[arg-type]
            time.sleep(0.5)

    def stop(self) -> None:
        """Stop every node (side by side), then the epmd; safe to call twice."""
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            for future in [pool.submit(node.stop) for node in self.nodes]:
                future.result()
        epmd, self._epmd = self._epmd, None
        if epmd is not None:
            stop_epmd(epmd, self.epmd_port, self.log_path, dict(os.environ))
