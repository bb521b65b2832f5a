"""How much the queries touch: a page costs about what it shows (rollups pick the slice)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from webui_data import make_doc

from webui.queries import Filters, LogReader


@pytest.fixture
def busy_hour(seed, now):
    """3,000 records in 50 minutes: 60 a minute, on two hosts; 1 in 20 of web-02's is an error."""
    docs = []
    for i in range(3000):
        host = "web-01" if i % 2 else "web-02"
        level = "error" if host == "web-02" and i % 40 == 0 else "info"
        docs.append(make_doc(now - timedelta(seconds=i), f"request {i} {'slow' if i % 500 == 7 else 'ok'}",
                             host=host, level=level, offset=i * 50))
    seed(docs)
    return docs


def window(now, **kw):
    return Filters(since=now - timedelta(hours=1), until=now + timedelta(seconds=1), **kw)


def test_newest_page_touches_about_as_many_records_as_it_shows(db, busy_hour, now):
    page = LogReader(db).search(window(now), 50)
    assert [r["id"] for r in page.records] == [d["_id"] for d in busy_hour[:50]]
    assert page.scanned < 250  # a few minutes of rollups and one minute of records, not 3,000


def test_a_selective_filter_picks_the_cheapest_index(db, busy_hour, now):
    page = LogReader(db).search(window(now, host="web-02", levels=("error",)), 20)
    expected = [d["_id"] for d in busy_hour if d["host"] == "web-02" and d.get("level") == "error"][:20]
    assert [r["id"] for r in page.records] == expected
    # 20 errors span 800 s of records: ~14 minutes of rollups plus the errors themselves.
    assert page.scanned < 200


def test_text_search_widens_then_continues_with_a_cursor(db, busy_hour, now):
    reader = LogReader(db, scan_budget=400)
    flt = window(now, q="SLOW")
    found, cursor, partial_pages = [], None, 0
    while True:
        page = reader.search(flt, 10, cursor)
        found += [r["message"] for r in page.records]
        partial_pages += page.searched_to is not None
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert found == [d["message"] for d in busy_hour if "slow" in d["message"]]
    assert partial_pages > 0


def test_without_rollups_slices_grow_blindly_and_still_find_everything(db, busy_hour, now):
    db.rollups.delete_many({})
    page = LogReader(db).search(window(now, host="web-01"), 30)
    assert [r["id"] for r in page.records] == [d["_id"] for d in busy_hour if d["host"] == "web-01"][:30]


def test_records_not_yet_rolled_up_still_show(db, seed, now):
    db.logs.insert_one(make_doc(now, "just arrived"))
    reader = LogReader(db, clock=lambda: now.timestamp())
    assert [r["message"] for r in reader.search(window(now), 10).records] == ["just arrived"]


def test_hour_tables_fill_within_the_budget_and_complete_over_requests(db, seed, now):
    start = (now - timedelta(hours=20)).replace(minute=0, second=0, microsecond=0)
    seed([make_doc(start + timedelta(minutes=10 * i), f"m{i}", offset=i) for i in range(100)])
    reader = LogReader(db)
    flt = Filters(since=start, until=start + timedelta(hours=18))
    first = reader.histogram(flt, timedelta(minutes=15), budget=10)
    assert not first["complete"] and any(b["count"] is None for b in first["buckets"])
    for _ in range(20):
        result = reader.histogram(flt, timedelta(minutes=15), budget=10)
        if result["complete"]:
            break
    assert result["complete"] and sum(b["count"] for b in result["buckets"]) == 100


class _WithTextIndex:
    """The real `logs` collection, but reporting the text index a real MongoDB would have."""

    def __init__(self, logs):
        self._logs = logs

    def index_information(self):
        return {**self._logs.index_information(),
                "message_text": {"key": [("_fts", "text"), ("_ftsx", 1)], "v": 2}}

    def __getattr__(self, name):
        return getattr(self._logs, name)


@pytest.mark.parametrize("word_search", [False, True])
def test_a_text_index_leads_bare_words_only_when_word_search_is_chosen(db, word_search):
    reader = LogReader(db, word_search=word_search)
    reader.handle = dataclasses.replace(reader.handle, logs=_WithTextIndex(reader.handle.logs))
    # whole-word matching would make "time" miss "timeout": substrings stay unless the operator chose words
    assert reader.capabilities().text_index is word_search
