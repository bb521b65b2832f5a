"""The one rule for rotated file names: `app.log.1`, `app.log-20240131`, `app.log.2024-01-31.gz`.

What rotation tools append to a log's name: a number (logrotate's `.1`,
`-1`), a date (logrotate's `dateext` `-20240131`, with an hour or a time
after it; `.2024-01-31`, `-2024-01-31T10`; the kubelet's `0.log.20240131-101500`), then a
compression suffix. The
importer uses it to find the input of an old rotated file, the web UI to group
a file with its rotations when it shows the lines around a record.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_ROTATED = re.compile(
    r"^(?P<base>.+?)"
    r"(?P<rotation>\.\d+|[.-]\d{1,3}|[.-]\d{8}(?:-?\d{2,6})?|[.-]\d{4}-\d\d-\d\d(?:[T_.-]?\d{2,6})?)?"
    r"(?P<compression>\.(?:gz|bz2|xz|zst))?$", re.DOTALL)


class RotatedName(NamedTuple):
    base: str         # the name the file had before it was rotated
    rotation: str     # the number or date appended (with its separator), or ""
    compression: str  # `.gz`, `.bz2`, `.xz`, `.zst`, or ""


def rotated_name(path: str) -> RotatedName:
    """`path` taken apart; a name without a rotation suffix is its own base."""
    match = _ROTATED.match(path)
    if match is None:  # only the empty string
        return RotatedName(path, "", "")
    return RotatedName(match["base"], match["rotation"] or "", match["compression"] or "")


def rotation_base(path: str) -> str:
    """The name of the file `path` is a rotation of (itself when it is not one)."""
    return rotated_name(path).base
