"""What a package's commands share: how a command is added to `opslog`, how it stops.

Each package owns its commands in its `cli.py` (`shipper.cli`, `consumer.cli`,
`webui.cli`) and registers them through the `opslog.commands` entry-point group
(setup.cfg): an entry is a `register(commands)` function that calls
`commands.add(...)`. `common.cli` reads the group, so `common/` never imports the
packages built on top of it.
"""

from __future__ import annotations

import argparse
import logging
import signal
from collections.abc import Callable
from typing import Literal

from common.config import Config

log = logging.getLogger("opslog")

# config "required": `-c FILE` must be given; "optional": the command builds one without;
# "none": the command takes no config.
ConfigMode = Literal["required", "optional", "none"]
Command = Callable[[Config, argparse.Namespace], int]


class Commands:
    """The `opslog` sub-command table a package's `register` adds to."""

    def __init__(self, sub: argparse._SubParsersAction):  # type: ignore[type-arg]
        self.sub = sub

    def add(self, name: str, fn: Callable[..., int], help: str, config: ConfigMode = "required",
            description: str | None = None) -> argparse.ArgumentParser:
        p = self.sub.add_parser(name, help=help, description=description or help)
        if config != "none":
            p.add_argument("-c", "--config", required=config == "required", help="YAML config file")
        p.set_defaults(fn=fn, config_mode=config)
        return p

    def group(self, name: str, help: str, dest: str, description: str | None = None) -> Commands:
        """A command with sub-commands of its own (`opslog db init`)."""
        p = self.sub.add_parser(name, help=help, description=description or help)
        return Commands(p.add_subparsers(dest=dest, required=True))


def on_signals(stop: Callable[[], None]) -> None:
    """SIGTERM and SIGINT (Ctrl-C) ask `stop` to end the command cleanly."""
    def handler(signum: int, _frame: object) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop()
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def serve_metrics(listen: str | None, registry: object, health: Callable[[], dict[str, bool]]) -> object | None:
    if not listen:
        return None
    from common.metrics import MetricsServer
    return MetricsServer(listen, registry, health).start()  # type: ignore[arg-type]


def count(text: str) -> int:
    """An argparse type: a whole number, 1 or more."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value
