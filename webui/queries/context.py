"""The lines around a record in its file, in file order.

The (host, source, offset) index is walked in growing byte bands, following the
byte-length chain of lines, so records of other files that once had the same
path (offsets restart at 0 after rotation) do not leak in. Journal records
(`source` journal or journal:<unit>) have the entry's seqnum as their offset:
their neighbours are the nearest seqnums of the same source.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from common.rotation import rotation_base
from webui.queries.logs import RECORD_FIELDS, to_record

if TYPE_CHECKING:
    from webui.queries.handle import ReadHandle

def lines_around(db: ReadHandle, anchor: dict[str, Any], before: int, after: int) -> list[dict[str, Any]]:
    if is_journal(anchor["source"]):
        return _entries_around(db, anchor, before, after)
    family = _rotation_family(db, anchor["host"], anchor["source"])
    older = _walk(db, anchor, family, before, -1)
    newer = _walk(db, anchor, family, after, +1)
    return older[::-1] + [anchor] + newer


def is_journal(source: str) -> bool:
    """A record of a journald input (shipper.journals): `journal` or `journal:<unit>`."""
    return source == "journal" or source.startswith("journal:")


def _entries_around(db: ReadHandle, anchor: dict[str, Any], before: int, after: int) -> list[dict[str, Any]]:
    """A journal's records: their offset is the entry's seqnum, and a unit's entries interleave with
    other units', so the neighbours are the nearest seqnums of the same host and source."""
    where = {"host": anchor["host"], "source": anchor["source"]}
    older = db.logs.find({**where, "offset": {"$lt": anchor["offset"]}}, RECORD_FIELDS).sort("offset", -1)
    newer = db.logs.find({**where, "offset": {"$gt": anchor["offset"]}}, RECORD_FIELDS).sort("offset", 1)
    return ([to_record(d) for d in older.limit(before)][::-1] if before else []) + [anchor] + (
        [to_record(d) for d in newer.limit(after)] if after else [])


def _rotation_family(db: ReadHandle, host: str, source: str) -> list[str]:
    """The anchor's path and its rotated names (app.log, app.log.1, app.log-20260101) seen on that host."""
    base = rotation_base(source)
    doc = db.hosts.find_one({"_id": host}, {"sources": 1}) or {}
    known = [s for s in doc.get("sources") or [] if isinstance(s, str)]
    if base != source and base not in known:
        return [source]
    family = [s for s in known if rotation_base(s) == base]
    return sorted(set(family) | {source})[:16]


def _blen(rec: dict[str, Any]) -> int:
    return len(rec["message"].encode("utf-8", "surrogatepass"))


def _neighbour(cur: dict[str, Any], pool: list[dict[str, Any]], direction: int) -> dict[str, Any] | None:
    """The line next to `cur` in its file: the one whose byte length chains exactly, else the nearest plausible."""
    def span(line: dict[str, Any]) -> tuple[int, int]:
        size, inner = _blen(line), line["message"].count("\n")
        return size, size + 2 + inner  # LF, CRLF, CRLF inside a multiline event

    best, best_rank = None, None
    for rec in pool:
        gap = (rec["offset"] - cur["offset"]) * direction
        size, widest = span(cur if direction > 0 else rec)
        if not 1 <= gap <= widest:
            continue
        exact = gap in (size + 1, size + 2, widest)
        rank = (not exact, gap, abs((rec["ts"] - cur["ts"]).total_seconds()))
        if best_rank is None or rank < best_rank:
            best, best_rank = rec, rank
    return best


def _walk(db: ReadHandle, anchor: dict[str, Any], family: list[str], n: int, direction: int,
          max_docs: int = 20_000, max_reach: int = 8 << 20) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    pool: list[dict[str, Any]] = []
    cur, edge, width, fetched = anchor, anchor["offset"], 256 * (n + 4), 0
    while len(out) < n:
        nxt = _neighbour(cur, pool, direction)
        if nxt is not None:
            out.append(nxt)
            pool.remove(nxt)
            cur = nxt
            continue
        if direction > 0 and edge >= cur["offset"] + _blen(cur) + 2 + cur["message"].count("\n"):
            break  # the whole span where a next line could start was fetched: the file ends here
        if direction < 0 and edge <= 0:
            break
        if fetched >= max_docs or abs(edge - anchor["offset"]) >= max_reach:
            break
        if direction > 0:
            band = {"$gt": edge, "$lte": edge + width}
            edge += width
        else:
            band = {"$gte": max(0, edge - width), "$lt": edge}
            edge = max(0, edge - width)
        width *= 4
        for source in family:
            for doc in db.logs.find({"host": anchor["host"], "source": source, "offset": band}, RECORD_FIELDS):
                if doc["_id"] != anchor["id"]:
                    pool.append(to_record(doc))
                fetched += 1
    return out
