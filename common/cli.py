"""The `opslog` command. Each long-running command runs in the foreground and
stops cleanly on SIGTERM or SIGINT (Ctrl-C).

The general commands (`check-config`, `up`) live here; each package owns its own
(`shipper.cli`, `consumer.cli`, `webui.cli`) and adds them through the
`opslog.commands` entry-point group (see `common.commands`), so this module
imports none of the packages built on top of `common/`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from importlib.metadata import entry_points

from common.commands import Commands
from common.config import Config, load_config
from common.errors import BrokerRejected, ConfigError
from common.localservices.errors import ServiceError
from common.localservices.readiness import DEFAULT_STALL_TIMEOUT
from common.logsetup import setup_logging

log = logging.getLogger("opslog")
COMMANDS_GROUP = "opslog.commands"


def cmd_up(config: Config | None, args: argparse.Namespace) -> int:
    from common.up import run_up
    return run_up(config, args.data_dir, args.paths, stall_timeout=args.stall_timeout)


def cmd_check_config(config: Config, args: argparse.Namespace) -> int:
    alerts = config.alerts
    print(f"{args.config}: OK ({len(config.shipper.inputs)} shipper inputs, {len(alerts.rules)} alert rules, "
          f"{len(alerts.notifiers)} notifiers)")
    return 0


def _register_general(commands: Commands) -> None:
    commands.add("check-config", cmd_check_config, "validate a config file offline; exit 1 on any problem")
    up = commands.add("up", cmd_up, "run everything on this machine for a first look", config="optional")
    up.add_argument("-d", "--data-dir", default="var/opslog",
                    help="where local services keep data (default: %(default)s)")
    up.add_argument("--stall-timeout", type=float, default=DEFAULT_STALL_TIMEOUT, metavar="SECONDS",
                    help="give up on a starting local service after this long without progress (no CPU "
                         "time, reads or log lines); there is no limit while it works (default: %(default)s)")
    up.add_argument("paths", nargs="*", help="extra log files or globs to tail, with or without -c (each one "
                                             "as the app named after the file, plain format)")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser with every command, or, for a `command` a package registered, with that
    package's commands alone: a package is imported only when one of its commands runs."""
    parser = argparse.ArgumentParser(prog="opslog", description="Log pipeline: files -> RabbitMQ -> MongoDB -> web UI")
    commands = Commands(parser.add_subparsers(dest="command", required=True))
    _register_general(commands)
    registered = entry_points(group=COMMANDS_GROUP)
    general = command in commands.sub.choices
    if not registered:
        # Only an installed opslog has its entry points: a bare checkout on PYTHONPATH, or an
        # install older than the entry points, has none.
        parser.epilog = (f"no package registered its commands ({COMMANDS_GROUP} entry points): "
                         "install opslog (`pip install -e .` or `make setup`)")
        if command and not general and not command.startswith("-"):
            parser.error(f"unknown command {command!r}; {parser.epilog}")
    chosen = [] if general else [e for e in registered if e.name == command] or list(registered)
    for value in dict.fromkeys(e.value for e in chosen):  # a package's register() adds all its commands once
        next(e for e in chosen if e.value == value).load()(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    config = None
    if args.config_mode != "none" and args.config:
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            print(f"opslog: {args.config}: {len(exc.problems)} problem(s):", file=sys.stderr)
            for problem in exc.problems:
                print(f"  - {problem}", file=sys.stderr)
            return 1
    setup_logging(config.log_level if config else "info")
    try:
        return args.fn(config, args)
    except (BrokerRejected, ServiceError) as exc:
        # ServiceNotInstalled says how to install the missing program: a message, not a traceback.
        log.error("%s", exc)
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
