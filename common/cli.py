"""The `opslog` command. Each long-running command runs in the foreground and
stops cleanly on SIGTERM or SIGINT (Ctrl-C)."""

from __future__ import annotations

import argparse
import getpass
import logging
import signal
import sys
from collections.abc import Callable

from common.config import FORMATS, Config, load_config
from common.errors import BrokerRejected, ConfigError
from common.logsetup import setup_logging
from common.services.readiness import DEFAULT_STALL_TIMEOUT

log = logging.getLogger("opslog")


def _on_signals(stop: Callable[[], None]) -> None:
    def handler(signum: int, _frame: object) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop()
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _metrics(listen: str | None, registry: object, health: Callable[[], dict[str, bool]]) -> object | None:
    if not listen:
        return None
    from common.metrics import MetricsServer
    return MetricsServer(listen, registry, health).start()  # type: ignore[arg-type]


def cmd_ship(config: Config, args: argparse.Namespace) -> int:
    from common.amqp import Publisher
    from shipper.shipper import Shipper

    publisher = Publisher(config.amqp)
    shipper = Shipper(config, publisher)
    _on_signals(shipper.stop)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, lambda *_: shipper.request_reload())
    _metrics(config.shipper.metrics_listen, shipper.metrics.registry,
             lambda: {"broker": shipper.sender.ready})
    shipper.run()
    return 0


def cmd_consume(config: Config, args: argparse.Namespace) -> int:
    import os
    import threading

    from common.amqp import Subscriber
    from consumer.consumer import Consumer
    from consumer.store import Store

    subscriber = Subscriber(config.amqp, config.consumer.prefetch)
    store = Store(config.mongo)
    consumer = Consumer(config, subscriber, store)
    grace = config.consumer.shutdown_timeout + 15

    def exit_now() -> None:
        log.error("still running %.0fs after the stop request (a broker or database call that never "
                  "returns); exiting: what this worker holds is unacked and will be delivered again", grace)
        logging.shutdown()
        os._exit(0)

    # The consumer stops within shutdown_timeout, unless a library call never returns; then
    # this timer ends the process, which loses nothing because nothing unstored was acked.
    watchdog = threading.Timer(grace, exit_now)
    watchdog.daemon = True

    def stop() -> None:
        consumer.stop()
        if not watchdog.is_alive():
            watchdog.start()

    _on_signals(stop)
    _metrics(config.consumer.metrics_listen, consumer.metrics.registry,
             lambda: {"broker": subscriber.connected, "database": store.ping()})
    consumer.run()
    return 0


def cmd_web(config: Config, args: argparse.Namespace) -> int:
    from webui.server import serve
    serve(config)
    return 0


def cmd_up(config: Config | None, args: argparse.Namespace) -> int:
    from common.up import run_up
    return run_up(config, args.data_dir, args.paths, stall_timeout=args.stall_timeout)


def cmd_check_config(config: Config, args: argparse.Namespace) -> int:
    print(f"{args.config}: OK ({len(config.shipper.inputs)} shipper inputs)")
    return 0


def cmd_hash_password(_config: None, args: argparse.Namespace) -> int:
    from webui.auth import hash_password
    password = args.password or getpass.getpass("password: ")
    print(hash_password(password))
    return 0


def cmd_db_init(config: Config, args: argparse.Namespace) -> int:
    """Create the indexes (and the TTL index of mongo.retention) ahead of the first consumer."""
    from common.errors import StoreUnavailable
    from consumer.store import Store

    store = Store(config.mongo)
    try:
        store.init()
    except StoreUnavailable as exc:
        log.error("%s", exc)
        return 1
    finally:
        store.close()
    retention = f"records expire {config.mongo.retention:.0f}s after arrival" if config.mongo.retention \
        else "records kept until deleted (no mongo.retention)"
    print(f"database {config.mongo.database}: indexes ready; {retention}; full-text search: "
          f"{'$text index' if store.text_search else 'bounded substring'}")
    return 0


