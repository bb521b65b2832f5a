"""The shipper's commands: `opslog ship` (tail and publish) and `opslog import` (back-fill)."""

from __future__ import annotations

import argparse
import signal
import sys

from common.commands import Commands, on_signals, serve_metrics
from common.config import FORMATS, Config


def cmd_ship(config: Config, args: argparse.Namespace) -> int:
    from common.amqp import Publisher
    from shipper.shipper import Shipper

    publisher = Publisher(config.amqp)
    shipper = Shipper(config, publisher)
    on_signals(shipper.stop)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, lambda *_: shipper.request_reload())
    serve_metrics(config.shipper.metrics_listen, shipper.metrics.registry,
                  lambda: {"broker": shipper.sender.ready})
    shipper.run()
    return 0


def cmd_import(config: Config, args: argparse.Namespace) -> int:
    from common.amqp import Publisher
    from shipper.backfill import BackfillError, Importer, Progress, plan, summary

    try:
        files = plan(config, args.paths, args.app, args.format)
    except BackfillError as exc:
        print(f"opslog import: {len(exc.problems)} problem(s), nothing sent:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    progress = None if args.quiet else Progress(sum(f.size for f in files), sys.stderr)
    importer = Importer(config, Publisher(config.amqp), host=args.host, progress=progress)
    on_signals(importer.stop)
    result = importer.run(files)
    if progress is not None:
        progress.finish(summary(result))
    else:
        print(summary(result), file=sys.stderr)
    return 1 if result.interrupted else 0


def register(commands: Commands) -> None:
    commands.add("ship", cmd_ship, "tail files and publish records to RabbitMQ")
    imp = commands.add("import", cmd_import, "back-fill old log files (plain or .gz) once: records the shipper "
                       "already sent, or an earlier import, are not stored twice")
    imp.add_argument("paths", nargs="+", metavar="PATH", help="log files, rotated ones included")
    imp.add_argument("--host", help="the host the files come from (default: shipper.host)")
    imp.add_argument("--app", help="read every file as this app instead of matching shipper inputs")
    imp.add_argument("--format", choices=[f for f in FORMATS if f != "regex"], help="with --app (default: plain)")
    imp.add_argument("-q", "--quiet", action="store_true", help="no progress line on stderr")
