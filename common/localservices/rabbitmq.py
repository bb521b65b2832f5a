"""A private RabbitMQ node, run as ordinary child processes under a directory we own.

A RabbitMQ node is more than one process, and not all of them stay in the
node's process group: `erl_child_setup` and `inet_gethost` call setsid(), and an
`epmd -daemon` started by Erlang detaches to init. So we run epmd ourselves, in
the foreground on a private port, and on stop we also sweep the node's
descendants recorded from /proc.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from common.localservices.epmd import epmd_program, start_epmd, stop_epmd
from common.localservices.errors import ServiceError, ServiceNotInstalled
from common.localservices.ports import ensure_port_free, free_ports, port_open
from common.localservices.processes import (
    POLL_INTERVAL,
    descendants,
    group_alive,
    kill_survivors,
    last_lines,
    log_file,
    signal_group,
    terminate,
)
from common.localservices.readiness import DEFAULT_STALL_TIMEOUT, wait_until_ready

log = logging.getLogger(__name__)

RABBITMQ_BIN_DIR = Path("/usr/lib/rabbitmq/bin")
"""Debian's unwrapped scripts: the /usr/sbin wrappers switch to the rabbitmq
user, which cannot read our data dir or our Erlang cookie."""


class RabbitMQNode:
    """A private RabbitMQ node under `base_dir`, listening on 127.0.0.1 only.

    Data lives in `base_dir/mnesia` under a node name derived from the port, so
    stopping and starting again with the same directory and port keeps durable
    queues and persistent messages.

    A node runs its own epmd unless given `epmd_port`: then an epmd that someone
    else runs there (a `RabbitMQCluster`) is shared with other nodes. `cookie`
    fixes the Erlang cookie (nodes of one cluster need the same one).

    A node replays its message store at boot, in time proportional to what it
    holds, so `start()` waits as long as the node works and gives up only after
    `stall_timeout` seconds without progress (see common.localservices.readiness).
    """

    def __init__(self, base_dir: str | Path, port: int | None = None, name: str | None = None, *,
                 dist_port: int | None = None, epmd_port: int | None = None, cookie: str | None = None,
                 stall_timeout: float = DEFAULT_STALL_TIMEOUT):
        self.base_dir = Path(base_dir).resolve()
        self.port, self.dist_port, self.epmd_port = free_ports(3)
        if port is not None:
            self.port = port
        if dist_port is not None:
            self.dist_port = dist_port
        self.shared_epmd = epmd_port is not None
        if epmd_port is not None:
            self.epmd_port = epmd_port
        self.cookie = cookie
        self.stall_timeout = stall_timeout
        name = name or f"opslog-{self.port}"
        self.nodename = name if "@" in name else f"{name}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"
        self.log_path = self.base_dir / "log" / "console.log"
        self.last_start_seconds: float | None = None
        self.last_stop_seconds: float | None = None
        self._server: subprocess.Popen[bytes] | None = None
        self._epmd: subprocess.Popen[bytes] | None = None
        self._children: dict[int, int] = {}

    @property
    def pid(self) -> int | None:
        """Pid of the server process (which leads the node's process group) while it runs."""
        return self._server.pid if self._server is not None else None

    def __repr__(self) -> str:
        return f"RabbitMQNode({self.nodename!r}, port={self.port}, pid={self.pid})"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _program(self, name: str) -> str:
        path = RABBITMQ_BIN_DIR / name
        if not os.access(path, os.X_OK):
            raise ServiceNotInstalled(
                f"{path} not found: install RabbitMQ with `apt-get install rabbitmq-server` "
                "(or point amqp.url at a running broker)")
        return str(path)

    def _env(self) -> dict[str, str]:
        """The node's environment; rabbitmqctl needs exactly the same one to reach it."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("RABBITMQ_", "ERL_EPMD_"))}
        base = self.base_dir
        env.update({
            "HOME": str(base),  # where Erlang keeps the cookie shared with rabbitmqctl
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            # The defaults (port + 20000, 35672..) overflow or collide between nodes.
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CTL_DIST_PORT_MIN": "0",
            "RABBITMQ_CTL_DIST_PORT_MAX": "0",
            "ERL_EPMD_PORT": str(self.epmd_port),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_PID_FILE": str(base / "rabbitmq.pid"),
            # Our own (empty) files, so /etc/rabbitmq never leaks into a private node.
            "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
        })
        env.setdefault("LC_ALL", "C.UTF-8")  # the CLI warns and mangles names otherwise
        return env

    def _prepare_dirs(self) -> None:
        for sub in ("mnesia", "log"):
            (self.base_dir / sub).mkdir(parents=True, exist_ok=True)
        for name, text in (("rabbitmq-env.conf", ""),
                           ("rabbitmq.conf", "# private opslog node: defaults only\n"),
                           ("enabled_plugins", "")):
            path = self.base_dir / name
            if not path.exists():
                path.write_text(text, encoding="utf-8")
        if self.cookie is not None:
            # Erlang refuses a cookie file that others can read; HOME is base_dir (see _env).
            cookie = self.base_dir / ".erlang.cookie"
            if cookie.exists():
                cookie.chmod(0o600)
            cookie.write_text(self.cookie, encoding="ascii")
            cookie.chmod(0o400)

    def start(self) -> Self:
        """Start the node; returns once it accepts an AMQP connection as guest, however long its boot takes."""
        if self._server is not None and self._server.poll() is None:
            return self
        server_argv = [self._program("rabbitmq-server")]
        self._program("rabbitmqctl")
        epmd_program()
        ensure_port_free(self.port, f"RabbitMQ node {self.nodename}")
        if not self.shared_epmd:
            ensure_port_free(self.epmd_port, f"epmd for {self.nodename}")
        elif not port_open(self.epmd_port):
            raise ServiceError(f"cannot start {self.nodename}: no epmd on the shared port {self.epmd_port}")
        self._prepare_dirs()
        env = self._env()
        began = time.monotonic()
        try:
            if not self.shared_epmd:
                self._epmd = start_epmd(self.epmd_port, self.log_path, self.base_dir, env)
            log.info("starting RabbitMQ node %s on port %d (log: %s)", self.nodename, self.port, self.log_path)
            self._server = self._spawn(server_argv, env)
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        self.last_start_seconds = time.monotonic() - began
        # Remembered now too: if the wrapper script dies first, they are no longer its descendants.
        self._children = descendants(self._server.pid)
        log.info("RabbitMQ node %s ready on port %d in %.1fs", self.nodename, self.port,
                 self.last_start_seconds)
        return self

    def _spawn(self, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with log_file(self.log_path, argv) as out:
            return subprocess.Popen(argv, env=env, cwd=self.base_dir, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self) -> None:
        """Wait until the running node accepts AMQP connections (again, after `start_app`)."""
        if self._server is None:
            raise ServiceError(f"RabbitMQ node {self.nodename} is not running")
        node_log = self.base_dir / "log" / f"{self.nodename}.log"
        wait_until_ready(self._amqp_ready, self._server, what=f"RabbitMQ node {self.nodename}",
                         logs=[self.log_path, node_log], stall_timeout=self.stall_timeout, tail=self._log_tail)

    def _log_tail(self) -> str:
        node_log = self.base_dir / "log" / f"{self.nodename}.log"
        return "\n".join(t for t in (last_lines(self.log_path), last_lines(node_log, 15)) if t)

    def _amqp_ready(self) -> bool:
        """True once the broker completes an AMQP handshake, vhost included.

        The listener opens late in boot, so a plain TCP check comes first: it keeps
        the AMQP client from logging a connection error on every poll."""
        if not port_open(self.port):
            return False
        # Imported here: the broker client costs an import every `opslog` command would pay.
        from common.amqp import handshake_completes
        return handshake_completes(self.url)

    def stop(self) -> None:
        """Shut the node down cleanly if it answers, by signals if not; safe to call twice."""
        server, epmd, self._server, self._epmd = self._server, self._epmd, None, None
        began = time.monotonic()
        if server is not None:
            leftovers = {**self._children, **descendants(server.pid)}
            self._children = {}
            if server.poll() is None:
                self._shutdown_with_ctl(server)
            if server.poll() is None or group_alive(server.pid):
                terminate(server, timeout=20)
            # erl_child_setup and inet_gethost left the group; they exit with the
            # VM as a rule, and are killed here when they did not.
            time.sleep(POLL_INTERVAL)
            kill_survivors(leftovers)
            server.wait()
        if epmd is not None:
            stop_epmd(epmd, self.epmd_port, self.log_path, self._env())
        if server is not None:
            self.last_stop_seconds = time.monotonic() - began
            log.info("RabbitMQ node %s stopped in %.1fs", self.nodename, self.last_stop_seconds)

    def kill(self) -> None:
        """SIGKILL every process of the node, as a crash would; its data stays for the next start."""
        server, epmd, self._server, self._epmd = self._server, self._epmd, None, None
        if server is not None:
            leftovers = {**self._children, **descendants(server.pid)}
            self._children = {}
            signal_group(server.pid, signal.SIGKILL)
            kill_survivors(leftovers)
            server.wait()
            while group_alive(server.pid):
                time.sleep(POLL_INTERVAL)
            log.info("RabbitMQ node %s killed", self.nodename)
        if epmd is not None:
            stop_epmd(epmd, self.epmd_port, self.log_path, self._env())

    def ctl(self, *args: str, tool: str = "rabbitmqctl", timeout: float = 60) -> str:
        """Run `TOOL -n NODE ARGS...` (rabbitmqctl, rabbitmq-queues, ...) against this node; its output.

        Raises ServiceError with the command's output when it fails."""
        argv = [self._program(tool), "-n", self.nodename, *args]
        try:
            result = subprocess.run(argv, check=False, env=self._env(), cwd=self.base_dir,
                                    stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                    timeout=timeout, start_new_session=True)
        except subprocess.TimeoutExpired:
            raise ServiceError(f"{tool} {' '.join(args)} on {self.nodename}: no answer in {timeout:.0f}s") from None
        if result.returncode != 0:
            raise ServiceError(f"{tool} {' '.join(args)} on {self.nodename} exited with {result.returncode}:\n"
                               f"{(result.stdout + result.stderr).strip()}")
        return result.stdout

    def _shutdown_with_ctl(self, server: subprocess.Popen[bytes]) -> None:
        """`rabbitmqctl shutdown` flushes queues and waits for the VM to exit."""
        ok = self._run_quietly([str(RABBITMQ_BIN_DIR / "rabbitmqctl"), "-n", self.nodename, "shutdown"], 60)
        try:
            server.wait(timeout=15 if ok else 1)
        except subprocess.TimeoutExpired:
            log.warning("RabbitMQ node %s still running after rabbitmqctl shutdown; signalling it",
                        self.nodename)

    def _run_quietly(self, argv: list[str], timeout: float) -> bool:
        """Run a control command with output to the node's log; True if it exited 0."""
        try:
            with log_file(self.log_path, argv) as out:
                result = subprocess.run(argv, check=False, env=self._env(), cwd=self.base_dir,
                                        stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                        timeout=timeout, start_new_session=True)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("%s failed: %s", " ".join(argv[-2:]), exc)
            return False
        return result.returncode == 0
