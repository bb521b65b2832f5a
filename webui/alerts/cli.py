"""`opslog alert -c FILE`: the alert evaluator (several may run; the one holding the lease evaluates)."""

from __future__ import annotations

import argparse
import logging

from common.commands import Commands, on_signals, serve_metrics
from common.config import Config

log = logging.getLogger("opslog")


def cmd_alert(config: Config, args: argparse.Namespace) -> int:
    from webui.alerts.evaluator import Evaluator
    from webui.alerts.store import AlertStore, open_database

    db = open_database(config.mongo)
    store = AlertStore(db)  # its own reads and writes; each rule runs under alerts.timeout
    evaluator = Evaluator(config, store)
    on_signals(evaluator.stop)
    serve_metrics(config.alerts.metrics_listen, evaluator.metrics.registry, lambda: {"database": store.ping()})
    try:
        evaluator.run()
    finally:
        db.client.close()
    return 0


def register(commands: Commands) -> None:
    commands.add("alert", cmd_alert, "evaluate the alert rules and send their notifications (run one or more; "
                 "the instance holding the lease in MongoDB evaluates)")
