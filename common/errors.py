"""opslog's exception tree. Library errors (pika, pymongo) are translated into
these at the one module that talks to each library, so the rest of the code
decides what to do from the class alone::

    OpslogError
    ├── ConfigError            bad config: lists every problem with its key path
    ├── BrokerUnavailable      RabbitMQ unreachable, connection lost or blocked: reconnect
    ├── BrokerRejected         the broker refused a message or channel op: stop, do not loop
    ├── StoreUnavailable       MongoDB unreachable, no primary, timeout: retry
    └── PoisonMessage          payload can never be stored: dead-letter it with `reason`
"""

from __future__ import annotations


class OpslogError(Exception):
    """Base class of every error opslog raises on purpose."""


class ConfigError(OpslogError):
    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("invalid config:\n" + "\n".join(f"  - {p}" for p in self.problems))


class BrokerUnavailable(OpslogError):
    """The broker cannot take or give messages right now; reconnect with backoff."""


class BrokerRejected(OpslogError):
    """The broker refused an operation (nack, access refused, missing exchange)."""


class StoreUnavailable(OpslogError):
    """The database cannot accept writes right now; retry with backoff."""


class PoisonMessage(OpslogError):
    """A message that can never be stored; `reason` goes into the dead-letter header."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)
