"""`python -m tests.stalling_consumer -c FILE`: `opslog consume` that stops itself (SIGSTOP) once,
right after reserving arrival positions for its first batch and before inserting it: a worker
frozen between sequence and insert (a GC pause, a stopped VM), for the test to resume with
SIGCONT. It writes "<first position> <count>" to $OPSLOG_TEST_STALL_FILE before stopping."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from common.cli import main
from consumer.store.arrival import ArrivalOrder

_init = ArrivalOrder.__init__


def _stalling_init(self: ArrivalOrder, *args, **kwargs) -> None:
    _init(self, *args, **kwargs)
    stalled: list[int] = []

    def pause(first: int, count: int) -> None:
        if not stalled:
            stalled.append(first)
            Path(os.environ["OPSLOG_TEST_STALL_FILE"]).write_text(f"{first} {count}")
            os.kill(os.getpid(), signal.SIGSTOP)

    self.pause = pause


if __name__ == "__main__":
    ArrivalOrder.__init__ = _stalling_init  # type: ignore[method-assign]
    sys.exit(main(["consume", *sys.argv[1:]]))
