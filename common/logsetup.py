"""Logging configuration. Only the CLI calls this; modules just use getLogger(__name__)."""

from __future__ import annotations

import logging
import sys


def setup_logging(level: str = "info") -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    # pika logs every reconnect attempt at ERROR with a traceback; ours say it once, clearly.
    logging.getLogger("pika").setLevel(logging.CRITICAL)
