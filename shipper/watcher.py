"""Finding the files an input names: globs (with `**`) minus `exclude` globs."""

from __future__ import annotations

import fnmatch
import glob
import os

from common.config import InputConfig


def matching_files(cfg: InputConfig) -> list[str]:
    """Absolute paths of the regular files matched by `cfg.paths` and not by `cfg.exclude`."""
    found: set[str] = set()
    for pattern in cfg.paths:
        for path in glob.iglob(os.path.expanduser(pattern), recursive=True):
            if os.path.isfile(path):
                found.add(os.path.abspath(path))
    if cfg.exclude:
        found = {p for p in found if not any(fnmatch.fnmatch(p, ex) or fnmatch.fnmatch(os.path.basename(p), ex)
                                             for ex in cfg.exclude)}
    return sorted(found)
