"""`opslog import`'s plan: which files, each with the input that says how to read it.

A file takes the first shipper input whose globs match its path, or its name
without a rotation suffix (common.rotation); the shipper's rules for symlinks,
regular files and hard links hold (shipper.discovery). A gzip-compressed
rotation is read through a decompressed temporary copy (`readable`).
"""

from __future__ import annotations

import errno
import fnmatch
import gzip
import logging
import os
import shutil
import stat as stat_mod
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

from common.config import Config, InputConfig
from common.errors import OpslogError
from common.rotation import rotated_name
from shipper.discovery import excluded
from shipper.tailer import open_regular

log = logging.getLogger(__name__)


class BackfillError(OpslogError):
    """The files cannot be imported as asked; `problems` names each one."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True)
class ImportFile:
    path: str
    input: InputConfig
    size: int  # bytes to read: uncompressed (as gzip records it) for a .gz file
    real: str = ""  # where to read it, when `path` is a symlink its input follows

    @property
    def compressed(self) -> bool:
        return self.path.endswith(".gz")


def plan(config: Config, paths: list[str], app: str | None = None, fmt: str | None = None) -> list[ImportFile]:
    """The files to import, each with the input that says how to parse it.

    With `app`, every file is read as that app in `fmt` (default plain).
    Otherwise each file takes the first shipper input whose globs match its
    path, with a rotation suffix (`.1`, `-20240131`, `.gz`) removed if need be.
    Raises BackfillError naming every file that cannot be imported.

    The shipper's rules hold (shipper.discovery): a symlink is taken only when its
    input says `follow_symlinks` and its real path takes the same input, only
    regular files are read, and a file named twice (hard links) is imported once."""
    problems: list[str] = []
    files: list[ImportFile] = []
    seen: dict[tuple[int, int], str] = {}
    for given in paths:
        path = os.path.abspath(given)
        try:
            st = os.lstat(path)
        except OSError:
            st = None
        if app is not None:
            inp: InputConfig | None = InputConfig(paths=(path,), app=app, format=fmt or "plain")
        else:
            inp = input_for(config, path)
        real = ""
        if st is not None and stat_mod.S_ISLNK(st.st_mode):
            real = os.path.realpath(path)
            if inp is None or not inp.follow_symlinks or input_for(config, real) is not inp:
                problems.append(f"{given}: a symlink, and no input with follow_symlinks matches both it and "
                                f"its target {real}; name the target itself")
                continue
            try:
                st = os.lstat(real)
            except OSError:
                st = None
        if st is None or not stat_mod.S_ISREG(st.st_mode):
            problems.append(f"{given}: not a readable regular file")
            continue
        if inp is None:
            problems.append(f"{given}: no shipper input of the config matches it; name one with --app "
                            "(and --format)")
            continue
        if (st.st_dev, st.st_ino) in seen:
            log.info("%s is the same file as %s: imported once", given, seen[st.st_dev, st.st_ino])
            continue
        seen[st.st_dev, st.st_ino] = given
        try:
            size = _gzip_size(real or path) if path.endswith(".gz") else st.st_size
        except OSError as exc:
            problems.append(f"{given}: cannot read: {exc.strerror or exc}")
            continue
        files.append(ImportFile(path, inp, size, real))
    if problems:
        raise BackfillError(problems)
    return files


def input_for(config: Config, path: str) -> InputConfig | None:
    """The first shipper input whose globs match `path`, or its name without a rotation suffix."""
    name = rotated_name(path)
    unrotated = name.base if name.compression in ("", ".gz") else path  # gzip is all `_readable` undoes
    for inp in config.shipper.inputs:
        for candidate in dict.fromkeys((path, unrotated)):
            if any(fnmatch.fnmatch(candidate, os.path.abspath(os.path.expanduser(p))) for p in inp.paths) and \
                    not excluded(inp, candidate):
                return inp
    return None


def _gzip_size(path: str) -> int:
    """The uncompressed size gzip records in its trailer (modulo 4 GiB): good enough for an ETA."""
    with _open_regular(path) as fh:
        fh.seek(-4, os.SEEK_END)
        return int.from_bytes(fh.read(4), "little")


def _open_regular(path: str) -> BinaryIO:
    """`path` opened as the tailer opens files: no symlink, no FIFO (which would block)."""
    fd = open_regular(path)
    if fd is None:
        raise OSError(errno.EINVAL, "not a regular file (or a symlink)", path)
    return os.fdopen(fd, "rb")


@contextmanager
def readable(file: ImportFile, workdir: str) -> Iterator[str]:
    """A plain file with the content of `file`: itself, or its decompressed copy."""
    if not file.compressed:
        yield file.real or file.path
        return
    fd, temp = tempfile.mkstemp(prefix="opslog-import-", dir=workdir)
    try:
        with _open_regular(file.real or file.path) as raw, gzip.GzipFile(fileobj=raw, mode="rb") as src, \
                os.fdopen(fd, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        yield temp
    finally:
        os.unlink(temp)
