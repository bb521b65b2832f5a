"""`python -m tests.crashing_consumer -c FILE`: `opslog consume` that dies by SIGKILL, as it would
on a segfault in a C extension or at the OOM killer's hand, whenever it decodes a message that
holds CRASH_MARK. Nothing in opslog itself can be made to crash on purpose; this stands in for
the message that does."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import TypeVar

import consumer.consumer
from common.cli import main

CRASH_MARK = "this line kills the consumer"
T = TypeVar("T")


def _deadly(decode: Callable[[bytes], T]) -> Callable[[bytes], T]:
    def decode_documents(body: bytes) -> T:
        if CRASH_MARK.encode() in body:
            os.kill(os.getpid(), signal.SIGKILL)
        return decode(body)
    return decode_documents


if __name__ == "__main__":
    consumer.consumer.decode_documents = _deadly(consumer.consumer.decode_documents)
    sys.exit(main(["consume", *sys.argv[1:]]))
