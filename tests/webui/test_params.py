"""Parameter parsing: relative and absolute times, levels, cursors."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from werkzeug.datastructures import MultiDict

from webui.params import Cursor, ParamError, iso, parse_cursor, parse_filters, parse_time

NOW = datetime(2026, 11, 26, 12, 0, 0, 123000, tzinfo=UTC)


@pytest.mark.parametrize("text, expected", [
    ("15m", NOW - timedelta(minutes=15)), ("2h", NOW - timedelta(hours=2)), ("7d", NOW - timedelta(days=7)),
    ("90s", NOW - timedelta(seconds=90)), ("now", NOW),
    ("2026-11-25T08:30:00Z", datetime(2026, 11, 25, 8, 30, tzinfo=UTC)),
    ("2026-11-25T08:30:00+02:00", datetime(2026, 11, 25, 6, 30, tzinfo=UTC)),
    ("2026-11-25T08:30", datetime(2026, 11, 25, 8, 30, tzinfo=UTC)),
    ("2026-11-25", datetime(2026, 11, 25, tzinfo=UTC)),
])
def test_times_are_relative_durations_or_iso(text, expected):
    assert parse_time(text, NOW, "since") == expected


def test_the_window_defaults_to_the_configured_span_before_until():
    flt = parse_filters(MultiDict(), 3600, now=NOW)
    assert (flt.since, flt.until) == (NOW - timedelta(hours=1), NOW)
    flt = parse_filters(MultiDict({"until": "1h"}), 600, now=NOW)
    assert flt.since == NOW - timedelta(hours=1, minutes=10)


def test_levels_come_comma_separated_or_repeated_in_a_stable_order():
    flt = parse_filters(MultiDict([("level", "ERROR,info"), ("level", "critical"), ("level", "none")]), 3600, NOW)
    assert flt.levels == ("info", "error", "critical", "none")


def test_a_cursor_round_trips_and_rounds_bare_times_up():
    exact = Cursor(datetime(2026, 11, 26, 11, 59, 59, 999000, tzinfo=UTC), "0123456789abcdef01234567")
    assert parse_cursor({"cursor": exact.encode()}) == exact
    bare = Cursor(datetime(2026, 11, 26, 11, 59, 59, 999001, tzinfo=UTC))
    assert parse_cursor({"cursor": bare.encode()}).ts == datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_user_text_stays_a_plain_value():
    flt = parse_filters(MultiDict({"q": '"{\\"$where\\": 1}"', "host": "$gt"}), 3600, NOW)
    assert flt.q == '"{\\"$where\\": 1}"' and flt.host == "$gt"
    assert flt.plan.match == {"message": {"$regex": re.escape('{"$where": 1}'), "$options": "i"}}


def test_bad_values_name_their_parameter():
    with pytest.raises(ParamError) as caught:
        parse_filters(MultiDict({"since": "5m", "until": "10m"}), 3600, NOW)
    assert caught.value.param == "since"
    with pytest.raises(ParamError) as caught:
        parse_time("99999999d", NOW, "until")
    assert caught.value.param == "until"


def test_iso_is_utc_with_milliseconds_and_z():
    assert iso(NOW) == "2026-11-26T12:00:00.123Z"
    assert iso(datetime(2026, 1, 1)) == "2026-01-01T00:00:00.000Z"


@pytest.mark.parametrize("args, param", [
    ({"since": "0001-01-01T00:00:00+14:00"}, "since"),   # before year 1 once in UTC
    ({"until": "0001-01-01T00:00:00.000001Z"}, "until"),  # the default window would start before year 1
    ({"since": "1969-12-31T23:59:59Z"}, "since"),
    ({"until": "9999-12-31T23:59:59Z"}, "until"),
])
def test_a_time_outside_what_the_ui_can_represent_names_its_parameter(args, param):
    with pytest.raises(ParamError) as info:
        parse_filters(MultiDict(args), 3600, NOW)
    assert info.value.param == param


def test_a_window_wider_than_allowed_is_refused_and_the_default_one_shrinks_to_fit():
    with pytest.raises(ParamError) as info:
        parse_filters(MultiDict({"since": "8d"}), 3600, NOW, widest=timedelta(days=7))
    assert info.value.param == "since" and "7 days" in info.value.error
    week = parse_filters(MultiDict({"since": "7d"}), 3600, NOW, widest=timedelta(days=7))
    assert week.since == NOW - timedelta(days=7)
    assert parse_filters(MultiDict(), 86400, NOW, widest=timedelta(hours=2)).since == NOW - timedelta(hours=2)
