"""Query-string validation: request args -> the query layer's `Filters` and `Cursor`
(`webui.queries.filters`), or `ParamError` naming the culprit; and back (`query_args`, for links).

Everything the user types stays a plain value here (a string, a datetime, an
int); `queries` builds the MongoDB filter from those values, so no parameter can
ever become an operator or an unescaped regex.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from common.durations import parse_duration
from common.query import QueryError
from common.record import LEVELS
from webui.queries.filters import EPOCH, NO_LEVEL, Cursor, Filters
from webui.queries.plan import plan_text

__all__ = ["Cursor", "Filters", "ParamError", "iso", "parse_cursor", "parse_filters", "query_args"]
LEVEL_CHOICES = LEVELS + (NO_LEVEL,)
MAX_TEXT = 500
MAX_NAME = 4096
DEFAULT_MAX_WINDOW = timedelta(days=92)
# Times the UI reasons about: cursors and the rollups' grid count from the Unix epoch, and a
# window, its buckets and its cursor steps must stay far from datetime's year-9999 edge.
MIN_TIME = EPOCH
MAX_TIME = datetime(9000, 1, 1, tzinfo=UTC)
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ParamError(ValueError):
    """A request parameter that cannot be used; the API answers 400 naming `param` (and, for `q`,
    the 0-based character `position` where the query goes wrong)."""

    def __init__(self, param: str, error: str, position: int | None = None):
        self.param, self.error, self.position = param, error, position
        super().__init__(f"{param}: {error}")


def iso(dt: datetime) -> str:
    """ISO 8601 UTC with milliseconds and a Z, the API's one time format."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def query_args(flt: Filters, absolute: bool = False, **extra: object) -> list[tuple[str, str]]:
    """`flt` as query-string pairs, for links and permalinks (the inverse of `parse_filters`)."""
    args: list[tuple[str, str]] = []
    for key in ("q", "host", "app", "source"):
        value = getattr(flt, key)
        if value is not None:
            args.append((key, value))
    args.extend(("level", lv) for lv in flt.levels)
    if absolute:
        args += [("since", iso(flt.since)), ("until", iso(flt.until))]
    args.extend((k, str(v)) for k, v in extra.items() if v is not None)
    return args


def max_window(retention: float | None) -> timedelta:
    """The widest window a request may ask for: the retention (older records are gone), else 92 days."""
    return timedelta(seconds=retention) if retention else DEFAULT_MAX_WINDOW


def parse_time(value: str, now: datetime, param: str) -> datetime:
    """`now`, a relative duration back from now (`15m`, `2h`, `7d`), or an ISO 8601 time (UTC if naive)."""
    text = value.strip()
    if text == "now":
        return now
    if text and text[-1] in "smhdw" and text[0].isdigit():
        try:
            return _representable(now - timedelta(seconds=parse_duration(text)), param)
        except (ValueError, OverflowError):
            raise ParamError(param, f"not a duration or a time: {value[:40]!r}") from None
    try:
        dt = datetime.fromisoformat(text)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        dt = dt.astimezone(UTC)  # 0001-01-01T00:00:00+14:00 is before year 1 in UTC: OverflowError
    except (ValueError, OverflowError):
        raise ParamError(param, f"not a time (use 15m, 2h, 7d or ISO 8601, 2026-01-31T12:00:00Z): "
                                f"{value[:40]!r}") from None
    return _representable(dt, param)


def _representable(dt: datetime, param: str) -> datetime:
    if not MIN_TIME <= dt <= MAX_TIME:
        raise ParamError(param, f"must be between {iso(MIN_TIME)} and {iso(MAX_TIME)}")
    return dt


def _name(args: Mapping[str, str], key: str, max_len: int = MAX_NAME) -> str | None:
    value = args.get(key)
    if value is None or value == "":
        return None
    if len(value) > max_len or _CONTROL.search(value):
        raise ParamError(key, f"must be at most {max_len} printable characters")
    return value


def parse_levels(values: list[str]) -> tuple[str, ...]:
    levels: list[str] = []
    for raw in values:
        for part in raw.split(","):
            part = part.strip().lower()
            if not part:
                continue
            if part not in LEVEL_CHOICES:
                raise ParamError("level", f"must be among {', '.join(LEVEL_CHOICES)}, got {part[:40]!r}")
            if part not in levels:
                levels.append(part)
    return tuple(lv for lv in LEVEL_CHOICES if lv in levels)


def parse_filters(args, default_window: float, now: datetime | None = None,
                  widest: timedelta = DEFAULT_MAX_WINDOW) -> Filters:
    """`args` is a werkzeug MultiDict (request.args); the window defaults to the last `default_window` s.

    A window wider than `widest` (see `max_window`) is refused, not cut: a silently
    narrowed search would say "nothing found" about time it never looked at.
    """
    now = now or datetime.now(UTC)
    until = parse_time(args["until"], now, "until") if args.get("until") else now
    if args.get("since"):
        since = parse_time(args["since"], now, "since")
    else:
        since = _representable(until - min(timedelta(seconds=default_window), widest), "until")
    if since >= until:
        raise ParamError("since", "must be before until")
    if until - since > widest:
        raise ParamError("since", f"the window from since to until spans {_days(until - since)}, more than the "
                                  f"{_days(widest)} this server allows (mongo.retention, or 92 days without one)")
    q = args.get("q") or None
    if q is not None and (len(q) > MAX_TEXT or "\x00" in q):
        raise ParamError("q", f"must be at most {MAX_TEXT} characters", min(len(q), MAX_TEXT))
    if q is not None:
        parse_query(q)
    return Filters(since=since, until=until, host=_name(args, "host", 255), app=_name(args, "app", 255),
                   source=_name(args, "source"), levels=parse_levels(args.getlist("level")), q=q)


def parse_query(q: str) -> None:
    """Check `q` in the query language (README, "Query language"); the reads plan it again (remembered)."""
    try:
        plan_text(q)
    except QueryError as exc:
        raise ParamError("q", exc.message, exc.position) from None


def _days(span: timedelta) -> str:
    days, hours = span / timedelta(days=1), span / timedelta(hours=1)
    return f"{round(days, 1):g} days" if days >= 2 else f"{round(hours, 1):g} hours"


def parse_int(args: Mapping[str, str], key: str, default: int, maximum: int, minimum: int = 1) -> int:
    """An integer parameter; values above `maximum` are capped, not refused."""
    raw = args.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ParamError(key, f"must be an integer, got {raw[:40]!r}") from None
    if value < minimum:
        raise ParamError(key, f"must be at least {minimum}")
    return min(value, maximum)


def parse_cursor(args: Mapping[str, str]) -> Cursor | None:
    raw = args.get("cursor")
    if not raw:
        return None
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("ascii")
        ms, _, rid = text.partition(".")
        ts = EPOCH + timedelta(milliseconds=int(ms))
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError, OSError):
        raise ParamError("cursor", "is not a cursor this API returned") from None
    if (rid and not _ID.match(rid)) or not MIN_TIME <= ts <= MAX_TIME:
        raise ParamError("cursor", "is not a cursor this API returned")
    return Cursor(ts=ts, id=rid)


def parse_record_id(value: str) -> str:
    if not _ID.match(value):
        raise ParamError("id", "is not a record id")
    return value


def parse_choice(args: Mapping[str, str], key: str, choices: tuple[str, ...], default: str) -> str:
    value = args.get(key) or default
    if value not in choices:
        raise ParamError(key, f"must be one of {', '.join(choices)}")
    return value
