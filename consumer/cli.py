"""The consumer's commands: `opslog consume`, `opslog db init`, `opslog dead-letters` and `opslog verify`."""

from __future__ import annotations

import argparse
import logging
import os
import threading

from common.commands import Commands, count, on_signals, serve_metrics
from common.config import Config

log = logging.getLogger("opslog")


def cmd_consume(config: Config, args: argparse.Namespace) -> int:
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

    on_signals(stop)
    serve_metrics(config.consumer.metrics_listen, consumer.metrics.registry,
                  lambda: {"broker": subscriber.connected, "database": store.ping()})
    consumer.run()
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


def cmd_verify(config: Config, args: argparse.Namespace) -> int:
    """Recompute each file's stored byte ranges from the stored records themselves (an index-only
    walk of host, file, offset and length), print one line per file, exit 1 if any has a gap."""
    from common.errors import StoreUnavailable
    from consumer.store import Store

    store = Store(config.mongo)
    try:
        reports = store.verify(args.host, args.source, config.webui.stale_after)
    except StoreUnavailable as exc:
        log.error("%s", exc)
        return 2
    finally:
        store.close()
    from common.verify import summary_line

    for report in reports:
        print(summary_line(report))
    holed = sum(1 for r in reports if r["gaps"])
    print(f"{len(reports)} file(s) verified, {holed} with gaps")
    return 1 if holed else 0


def register(commands: Commands) -> None:
    commands.add("consume", cmd_consume, "store records from RabbitMQ into MongoDB (run several to scale)")
    db = commands.group("db", "MongoDB set-up", dest="db_command")
    db.add("init", cmd_db_init, "create the indexes and the retention TTL index", description=cmd_db_init.__doc__)
    dl = commands.group("dead-letters", "list or replay the parked messages of the dead-letter queue",
                        dest="dead_letters_command", description=cmd_dead_letters.__doc__)
    dl_list = dl.add("list", cmd_dead_letters, "how many messages are parked; each one's reason and record count")
    dl_list.add_argument("--limit", type=count, default=100, help="show at most this many (default: %(default)s)")
    dl_replay = dl.add("replay", cmd_dead_letters, "publish parked messages back to the records queue "
                       "(confirmed), then remove them; records already stored are not stored twice")
    dl_replay.add_argument("--dry-run", action="store_true", help="only list and count what would be replayed")
    dl_replay.add_argument("--limit", type=count, help="replay at most this many (default: all parked now)")
    verify = commands.add("verify", cmd_verify, "recompute per-file coverage from the stored records; exit 1 on a gap",
                          description=cmd_verify.__doc__)
    verify.add_argument("--host", help="only this host's files")
    verify.add_argument("--source", help="only the file(s) with this path (current or rotated name)")
