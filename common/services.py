"""Local RabbitMQ and MongoDB-compatible servers for `opslog up` and the tests.

Both run as ordinary child processes under a directory we own, on ports we pick,
so several can run side by side on one machine without root and without
touching a system-wide broker or database. Each is started in its own session:
Ctrl-C in the terminal that runs `opslog up` or pytest reaches the parent only,
which then stops the services in order instead of having them die mid-write.

A RabbitMQ node is more than one process, and not all of them stay in the
node's process group: `erl_child_setup` and `inet_gethost` call setsid(), and an
`epmd -daemon` started by Erlang detaches to init. So we run epmd ourselves, in
the foreground on a private port, and on stop we also sweep the node's
descendants recorded from /proc.

A `RabbitMQCluster` joins several such nodes on one machine. Erlang nodes find
each other through the epmd of their host, so the nodes of a cluster share one
epmd (the cluster's) and one Erlang cookie, but keep their own ports and data.

    OpslogError
    └── ServiceError          a local service did not start or stop as expected
        └── ServiceNotInstalled   its program is missing; the message says how to install it
"""

from __future__ import annotations

import json
import logging
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, NamedTuple, Self

from common.errors import OpslogError

log = logging.getLogger(__name__)

RABBITMQ_BIN_DIR = Path("/usr/lib/rabbitmq/bin")
"""Debian's unwrapped scripts: the /usr/sbin wrappers switch to the rabbitmq
user, which cannot read our data dir or our Erlang cookie."""

_POLL = 0.1


class ServiceError(OpslogError):
    """A local service did not start or stop as expected."""


class ServiceNotInstalled(ServiceError):  # noqa: N818 - named like its siblings in common.errors
    """The program that runs a local service is not installed."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    return _free_ports(1)[0]


SERVICE_PORTS_FROM = 20000


def _ephemeral_ports_from() -> int:
    """The first port of the kernel's range for outgoing connections."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as fh:
            return int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _free_ports(count: int) -> list[int]:
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