def cmd_dead_letters(config: Config, args: argparse.Namespace) -> int:
    """List what is parked in the dead-letter queue, or send it back to the records queue."""
    from common.amqp import DeadLetterQueue
    from common.errors import BrokerUnavailable
    from consumer.deadletters import browse, replay

    queue = DeadLetterQueue(config.amqp)
    dead, records = config.amqp.dead_letter_queue, config.amqp.queue
    try:
        if args.dead_letters_command == "list":
            depth, shown = browse(queue, args.limit)
            print(f"{dead}: {depth} parked message(s)" + (f", the first {len(shown)}:" if shown else ""))
            for parked in shown:
                print(f"  {parked.line()}")
            return 0
        verb = "would replay" if args.dry_run else "replayed"
        result = replay(queue, args.limit, args.dry_run, lambda p: print(f"  {verb}: {p.line()}"))
    except BrokerUnavailable as exc:
        log.error("%s", exc)
        return 1
    print(f"{'dry run: ' if args.dry_run else ''}{verb} {result.messages} message(s), {result.records} record(s), "
          f"from {dead} to {records}; {result.left} left in {dead}")
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
    _on_signals(importer.stop)
    result = importer.run(files)
    if progress is not None:
        progress.finish(summary(result))
    else:
        print(summary(result), file=sys.stderr)
    return 1 if result.interrupted else 0


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="opslog", description="Log pipeline: files -> RabbitMQ -> MongoDB -> web UI")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, fn: Callable[..., int], help: str, config: str = "required") -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        if config != "none":
            p.add_argument("-c", "--config", required=config == "required", help="YAML config file")
        p.set_defaults(fn=fn, config_mode=config)
        return p

    command("ship", cmd_ship, "tail files and publish records to RabbitMQ")
    command("consume", cmd_consume, "store records from RabbitMQ into MongoDB (run several to scale)")
    command("web", cmd_web, "serve the web UI and JSON API")
    command("check-config", cmd_check_config, "validate a config file offline; exit 1 on any problem")
    up = command("up", cmd_up, "run everything on this machine for a first look", config="optional")
    up.add_argument("-d", "--data-dir", default="var/opslog",
                    help="where local services keep data (default: %(default)s)")
    up.add_argument("--stall-timeout", type=float, default=DEFAULT_STALL_TIMEOUT, metavar="SECONDS",
                    help="give up on a starting local service after this long without progress (no CPU "
                         "time, reads or log lines); there is no limit while it works (default: %(default)s)")
    up.add_argument("paths", nargs="*", help="extra log files or globs to tail")
    hp = command("hash-password", cmd_hash_password, "print a password hash for webui.users", config="none")
    hp.add_argument("--password", help="the password (default: prompt)")
    db = sub.add_parser("db", help="MongoDB set-up", description="MongoDB set-up")
    db_init = db.add_subparsers(dest="db_command", required=True).add_parser(
        "init", help="create the indexes and the retention TTL index", description=cmd_db_init.__doc__)
    db_init.add_argument("-c", "--config", required=True, help="YAML config file")
    db_init.set_defaults(fn=cmd_db_init, config_mode="required")
    dl = sub.add_parser("dead-letters", help="list or replay the parked messages of the dead-letter queue",
                        description=cmd_dead_letters.__doc__)
    dl_sub = dl.add_subparsers(dest="dead_letters_command", required=True)
    dl_list = dl_sub.add_parser("list", help="how many messages are parked; each one's reason and record count")
    dl_list.add_argument("--limit", type=_count, default=100, help="show at most this many (default: %(default)s)")
    dl_replay = dl_sub.add_parser("replay", help="publish parked messages back to the records queue (confirmed), "
                                  "then remove them; records already stored are not stored twice")
    dl_replay.add_argument("--dry-run", action="store_true", help="only list and count what would be replayed")
    dl_replay.add_argument("--limit", type=_count, help="replay at most this many (default: all parked now)")
    for p in (dl_list, dl_replay):
        p.add_argument("-c", "--config", required=True, help="YAML config file")
        p.set_defaults(fn=cmd_dead_letters, config_mode="required")
    imp = command("import", cmd_import, "back-fill old log files (plain or .gz) once: records the shipper "
                  "already sent, or an earlier import, are not stored twice")
    imp.add_argument("paths", nargs="+", metavar="PATH", help="log files, rotated ones included")
    imp.add_argument("--host", help="the host the files come from (default: shipper.host)")
    imp.add_argument("--app", help="read every file as this app instead of matching shipper inputs")
    imp.add_argument("--format", choices=[f for f in FORMATS if f != "regex"], help="with --app (default: plain)")
    imp.add_argument("-q", "--quiet", action="store_true", help="no progress line on stderr")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
    except BrokerRejected as exc:
        log.error("%s", exc)
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
