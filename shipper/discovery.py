"""Which files an input names: its globs walked without following symlinks, in bounded work.

The rule (README, "Symlinks"): the fixed leading directory of a glob (what the
operator wrote literally, e.g. `/var/log/nginx` in `/var/log/nginx/*.log`) is
resolved by the system like any path. Below it no symlink is followed: a
symlinked directory is not descended into (so a loop under `**` cannot make
the walk endless), and a symlinked file is skipped. With `follow_symlinks:
true` a symlinked file is taken when its real path itself matches one of the
input's globs (and no `exclude`): a link can only give another name to a file
the input already reads, never reach `/etc/opslog/opslog.env`.

Only regular files are taken (no FIFOs, sockets or devices), each file once
per input: several names for one (device, inode), hard links or followed
symlinks, give the name found first, in the order of the input's `paths`.
Directories are recognised by (device, inode) too, so a bind mount that loops
is walked once, and a walk stops after `max_entries` directory entries (a
tree that big is a mistaken glob, and a truncated walk must not be taken for
"these files are gone").
"""

from __future__ import annotations

import fnmatch
import glob
import logging
import os
import stat as stat_mod
from collections.abc import Iterator
from dataclasses import dataclass, field

from common.config import InputConfig

log = logging.getLogger(__name__)

MAX_WALK_ENTRIES = 100_000  # directory entries one input's walk may read per scan


@dataclass(frozen=True)
class Found:
    path: str   # the name it was found under: the records' `source`
    real: str   # where to open it: `path`, or the resolved target of a followed symlink
    root: str   # the glob's fixed directory: no symlink below it may be followed when opening `real`
    st: os.stat_result  # of `real`, not followed


@dataclass
class Discovery:
    found: list[Found] = field(default_factory=list)
    complete: bool = True  # False when a walk hit its bound: files not found may still exist
    entries: int = 0       # directory entries read


def split_glob(pattern: str) -> tuple[str, tuple[str, ...]]:
    """(fixed leading directory, the parts below it) of an absolute, user-expanded glob.
    A glob without wildcards is its directory and its file name."""
    parts = os.path.abspath(os.path.expanduser(pattern)).split(os.sep)[1:]
    fixed = next((i for i, part in enumerate(parts) if glob.has_magic(part)), len(parts) - 1)
    return os.sep + os.sep.join(parts[:fixed]), tuple(parts[fixed:])


def _part_matches(name: str, part: str) -> bool:
    # glob's rule: a wildcard does not match a leading dot unless the pattern has one
    if name.startswith(".") and not part.startswith("."):
        return False
    return fnmatch.fnmatchcase(name, part)


def _parts_match(names: tuple[str, ...], parts: tuple[str, ...]) -> bool:
    """Whether path components `names` match glob components `parts` (`**`: any number of
    directories, or, last, any files below)."""
    if not parts:
        return not names
    if parts[0] == "**":
        if len(parts) == 1:
            return bool(names) and not any(n.startswith(".") for n in names)
        return any(_parts_match(names[k:], parts[1:]) for k in range(len(names) + 1)
                   if not any(n.startswith(".") for n in names[:k]))
    return bool(names) and _part_matches(names[0], parts[0]) and _parts_match(names[1:], parts[1:])


def excluded(cfg: InputConfig, path: str) -> bool:
    """Whether an `exclude` glob of the input matches `path` or its file name (the one rule,
    which the importer applies too)."""
    return any(fnmatch.fnmatch(path, ex) or fnmatch.fnmatch(os.path.basename(path), ex) for ex in cfg.exclude)


def real_match(cfg: InputConfig, real: str) -> str | None:
    """The root under which the real path `real` matches one of the input's globs (their fixed
    directories resolved too), or None when it matches none or is excluded."""
    if excluded(cfg, real):
        return None
    for pattern in cfg.paths:
        root, parts = split_glob(pattern)
        root = os.path.realpath(root)
        rel = os.path.relpath(real, root)
        if rel.startswith(os.pardir + os.sep) or rel == os.pardir:
            continue
        if _parts_match(tuple(rel.split(os.sep)), parts):
            return root
    return None


class _Budget(Exception):
    """The walk read `max_entries` entries."""


def _walk(root: str, parts: tuple[str, ...], result: Discovery, max_entries: int) -> Iterator[os.DirEntry[str]]:
    """The entries (of any type) below `root` whose names match `parts`, without following a
    symlinked directory."""
    stack = [(root, 0)]
    done: set[tuple[int, int, int]] = set()  # (dev, ino, part): a directory seen twice is a loop
    while stack:
        directory, i = stack.pop()
        try:
            st = os.stat(directory) if directory == root else os.lstat(directory)
        except OSError:
            continue
        if (st.st_dev, st.st_ino, i) in done:
            continue
        done.add((st.st_dev, st.st_ino, i))
        part, last = parts[i], i == len(parts) - 1
        if part == "**" and not last:
            stack.append((directory, i + 1))  # `**` matches no directory too
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    result.entries += 1
                    if result.entries > max_entries:
                        raise _Budget
                    if part == "**":
                        if entry.name.startswith("."):
                            continue
                        if entry.is_dir(follow_symlinks=False):
                            stack.append((entry.path, i))
                        elif last:
                            yield entry
                    elif _part_matches(entry.name, part):
                        if last:
                            yield entry
                        elif entry.is_dir(follow_symlinks=False):
                            stack.append((entry.path, i + 1))
        except OSError:
            continue  # gone or unreadable: the next scan sees it again


class Finder:
    """Finds an input's files; remembers which symlinks it has reported, to say so once."""

    def __init__(self, input_config: InputConfig, max_entries: int = MAX_WALK_ENTRIES):
        self.input_config = input_config
        self.max_entries = max_entries
        self._reported: set[str] = set()

    def find(self) -> Discovery:
        result = Discovery()
        keys: set[tuple[int, int]] = set()
        try:
            for pattern in self.input_config.paths:
                root, parts = split_glob(pattern)
                walked = _walk(root, parts, result, self.max_entries)
                names = [e for e in walked if not excluded(self.input_config, e.path)]
                for entry in sorted(names, key=lambda e: e.path):
                    found = self._take(entry, root)
                    if found is not None and (found.st.st_dev, found.st.st_ino) not in keys:
                        keys.add((found.st.st_dev, found.st.st_ino))
                        result.found.append(found)
        except _Budget:
            result.complete = False
            self._report("budget", "walking %s read %d directory entries; stopped there, and files not reached "
                         "are not read (narrow the globs)", list(self.input_config.paths), self.max_entries)
        return result

    def _take(self, entry: os.DirEntry[str], root: str) -> Found | None:
        try:
            if entry.is_file(follow_symlinks=False):
                return Found(entry.path, entry.path, root, entry.stat(follow_symlinks=False))
            if not entry.is_symlink():
                return None  # a directory matched by a file glob, a FIFO, a socket, a device
        except OSError:
            return None
        if not self.input_config.follow_symlinks:
            self._report(entry.path, "%s is a symlink: not read (follow_symlinks is off for this input)",
                         entry.path)
            return None
        real = os.path.realpath(entry.path)
        real_root = real_match(self.input_config, real)
        if real_root is None:
            self._report(entry.path, "%s is a symlink to %s, which the input's paths do not match: not read",
                         entry.path, real)
            return None
        try:
            st = os.lstat(real)
        except OSError:
            return None
        return Found(entry.path, real, real_root, st) if stat_mod.S_ISREG(st.st_mode) else None

    def _report(self, what: str, message: str, *args: object) -> None:
        if what not in self._reported:
            self._reported.add(what)
            log.warning(message, *args)
