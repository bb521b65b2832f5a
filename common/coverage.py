"""Byte ranges of a file that are stored, as sorted disjoint `[start, end)` pairs: pure functions
shared by the consumer (which merges each batch's ranges into `coverage`), `opslog verify` and
the web UI (which recompute them from the stored records themselves).

A record covers `[offset, offset + len)` of its file, `len` being the bytes of the line with its
line ending (a line cut at `max_line_bytes` covers only the bytes it kept: the rest is a gap,
whose cause is that cut). Consecutive lines touch (`end == next start`), so a complete file is
one range.

A journal input's records (`file` starting with JOURNAL) count in sequence numbers: `offset` is
the entry's seqnum and `len` how many seqnums it closes, from the one after the entry the input
read before it through its own, `(offset - len, offset]`. Entries the input's filters pass over
are covered by the next one that matched, so a complete journal input is one range too, and a
gap is entries read and not stored, or never read (vacuumed: `skipped` in its heartbeats).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

Range = list[int]  # [start, end) or, in `coverage` documents, [start, end, newest received, oldest received]

TRUNCATED_PREFIX = "line longer than max_line_bytes"  # shipper.records.truncated_error
MAX_RANGES = 4096  # per file document; see `cap`
JOURNAL = "journal:"  # how a journal input's identity starts (a file's is 16 hex digits)


def journal_identity(seqnum_id: str, input_key: str) -> str:
    """The coverage identity of one journal (its seqnum id) as one journald input reads it:
    two inputs with other filters cover the same journal differently."""
    return f"{JOURNAL}{seqnum_id[:32]}:{hashlib.blake2b(input_key.encode(), digest_size=4).hexdigest()}"


def record_start(journal: bool, offset: int, length: int) -> int:
    """Where a record's range starts: a file line's at its offset, a journal entry's `len - 1`
    seqnums before its own (see the module docstring). The range ends `length` later."""
    return offset + 1 - length if journal else offset


def merge(ranges: Iterable[Range]) -> list[Range]:
    """`ranges` (any order, overlapping or touching) as sorted disjoint ranges. Received times
    (third and fourth items, epoch seconds) are kept as the newest and the oldest of the merged ones."""
    out: list[Range] = []
    for item in sorted(ranges):
        if out and item[0] <= out[-1][1]:
            last = out[-1]
            if item[1] > last[1]:
                last[1] = item[1]
            if len(item) > 2 and len(last) > 2 and item[2] > last[2]:
                last[2] = item[2]
            if len(item) > 3 and len(last) > 3 and item[3] < last[3]:
                last[3] = item[3]
        else:
            out.append(list(item))
    return out


def from_records(pairs: Iterable[tuple[int, int]]) -> list[Range]:
    """The ranges covered by records given as (offset, length) in offset order (an index walk):
    one pass, constant memory per range."""
    out: list[Range] = []
    for offset, length in pairs:
        end = offset + length
        if out and offset <= out[-1][1]:
            if end > out[-1][1]:
                out[-1][1] = end
        else:
            out.append([offset, end])
    return out


def gaps(ranges: list[Range]) -> list[list[int]]:
    """The holes between sorted disjoint ranges."""
    return [[ranges[i][1], ranges[i + 1][0]] for i in range(len(ranges) - 1)]


def stored_through(ranges: list[Range]) -> int | None:
    """The end of the first contiguous stored range (None: nothing stored)."""
    return ranges[0][1] if ranges else None


def contains(outer: list[Range], inner: list[Range]) -> bool:
    """True if every range of `inner` lies inside one of `outer` (both sorted and disjoint)."""
    i = 0
    for start, end, *_ in inner:
        while i < len(outer) and outer[i][1] < end:
            i += 1
        if i == len(outer) or outer[i][0] > start:
            return False
    return True


def cap(ranges: list[Range]) -> tuple[list[Range], bool]:
    """At most MAX_RANGES ranges: past it the lowest ones are dropped (True), so a file holed
    everywhere keeps its newest history and a document of bounded size; `opslog verify`
    still sees every hole."""
    if len(ranges) <= MAX_RANGES:
        return ranges, False
    return ranges[-MAX_RANGES:], True


def expire(ranges: list[Range], cutoff: float | None,
           first_stored: int | None = None) -> tuple[list[Range], int | None]:
    """Coverage as the retention left it (`cutoff`, epoch seconds): ranges whose records all passed
    it are dropped, and one that holds some (its oldest received before it) starts at
    `first_stored`, the file's first record still stored. The TTL boundary is no gap.
    Returns the ranges left and where the expired ones ended (None: none expired)."""
    through = None
    if cutoff is None:
        return ranges, None
    while ranges and len(ranges[0]) > 2 and ranges[0][2] < cutoff:
        through = ranges[0][1]
        ranges = ranges[1:]
    if ranges and len(ranges[0]) > 3 and ranges[0][3] < cutoff and first_stored is not None:
        while ranges and ranges[0][1] <= first_stored:
            ranges = ranges[1:]
        if ranges and ranges[0][0] < first_stored:
            through = first_stored
            ranges = [[first_stored, *ranges[0][1:]], *ranges[1:]]
    return ranges, through


def interior_gaps(ranges: list[Range], cuts: Iterable[int], cause: str = "missing") -> list[list]:
    """The holes between stored ranges, each `[start, end, cause]`: `max_line_bytes` where the
    record before it was cut there, else `cause`."""
    cut = set(cuts)
    return [[s, e, "max_line_bytes" if s in cut else cause] for s, e in gaps(ranges)]


def vacuumed(gaps_: list[list], skipped: Iterable[Iterable[int]]) -> list[list]:
    """`gaps_` with the cause `vacuumed` where they meet a span its journal input skipped because
    the journal no longer held it (the heartbeat's `skipped`)."""
    spans = [list(span) for span in skipped]
    return [[s, e, "vacuumed" if any(a < e and s < b for a, b in spans) else cause] for s, e, cause in gaps_]


def tail(stored_end: int, hb: dict | None, now: float, stale_after: float) -> dict:
    """What the newest heartbeat says past the last stored byte: the file's size, what is in flight
    (lag), what is lost for good (a gap: the content was truncated before it was all read), and
    whether the shipper went silent. `now` and the heartbeat's times in epoch seconds."""
    out = {"size": None, "confirmed": None, "state": None, "lag_bytes": 0, "lag_seconds": 0.0,
           "in_flight": None, "tail_gap": None, "silent": False, "last_heartbeat_at": None}
    if hb is None:
        return out
    size, confirmed, state = hb["size"], hb["confirmed"], hb.get("state") or "reading"
    truncated_size = hb.get("truncated_size") or 0
    heard = now - hb["at"]
    out.update(size=max(size, truncated_size), confirmed=confirmed, state=state, last_heartbeat_at=hb["at"])
    ended = state in ("truncated", "deleted")
    if state == "truncated":
        reach = confirmed  # the rest of that content was never read, and never will be
        if truncated_size > max(stored_end, confirmed):
            out["tail_gap"] = [max(stored_end, confirmed), truncated_size, "truncation"]
    else:
        reach = size
        if truncated_size > size and confirmed >= size:  # the copy is read to its end: the overrun is lost
            out["tail_gap"] = [max(stored_end, size), truncated_size, "copytruncate overrun"]
    if reach > stored_end:
        out["in_flight"] = [stored_end, reach]
        out["lag_bytes"] = reach - stored_end
        samples = [s for s in hb.get("sizes") or [] if s[1] > stored_end]
        out["lag_seconds"] = round(max(0.0, now - samples[0][0]) if samples else heard, 1)
    interval = hb.get("interval") or 5.0
    if not ended and heard > 2 * interval + 1:
        # no word from the shipper lately: nothing newer is known to be stored, for at least this long
        out["lag_seconds"] = round(max(out["lag_seconds"], heard), 1)
    out["silent"] = not ended and heard > stale_after
    return out
