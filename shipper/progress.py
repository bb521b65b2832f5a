"""The import's one status line on stderr: a bar, records, rate and ETA."""

from __future__ import annotations

import time
from typing import TextIO


class Progress:
    """One status line on stderr: a bar, records, rate and ETA.

    On a terminal it is redrawn in place (`\\r`) a few times a second; into a
    file or pipe a full line is written every `log_interval` seconds instead.
    The ETA comes from bytes read, since line counts are unknown until read."""

    BAR = 24

    def __init__(self, total_bytes: int, stream: TextIO, tty: bool | None = None,
                 interval: float = 0.2, log_interval: float = 10.0):
        self.total = max(total_bytes, 1)
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self.interval = interval if self.tty else log_interval
        self.started = time.monotonic()
        self._drawn_at = 0.0
        self._width = 0

    def line(self, records: int, done_bytes: int, name: str, now: float | None = None) -> str:
        now = time.monotonic() if now is None else now
        elapsed = max(now - self.started, 1e-6)
        fraction = min(done_bytes / self.total, 1.0)
        filled = int(fraction * self.BAR)
        rate = records / elapsed
        byte_rate = done_bytes / elapsed
        eta = "--:--" if byte_rate <= 0 else _clock((self.total - done_bytes) / byte_rate)
        return (f"[{'#' * filled}{'.' * (self.BAR - filled)}] {fraction:4.0%}  {records:,} records  "
                f"{rate:,.0f}/s  ETA {eta}  {name}")

    def update(self, records: int, done_bytes: int, name: str) -> None:
        now = time.monotonic()
        if now - self._drawn_at < self.interval:
            return
        self._drawn_at = now
        self._draw(self.line(records, done_bytes, name, now))

    def finish(self, text: str) -> None:
        self._draw(text, final=True)

    def _draw(self, text: str, final: bool = False) -> None:
        if self.tty:
            pad = " " * max(0, self._width - len(text))
            self.stream.write(f"\r{text}{pad}" + ("\n" if final else ""))
            self._width = 0 if final else len(text) + len(pad)  # what the terminal line now shows
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def _clock(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"
