"""Finding the files the inputs name, and noticing when that set may have changed.

`matching_files` expands globs (with `**`) minus `exclude` globs (shipper.discovery). A full scan
runs every `scan_interval`; between scans a watcher says when one is due
sooner. `InotifyWatcher` watches the directories the globs can match in (the
fixed part of each pattern, and below it when a directory part has wildcards),
so a new or rotated file is seen at once; `PollWatcher` just keeps the
interval. inotify is Linux-only and its watches are a limited resource
(fs.inotify.max_user_watches), so `watch: auto` falls back to polling when it
cannot be had, and a failed watch only costs latency: the periodic scan still
finds everything.
"""

from __future__ import annotations

import glob
import logging
import os
import time
from collections.abc import Iterable
from typing import Protocol

from common.config import InputConfig
from shipper.discovery import Finder

log = logging.getLogger(__name__)


def matching_files(cfg: InputConfig) -> list[str]:
    """The names of the regular files `cfg` reads (see shipper.discovery: no symlink followed
    unless `follow_symlinks`, one name per file)."""
    return [found.path for found in Finder(cfg).find().found]


class Watcher(Protocol):
    kind: str

    def scan_due(self) -> bool:
        """True when the files matched by the inputs may have changed since the last scan."""
        ...

    def scanned(self) -> None:
        """A full scan just ran."""
        ...

    def close(self) -> None: ...


class PollWatcher:
    """A scan every `interval` seconds."""

    kind = "poll"

    def __init__(self, interval: float):
        self.interval = interval
        self.next_scan = 0.0

    def scan_due(self) -> bool:
        return time.monotonic() >= self.next_scan

    def scanned(self) -> None:
        self.next_scan = time.monotonic() + self.interval

    def close(self) -> None:
        pass


def watch_roots(patterns: Iterable[str]) -> dict[str, bool]:
    """Directory -> recursive? for each glob: its fixed leading directory, watched with
    its subdirectories when a directory part of the pattern has wildcards."""
    roots: dict[str, bool] = {}
    for pattern in patterns:
        parts = os.path.abspath(os.path.expanduser(pattern)).split(os.sep)
        fixed = next((i for i, part in enumerate(parts) if glob.has_magic(part)), len(parts) - 1)
        root = os.sep.join(parts[:fixed]) or os.sep
        recursive = fixed < len(parts) - 1
        roots[root] = roots.get(root, False) or recursive
    return roots


class InotifyWatcher(PollWatcher):
    """A scan every `interval` seconds, and at once when a watched directory changes."""

    kind = "inotify"

    def __init__(self, interval: float, patterns: Iterable[str]):
        import inotify_simple  # Linux only; imported here so other systems can still poll

        super().__init__(interval)
        self._flags = inotify_simple.flags
        self._mask = (self._flags.CREATE | self._flags.MOVED_TO | self._flags.MOVED_FROM | self._flags.DELETE
                      | self._flags.DELETE_SELF | self._flags.MOVE_SELF)
        self._inotify = inotify_simple.INotify(nonblocking=True)
        self._roots = watch_roots(patterns)
        self._watched: dict[str, int] = {}
        self._warned: set[str] = set()
        self._refresh()

    def scan_due(self) -> bool:
        events = self._inotify.read(timeout=0)
        if events and any(e.mask & (self._flags.ISDIR | self._flags.Q_OVERFLOW | self._flags.IGNORED)
                          for e in events):
            self._refresh()
        return bool(events) or super().scan_due()

    def scanned(self) -> None:
        super().scanned()
        self._refresh()  # directories that did not exist yet may exist now

    def _refresh(self) -> None:
        wanted: set[str] = set()
        for root, recursive in self._roots.items():
            directory = root
            while not os.path.isdir(directory) and directory != os.sep:
                directory = os.path.dirname(directory)  # watch the nearest ancestor until it exists
            wanted.add(directory)
            if recursive and directory == root:
                wanted.update(dirpath for dirpath, _, _ in os.walk(root))
        for gone in set(self._watched) - wanted:
            wd = self._watched.pop(gone)
            try:
                self._inotify.rm_watch(wd)
            except OSError:
                pass  # the directory was deleted: the kernel removed the watch itself
        for directory in wanted - set(self._watched):
            try:
                self._watched[directory] = self._inotify.add_watch(directory, self._mask)
            except OSError as exc:
                if directory not in self._warned:
                    self._warned.add(directory)
                    log.warning("cannot watch %s with inotify (%s); it is polled every scan_interval",
                                directory, exc.strerror)

    def close(self) -> None:
        self._inotify.close()


def make_watcher(mode: str, interval: float, patterns: Iterable[str]) -> Watcher:
    """The watcher `mode` (auto | inotify | poll) asks for; `auto` polls where inotify is missing."""
    if mode == "poll":
        return PollWatcher(interval)
    try:
        return InotifyWatcher(interval, patterns)
    except (ImportError, OSError, AttributeError) as exc:
        if mode == "inotify":
            log.warning("watch: inotify is not available here (%s); polling every %gs instead", exc, interval)
        return PollWatcher(interval)