def _port_open(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def _ensure_port_free(port: int, what: str) -> None:
    """Refuse to start on a port someone else listens on: the readiness probe
    would otherwise be answered by that other server."""
    if _port_open(port):
        raise ServiceError(f"cannot start {what}: port {port} on 127.0.0.1 is already in use")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


# --- processes ---------------------------------------------------------------

class _Proc(NamedTuple):
    ppid: int
    pgid: int
    state: str
    started: int  # clock ticks since boot: tells a process from a later one with its pid


def _proc_table() -> dict[int, _Proc]:
    """Every process on the machine, from /proc; empty where there is no /proc."""
    table: dict[int, _Proc] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return table
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                stat = fh.read()
        except OSError:
            continue
        # The fields after the command name, which may itself contain spaces and ')'.
        fields = stat[stat.rfind(")") + 2:].split()
        table[int(entry)] = _Proc(ppid=int(fields[1]), pgid=int(fields[2]), state=fields[0],
                                  started=int(fields[19]))
    return table


def _descendants(pid: int) -> dict[int, int]:
    """Every live descendant of `pid` as pid -> start time."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for child, proc in table.items():
        children.setdefault(proc.ppid, []).append(child)
    found: dict[int, int] = {}
    todo = list(children.get(pid, ()))
    while todo:
        child = todo.pop()
        if child not in found:
            found[child] = table[child].started
            todo.extend(children.get(child, ()))
    return found


def _kill_survivors(processes: dict[int, int]) -> None:
    """SIGKILL the recorded processes that still run (same pid and start time)."""
    table = _proc_table()
    for pid, started in processes.items():
        proc = table.get(pid)
        if proc is not None and proc.started == started and proc.state != "Z":
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _group_alive(pgid: int) -> bool:
    """True while a process of group `pgid` runs. Zombies do not count: where
    pid 1 does not reap orphans (some containers), they would never go away."""
    table = _proc_table()
    if table:
        return any(proc.pgid == pgid and proc.state != "Z" for proc in table.values())
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _terminate(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM the process group `proc` leads, wait, then SIGKILL it; always reaps `proc`.

    Waiting also for the rest of the group keeps a restart from racing a dying
    server for its port or its data files."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        _signal_group(proc.pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if proc.poll() is not None and not _group_alive(proc.pid):
                return
            time.sleep(_POLL)
    proc.wait(timeout=10)


@contextmanager
def _log_file(path: Path, argv: list[str]) -> Iterator[IO[bytes]]:
    """The service's console log, appended to across restarts, each run headed
    by its command. The child keeps its own descriptor, so ours is closed as
    soon as the child is spawned."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as fh:
        fh.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n".encode())
        fh.flush()
        yield fh


# --- RabbitMQ ----------------------------------------------------------------

def _epmd_program() -> str:
    epmd = shutil.which("epmd") or "/usr/lib/erlang/bin/epmd"
    if not os.access(epmd, os.X_OK):
        raise ServiceNotInstalled("epmd not found: install it with `apt-get install rabbitmq-server` "
                                  "(it comes with erlang-base)")
    return epmd


def _start_epmd(port: int, log_path: Path, cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Our own epmd in the foreground on a private port, so it never outlives its nodes as a daemon."""
    argv = [_epmd_program(), "-port", str(port), "-address", "127.0.0.1"]
    with _log_file(log_path, argv) as out:
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 10
    while not _port_open(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            _terminate(proc, timeout=5)
            raise ServiceError(f"epmd did not start on port {port}; last lines of {log_path}:\n{_tail(log_path)}")
        time.sleep(_POLL)
    return proc


def _stop_epmd(proc: subprocess.Popen[bytes], port: int, log_path: Path, env: dict[str, str]) -> None:
    if proc.poll() is None:
        argv = [str(proc.args[0]), "-port", str(port), "-kill"]  # type: ignore[index]
        try:
            with _log_file(log_path, argv) as out:
                subprocess.run(argv, check=False, env=env, stdin=subprocess.DEVNULL, stdout=out,
                               stderr=subprocess.STDOUT, timeout=10, start_new_session=True)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("epmd -kill failed: %s", exc)
    if proc.poll() is None:
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            _terminate(proc, timeout=5)
    proc.wait()


class RabbitMQNode:
    """A private RabbitMQ node under `base_dir`, listening on 127.0.0.1 only.

    Data lives in `base_dir/mnesia` under a node name derived from the port, so
    stopping and starting again with the same directory and port keeps durable
    queues and persistent messages.

    A node runs its own epmd unless given `epmd_port`: then an epmd that someone
    else runs there (a `RabbitMQCluster`) is shared with other nodes. `cookie`
    fixes the Erlang cookie (nodes of one cluster need the same one).
    """

    def __init__(self, base_dir: str | Path, port: int | None = None, name: str | None = None, *,
                 dist_port: int | None = None, epmd_port: int | None = None, cookie: str | None = None):
        self.base_dir = Path(base_dir).resolve()
        self.port, self.dist_port, self.epmd_port = _free_ports(3)
        if port is not None:
            self.port = port
        if dist_port is not None:
            self.dist_port = dist_port
        self.shared_epmd = epmd_port is not None
        if epmd_port is not None:
            self.epmd_port = epmd_port
        self.cookie = cookie
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

    def start(self, timeout: float = 60) -> Self:
        """Start the node; returns once it accepts an AMQP connection as guest."""
        if self._server is not None and self._server.poll() is None:
            return self
        server_argv = [self._program("rabbitmq-server")]
        self._program("rabbitmqctl")
        _epmd_program()
        _ensure_port_free(self.port, f"RabbitMQ node {self.nodename}")
        if not self.shared_epmd:
            _ensure_port_free(self.epmd_port, f"epmd for {self.nodename}")
        elif not _port_open(self.epmd_port):
            raise ServiceError(f"cannot start {self.nodename}: no epmd on the shared port {self.epmd_port}")
        self._prepare_dirs()
        env = self._env()
        began = time.monotonic()
        try:
            if not self.shared_epmd:
                self._epmd = _start_epmd(self.epmd_port, self.log_path, self.base_dir, env)
            self._server = self._spawn(server_argv, env)
            self._wait_for(self._amqp_ready, self._server, timeout, f"RabbitMQ node {self.nodename}")
        except BaseException:
            self.stop()
            raise
        self.last_start_seconds = time.monotonic() - began
        # Remembered now too: if the wrapper script dies first, they are no longer its descendants.
        self._children = _descendants(self._server.pid)
        log.info("RabbitMQ node %s ready on port %d in %.1fs", self.nodename, self.port,
                 self.last_start_seconds)
        return self

    def _spawn(self, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with _log_file(self.log_path, argv) as out:
            return subprocess.Popen(argv, env=env, cwd=self.base_dir, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)

    def _wait_for(self, ready: Callable[[], bool], proc: subprocess.Popen[bytes],
                  timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if proc.poll() is not None:
                raise ServiceError(f"{what} exited with status {proc.returncode} while starting; "
                                   f"last lines of {self.log_path}:\n{self._log_tail()}")
            if time.monotonic() > deadline:
                raise ServiceError(f"{what} not ready after {timeout:.0f}s; "
                                   f"last lines of {self.log_path}:\n{self._log_tail()}")
            time.sleep(_POLL)

    def wait_ready(self, timeout: float = 60) -> None:
        """Wait until the running node accepts AMQP connections (again, after `start_app`)."""
        if self._server is None:
            raise ServiceError(f"RabbitMQ node {self.nodename} is not running")
        self._wait_for(self._amqp_ready, self._server, timeout, f"RabbitMQ node {self.nodename}")

    def _log_tail(self) -> str:
        node_log = self.base_dir / "log" / f"{self.nodename}.log"
        return "\n".join(t for t in (_tail(self.log_path), _tail(node_log, 15)) if t)

    def _amqp_ready(self) -> bool:
        """True once the broker completes an AMQP handshake, vhost included.

        The listener opens late in boot, so a plain TCP check comes first: it keeps
        pika from logging a connection error on every poll."""
        if not _port_open(self.port):
            return False
        # A readiness probe only: opslog's own AMQP code lives in its broker module.
        import pika
        import pika.exceptions
        from pika.adapters.utils.connection_workflow import AMQPConnectorException

        params = pika.URLParameters(self.url)
        params.connection_attempts, params.socket_timeout = 1, 2
        params.blocked_connection_timeout = 2
        try:
            pika.BlockingConnection(params).close()
        except (pika.exceptions.AMQPError, AMQPConnectorException):
            return False
        return True

    def stop(self) -> None:
        """Shut the node down cleanly if it answers, by signals if not; safe to call twice."""
        server, epmd, self._server, self._epmd = self._server, self._epmd, None, None
        began = time.monotonic()
        if server is not None:
            leftovers = {**self._children, **_descendants(server.pid)}
            self._children = {}
            if server.poll() is None:
                self._shutdown_with_ctl(server)
            if server.poll() is None or _group_alive(server.pid):
                _terminate(server, timeout=20)
            # erl_child_setup and inet_gethost left the group; they exit with the
            # VM as a rule, and are killed here when they did not.
            time.sleep(_POLL)
            _kill_survivors(leftovers)
            server.wait()
        if epmd is not None:
            _stop_epmd(epmd, self.epmd_port, self.log_path, self._env())
        if server is not None:
            self.last_stop_seconds = time.monotonic() - began
            log.info("RabbitMQ node %s stopped in %.1fs", self.nodename, self.last_stop_seconds)

    def kill(self) -> None:
        """SIGKILL every process of the node, as a crash would; its data stays for the next start."""
        server, epmd, self._server, self._epmd = self._server, self._epmd, None, None
        if server is not None:
            leftovers = {**self._children, **_descendants(server.pid)}
            self._children = {}
            _signal_group(server.pid, signal.SIGKILL)
            _kill_survivors(leftovers)
            server.wait()
            while _group_alive(server.pid):
                time.sleep(_POLL)
            log.info("RabbitMQ node %s killed", self.nodename)
        if epmd is not None:
            _stop_epmd(epmd, self.epmd_port, self.log_path, self._env())

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
            with _log_file(self.log_path, argv) as out:
                result = subprocess.run(argv, check=False, env=self._env(), cwd=self.base_dir,
                                        stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                        timeout=timeout, start_new_session=True)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("%s failed: %s", " ".join(argv[-2:]), exc)
            return False
        return result.returncode == 0


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
        self.epmd_port, *ports = _free_ports(1 + 2 * size)
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
                _ensure_port_free(self.epmd_port, "the cluster's epmd")
                self._epmd = _start_epmd(self.epmd_port, self.log_path, self.base_dir, dict(os.environ))
            seed, *others = self.nodes
            # A node with data already belongs to the cluster and rejoins by itself.
            joining = [node for node in others if not any((node.base_dir / "mnesia").glob("*/"))]
            self._each(lambda node: node.start(timeout), self.nodes)
            self._each(lambda node: node.ctl("stop_app"), joining)
            for node in joining:  # one at a time: each join changes the cluster's schema
                node.ctl("join_cluster", seed.nodename)
            self._each(lambda node: (node.ctl("start_app"), node.wait_ready(timeout)), joining)
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
            _stop_epmd(epmd, self.epmd_port, self.log_path, dict(os.environ))


# --- MongoDB (SecantusDB) ----------------------------------------------------

def _secantusd() -> str:
    """secantusd-py from this interpreter's environment first, so a venv's copy wins."""
    beside = Path(sys.executable).parent / "secantusd-py"
    if os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("secantusd-py")
    if found:
        return found
    raise ServiceNotInstalled(
        "secantusd-py not found next to the Python interpreter or on PATH: install the "
        "MongoDB-compatible local server with `pip install secantusdb==0.7.0b3` "
        "(or point mongo.uri at a running MongoDB)")


class MongoServer:
    """A local SecantusDB server (MongoDB wire protocol) on 127.0.0.1.

    With a `base_dir` the data lives in `base_dir/data` and survives stop/start
    and kill/start on the same port; `in_memory=True` keeps nothing.
    """

    def __init__(self, base_dir: str | Path | None, port: int | None = None, in_memory: bool = False):
        if base_dir is None and not in_memory:
            raise ValueError("MongoServer needs a base_dir unless in_memory=True")
        self._own_dir = base_dir is None
        self.base_dir = Path(base_dir).resolve() if base_dir is not None else None
        self.in_memory = in_memory
        self.port = port if port is not None else free_port()
        self.uri = f"mongodb://127.0.0.1:{self.port}"
        self.last_start_seconds: float | None = None
        self.last_stop_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def log_path(self) -> Path | None:
        return self.base_dir / "secantusd.log" if self.base_dir is not None else None

    def __repr__(self) -> str:
        return f"MongoServer(port={self.port}, pid={self.pid}, in_memory={self.in_memory})"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self, timeout: float = 30) -> Self:
        """Start the server; returns once it answers `ping`."""
        if self._proc is not None and self._proc.poll() is None:
            return self
        program = _secantusd()
        _ensure_port_free(self.port, "the MongoDB-compatible server")
        if self.base_dir is None:
            # Logs only: an in-memory server without a home still needs somewhere to explain a failure.
            self.base_dir = Path(tempfile.mkdtemp(prefix="opslog-mongo-"))
        self.base_dir.mkdir(parents=True, exist_ok=True)
        # An explicit (empty) config file turns off secantusd's search of ~ and /etc.
        config = self.base_dir / "secantusd.toml"
        if not config.exists():
            config.write_text("# private opslog server: defaults only\n", encoding="utf-8")
        storage = ":memory:" if self.in_memory else str(self.base_dir / "data")
        argv = [program, "--config", str(config), "--host", "127.0.0.1", "--port", str(self.port),
                "--storage-path", storage]
        began = time.monotonic()
        assert self.log_path is not None
        with _log_file(self.log_path, argv) as out:
            self._proc = subprocess.Popen(argv, cwd=self.base_dir, stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        self.last_start_seconds = time.monotonic() - began
        log.info("MongoDB-compatible server ready on port %d in %.1fs", self.port, self.last_start_seconds)
        return self

    def _wait_ready(self, timeout: float) -> None:
        # A launcher's readiness probe; opslog's own MongoDB code lives in its store module.
        import pymongo
        import pymongo.errors

        assert self._proc is not None and self.log_path is not None
        deadline = time.monotonic() + timeout
        client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
            self.uri, directConnection=True, serverSelectionTimeoutMS=500, connectTimeoutMS=500)
        try:
            while True:
                if self._proc.poll() is not None:
                    raise ServiceError(f"secantusd-py exited with status {self._proc.returncode} while "
                                       f"starting; last lines of {self.log_path}:\n{_tail(self.log_path)}")
                try:
                    client.admin.command("ping")
                    return
                except pymongo.errors.PyMongoError:
                    if time.monotonic() > deadline:
                        raise ServiceError(f"secantusd-py not answering on port {self.port} after "
                                           f"{timeout:.0f}s; last lines of {self.log_path}:\n"
                                           f"{_tail(self.log_path)}") from None
                    time.sleep(_POLL)
        finally:
            client.close()

    def stop(self) -> None:
        """SIGTERM (it checkpoints its data), then SIGKILL after a grace period; safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is not None:
            began = time.monotonic()
            _terminate(proc, timeout=20)
            self.last_stop_seconds = time.monotonic() - began
            log.info("MongoDB-compatible server on port %d stopped in %.1fs", self.port, self.last_stop_seconds)
        self._remove_own_dir()

    def kill(self) -> None:
        """SIGKILL, as a crash would: no checkpoint, the storage must recover on restart."""
        proc, self._proc = self._proc, None
        if proc is not None:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
            while _group_alive(proc.pid):
                time.sleep(_POLL)
        self._remove_own_dir()

    def _remove_own_dir(self) -> None:
        if self._own_dir and self.base_dir is not None:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            self.base_dir = None
