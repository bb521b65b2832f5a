"""Container log files: the runtime's framing taken off, partial lines joined.

Two framings, both one framed line per file line:

- `cri` (containerd, CRI-O): `2026-11-30T10:00:00.123456789Z stdout F message`,
  where the tag `P` marks a partial line continued by the next ones and `F` the
  last part (the runtimes split lines at 16 KiB);
- `docker` (json-file): `{"log": "message\\n", "stream": "stdout", "time": "..."}`,
  where a `log` without its trailing newline is partial.

`ContainerFrames` sits between the tailer and the records, like Multiline: it
turns file lines into content lines, the parts of one line joined. A joined
line keeps the offset of its first part and ends where its last part ends, so
the file's confirmed offset never passes a part of a line still being joined:
a shipper killed between the parts reads them all again and makes the same
record (same offset, same content, same id). A line holds at most
`max_line_bytes`; parts past that only move its end, and it is flagged
truncated, as an over-long file line is.

Each content line carries a `Frame` (runtime time, stream, or why the file
line was not a frame). A file line that is not a frame is kept whole, with
the error, and is stored raw with `parse_error`.

Kubernetes names its log files after what they hold, and `k8s_metadata` reads
namespace, pod and container back from either path shape:
`/var/log/pods/<namespace>_<pod>_<uid>/<container>/<N>.log[.<rotation stamp>]`
and the `/var/log/containers/<pod>_<namespace>_<container>-<id>.log` symlinks.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson

from common.config import InputConfig
from shipper.lines import Frame, Line

FORMATS = ("cri", "docker")


# A decoder: one file line -> (content, partial, frame)
Decoded = tuple[bytes, bool, Frame]

_STAMP = re.compile(rb"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:?\d\d)")


@lru_cache(maxsize=4096)
def _second(second: bytes, zone: bytes) -> float | None:
    try:
        return datetime.fromisoformat((second + zone).decode()).timestamp()
    except ValueError:
        return None


def parse_time(stamp: bytes) -> float | None:
    """An RFC 3339 time with up to nanoseconds, as the runtimes write it; None if it is not one.
    Each second is converted once (`_second`): a busy container repeats it on many lines."""
    if len(stamp) == 30 and stamp[29:] == b"Z" and stamp[19:20] == b".":  # containerd's own layout
        base = _second(stamp[:19], b"Z")
        fraction = stamp[20:29]
        if base is not None and fraction.isdigit():
            return base + int(fraction) / 1e9
    match = _STAMP.fullmatch(stamp)
    if match is None:
        return None
    base = _second(match[1], match[3])
    if base is None or match[2] is None:
        return base
    return base + int(match[2]) / 10 ** len(match[2])


_STREAMS = {b"stdout": "stdout", b"stderr": "stderr"}


def decode_cri(raw: bytes) -> Decoded:
    parts = raw.split(b" ", 3)
    if len(parts) >= 3:
        stamp, stream, tag = parts[0], parts[1], parts[2]
        ts = parse_time(stamp)
        name = _STREAMS.get(stream)
        if ts is not None and name is not None and tag[:1] in (b"F", b"P"):
            return (parts[3] if len(parts) == 4 else b""), tag[:1] == b"P", Frame(ts, name, None)
    return raw, False, Frame(None, None, "not a CRI log line (time stream F|P message)")


def decode_docker(raw: bytes) -> Decoded:
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        obj = None
    log = obj.get("log") if type(obj) is dict else None
    if type(log) is not str:
        return raw, False, Frame(None, None, "not a docker json-file line ({\"log\": ..., \"stream\": ...})")
    stamp = obj.get("time")
    stream = obj.get("stream")
    frame = Frame(parse_time(stamp.encode()) if type(stamp) is str else None,
                  stream if type(stream) is str else None, None)
    if log.endswith("\n"):
        return log[:-1].encode(), False, frame
    return log.encode(), True, frame


_DECODERS = {"cri": decode_cri, "docker": decode_docker}

# Namespaces and pod names are DNS names (no `_`); the container id is 64 hex digits.
_POD_DIR = re.compile(r"/(?P<namespace>[^/_]+)_(?P<pod>[^/_]+)_[^/_]+/(?P<container>[^/]+)/\d+\.log(?:\.[^/]*)?$")
_CONTAINER_LINK = re.compile(r"/(?P<pod>[^/_]+)_(?P<namespace>[^/_]+)_(?P<container>[^/]+)-[0-9a-f]{64}\.log$")


def k8s_metadata(path: str) -> dict[str, str] | None:
    """{namespace, pod, container} from a Kubernetes log path (either shape), else None."""
    match = _POD_DIR.search(path) or _CONTAINER_LINK.search(path)
    if match is None:
        return None
    return {"namespace": match["namespace"], "pod": match["pod"], "container": match["container"]}


class ContainerFrames:
    """The framing stage of one container log file (see the module docstring)."""

    def __init__(self, cfg: InputConfig, path: str):
        self.decode = _DECODERS[cfg.format]
        self.max_bytes = cfg.max_line_bytes
        k8s = k8s_metadata(path)
        # the fields every line of this file shares; a record's own are added to a copy
        self.shared: dict[str, Any] = {"k8s": k8s} if k8s else {}
        self.app = cfg.app or (k8s["container"] if k8s else cfg.format)
        self.reset()

    def reset(self) -> None:
        """Forget a line being joined (its parts are read again from the confirmed offset)."""
        self.first: Line | None = None   # the first part of the line being joined
        self.frame: Frame | None = None  # and its frame
        self.stream: str | None = None
        self.end = 0                     # where its last part so far ends
        self.parts: list[bytes] = []
        self.held = 0
        self.truncated = False

    def feed(self, lines: list[Line]) -> list[Line]:
        """The complete content lines among what `lines` adds."""
        out: list[Line] = []
        decode = self.decode
        for line in lines:
            content, partial, frame = decode(line.raw)
            if self.first is not None and (frame.error is not None or frame.stream != self.stream):
                # the other stream's lines can come between the parts of one: the parts so far
                # become a line of their own rather than mix two streams
                out.append(self._join())
            if self.first is None and (not partial or frame.error is not None):
                out.append(Line(line.offset, line.end, content, line.truncated, frame))  # a line in one part
                continue
            if self.first is None:
                self.first, self.frame, self.stream = line, frame, frame.stream
            self._hold(content, line.truncated)
            self.end = line.end
            if not partial:
                out.append(self._join())
        return out

    def flush(self) -> list[Line]:
        """The line being joined, as it is (its file is done: rotated away, deleted, idle)."""
        return [self._join()] if self.first is not None else []

    def _hold(self, content: bytes, truncated: bool) -> None:
        room = self.max_bytes - self.held
        if len(content) > room:
            content, truncated = content[:room], True
        if content:
            self.parts.append(content)
            self.held += len(content)
        self.truncated = self.truncated or truncated

    def _join(self) -> Line:
        assert self.first is not None
        line = Line(self.first.offset, self.end, b"".join(self.parts), self.truncated, self.frame)
        self.reset()
        return line

    def fields(self, frame: Frame | None, own: dict[str, Any]) -> dict[str, Any]:
        """A record's fields: what its content parsed into, its stream, the file's k8s names."""
        fields = {**own, **self.shared} if own else dict(self.shared)
        if frame is not None and frame.stream is not None:
            fields["stream"] = frame.stream
        return fields


def container_frames(cfg: InputConfig, path: str) -> ContainerFrames | None:
    """The framing stage for a file of this input, or None when its format has none."""
    return ContainerFrames(cfg, path) if cfg.format in _DECODERS else None
