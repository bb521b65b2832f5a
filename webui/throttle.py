"""Sign-in throttling: failed sign-ins per client address and per user name, and a bound on the
password hashes computed at once.

The state lives in this process's memory, bounded: each `FailureLimit` keeps at most `max_keys`
keys and forgets the least recently seen first. Not in MongoDB, because one `opslog web` process
serves a site (werkzeug's threaded server), the UI may read from a secondary (stale counts would
let guesses through), and a failed guess should not cost a database write. A restart forgets
the counts; an attacker gains at most one more window of guesses by it.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

PER_USER_FAILURES = 10     # a user name: guesses at one account, from anywhere
PER_ADDRESS_FAILURES = 30  # a client address: guesses at many accounts (an office NAT shares one)
WINDOW_SECONDS = 15 * 60
# Each werkzeug scrypt hash takes 32 MiB and a core for tens of milliseconds.
CONCURRENT_HASHES = 4


class HashesBusy(Exception):
    """Every password-hash slot is taken: the client should retry in a second."""


class FailureLimit:
    """At most `limit` failures per key within `window` seconds of its first one; then the key
    is blocked until that window ends. Thread-safe."""

    def __init__(self, limit: int, window: float = WINDOW_SECONDS, max_keys: int = 10_000,
                 clock: Callable[[], float] = time.monotonic):
        self.limit, self.window, self.max_keys, self.clock = limit, window, max_keys, clock
        self._lock = threading.Lock()
        self._windows: OrderedDict[str, tuple[float, int]] = OrderedDict()  # key -> (first failure, failures)

    def retry_after(self, key: str) -> float:
        """Seconds until `key` may try again; 0 when it may now."""
        with self._lock:
            start, failures = self._current(key)
        return start + self.window - self.clock() if failures >= self.limit else 0.0

    def failed(self, key: str) -> None:
        with self._lock:
            start, failures = self._current(key)
            self._windows[key] = (start, failures + 1)
            self._windows.move_to_end(key)
            while len(self._windows) > self.max_keys:
                self._windows.popitem(last=False)

    def reset(self, key: str) -> None:
        with self._lock:
            self._windows.pop(key, None)

    def _current(self, key: str) -> tuple[float, int]:
        now = self.clock()
        start, failures = self._windows.get(key, (now, 0))
        return (now, 0) if now - start >= self.window else (start, failures)


class SignInGuard:
    """What `login` asks before and tells after checking a password."""

    def __init__(self, per_address: FailureLimit | None = None, per_user: FailureLimit | None = None,
                 concurrent_hashes: int = CONCURRENT_HASHES):
        self.per_address = per_address or FailureLimit(PER_ADDRESS_FAILURES)
        self.per_user = per_user or FailureLimit(PER_USER_FAILURES)
        self._hashes = threading.BoundedSemaphore(concurrent_hashes)

    def retry_after(self, address: str, user: str) -> int:
        """Whole seconds the client must wait before its next attempt (0: go ahead)."""
        wait = max(self.per_address.retry_after(address), self.per_user.retry_after(user))
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, address: str, user: str) -> None:
        self.per_address.failed(address)
        self.per_user.failed(user)

    def succeeded(self, user: str) -> None:
        # Only the name: one account of one's own must not clear the address's guesses at others.
        self.per_user.reset(user)

    @contextmanager
    def hash_slot(self) -> Iterator[None]:
        """A slot to compute one password hash in; HashesBusy at once when none is free (a queue
        of waiting sign-ins would hold threads and, each, a request's memory)."""
        if not self._hashes.acquire(blocking=False):
            raise HashesBusy
        try:
            yield
        finally:
            self._hashes.release()
