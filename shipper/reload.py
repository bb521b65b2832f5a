"""SIGHUP: the config file read again, and the part of it a running shipper can take.

Inputs, batching, buffer and scan settings apply at once; the broker
(`amqp`), `shipper.state_dir` and `shipper.metrics_listen` only at restart,
so a reload keeps their running values and says so. A file that does not load
or validate changes nothing. Each part of the shipper then takes the new
settings itself (`Files.reconfigure`, `Sender.reconfigure`); the shipper's
loop only orders those steps (`Shipper._reload`).
"""

from __future__ import annotations

import dataclasses
import logging

from common.config import Config, load_config
from common.errors import ConfigError

log = logging.getLogger(__name__)


def reloaded_config(running: Config) -> Config | None:
    """The config file of `running` read again, with what changes only at restart kept as it
    runs; None (after logging why) when there is no file or it is not a valid config."""
    if running.path is None:
        log.warning("SIGHUP: no config file to reload")
        return None
    try:
        new = load_config(running.path)
    except ConfigError as exc:
        log.error("SIGHUP: %s not reloaded, keeping the running config: %s", running.path, "; ".join(exc.problems))
        return None
    now = running.shipper
    fixed = {"amqp": new.amqp != running.amqp, "shipper.state_dir": new.shipper.state_dir != now.state_dir,
             "shipper.metrics_listen": new.shipper.metrics_listen != now.metrics_listen}
    if any(fixed.values()):
        log.warning("SIGHUP: %s change only at restart; keeping the running values",
                    ", ".join(k for k, changed in fixed.items() if changed))
    shipper_config = dataclasses.replace(new.shipper, state_dir=now.state_dir, metrics_listen=now.metrics_listen)
    return dataclasses.replace(running, shipper=shipper_config)
