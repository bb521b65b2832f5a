"""The web UI cannot be used to tie up the database: every request's window is bounded, every
time it takes is representable, empty stretches cost one query, and every read carries maxTimeMS.

The app runs against the real database server, through a client of its own whose commands
a pymongo `CommandListener` records, so the tests count what the server was actually asked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from html import unescape
from typing import Any

import pytest
from flask.testing import FlaskClient
from pymongo import MongoClient, monitoring
from webui_data import TOKEN, make_doc

from webui import create_app

FILTERED = ("/api/logs", "/api/histogram", "/api/export")
READS = ("find", "aggregate", "count", "distinct")


class Commands(monitoring.CommandListener):
    """Every command the app's client sent, as (name, collection or None, the command)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any, dict]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.sent.append((event.command_name, event.command.get(event.command_name), dict(event.command)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def on(self, collection: str) -> int:
        return sum(1 for _name, coll, _cmd in self.sent if coll == collection)


@pytest.fixture
def watched(mongo_uri: str, names, db, web_config) -> Iterator[Callable[..., tuple[FlaskClient, Commands]]]:
    """An API client on an app whose database commands are recorded; `retention` is mongo.retention (s)."""
    clients: list[MongoClient] = []

    def build(retention: float | None = None, **webui: Any) -> tuple[FlaskClient, Commands]:
        commands = Commands()
        client: MongoClient = MongoClient(mongo_uri, tz_aware=True, event_listeners=[commands])
        clients.append(client)
        config = web_config(**webui)
        config = replace(config, mongo=replace(config.mongo, retention=retention))
        app = create_app(config, db=client[names.database])
        app.testing = True
        web = app.test_client()
        web.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
        return web, commands

    yield build
    for client in clients:
        client.close()


def recent(now, n: int) -> list[dict[str, Any]]:
    return [make_doc(now - i * timedelta(seconds=5), f"line {i}", offset=i * 100) for i in range(n)]


def test_an_empty_year_costs_a_few_queries_not_one_per_six_hours(watched, seed, now):
    seed(recent(now, 20))
    web, commands = watched(retention=400 * 86400.0)
    response = web.get("/api/logs?since=730d&until=365d")
    assert response.status_code == 200 and response.get_json()["records"] == []
    assert commands.on("rollups") <= 3 and len(commands.sent) <= 5, commands.sent

    commands.sent.clear()
    empty_year = web.get("/api/histogram?since=730d&until=365d").get_json()
    assert empty_year["complete"] and {b["count"] for b in empty_year["buckets"]} == {0}
    assert commands.on("rollups") <= 3, commands.sent

    commands.sent.clear()
    last_year = web.get("/api/histogram?since=365d").get_json()
    assert last_year["complete"] and sum(b["count"] for b in last_year["buckets"]) == 20
    assert commands.on("rollups") <= 6, commands.sent


def test_a_long_text_search_over_mostly_empty_years_stays_a_few_queries(watched, seed, now):
    seed(recent(now, 20) + [make_doc(now - timedelta(days=3000), "an old line", offset=10_000)])
    web, commands = watched(retention=25 * 366 * 86400.0)
    response = web.get("/api/logs?since=9125d&q=zzz")
    assert response.status_code == 200 and response.get_json() == {"records": [], "next_cursor": None}
    assert len(commands.sent) <= 30, commands.sent


@pytest.mark.parametrize("path", FILTERED)
def test_a_window_wider_than_the_retention_or_92_days_is_a_400_naming_since(watched, path):
    web, _ = watched()
    too_wide = web.get(f"{path}?since=93d")
    assert too_wide.status_code == 400 and too_wide.get_json()["param"] == "since"
    assert "92 days" in too_wide.get_json()["error"]
    assert web.get(f"{path}?since=91d").status_code == 200

    web, _ = watched(retention=7 * 86400.0)
    assert web.get(f"{path}?since=2026-01-01T00:00:00Z&until=2026-01-09T00:00:00Z").get_json()["param"] == "since"
    assert web.get(f"{path}?since=2026-01-01T00:00:00Z&until=2026-01-07T00:00:00Z").status_code == 200


@pytest.mark.parametrize("query, param", [
    ("since=0001-01-01T00:00:00%2B14:00", "since"),
    ("until=0001-01-01T00:00:00.000001Z", "until"),
    ("since=9999-12-31T00:00:00Z&until=9999-12-31T23:59:59.999999Z", "until"),
    ("since=1969-12-31T23:00:00Z&until=1970-01-01T01:00:00Z", "since"),
    ("since=99999999999d", "since"),
])
def test_an_unrepresentable_time_is_a_400_naming_it(watched, query, param):
    web, _ = watched()
    for path in FILTERED:
        response = web.get(f"{path}?{query}")
        assert response.status_code == 400, (path, query, response.get_data()[:300])
        assert response.get_json()["param"] == param and response.get_json()["error"]


@pytest.mark.parametrize("cursor", [
    "MjUzNDAyMzAwNzk5OTk5LmFiYw",    # 253402300799999.abc: 9999-12-31T23:59:59.999Z, a step from year 10000
    "LTYyMTM1NTk2ODAwMDAwLmFiYw",    # -62135596800000.abc: 0001-01-01
])
def test_a_cursor_holding_an_unrepresentable_time_is_a_400_naming_it(watched, cursor):
    web, _ = watched()
    for window in ("", "&since=2000-01-01T00:00:00Z&until=2000-01-02T00:00:00Z"):
        response = web.get(f"/api/logs?cursor={cursor}{window}")
        assert response.status_code == 400 and response.get_json()["param"] == "cursor"


def test_every_read_the_ui_sends_carries_max_time_ms(watched, seed, now):
    seed(recent(now, 30))
    web, commands = watched()  # webui.query_timeout's default, 10 s
    rid = web.get("/api/logs").get_json()["records"][5]["id"]
    for url in ("/api/logs?q=line+1", "/api/logs?host=web-01&level=info", "/api/histogram",
                "/api/histogram?since=24h&q=line", f"/api/logs/{rid}/context?before=3&after=3", "/api/hosts",
                "/api/logs?q=message:/line%20%5Cd%2B/", "/api/histogram?since=24h&q=n%3E%3D5", "/api/fields",
                "/api/hosts/web-01", "/api/hosts/web-01/calendar", "/api/export?format=csv", "/healthz"):
        assert web.get(url).status_code == 200, url
    reads = [cmd for name, _coll, cmd in commands.sent if name in READS]
    assert len(reads) >= 10
    assert [cmd for cmd in reads if not 0 < cmd.get("maxTimeMS", 0) <= 10_000] == []


def test_a_read_past_the_query_timeout_is_a_503_saying_so_not_a_500(watched, seed, now):
    seed([make_doc(now - i * timedelta(milliseconds=500), f"request {i} served", offset=i * 100)
          for i in range(3000)])
    web, _ = watched(query_timeout=0.02)
    for url in ("/api/logs?since=30m&q=zzz", "/api/histogram?since=30m&q=zzz", "/api/export?since=30m&q=zzz"):
        response = web.get(url)
        assert response.status_code == 503, (url, response.status_code)
        assert "narrow the time window" in response.get_json()["error"]
    page = web.get("/?since=30m&q=zzz")
    assert page.status_code == 503 and b"narrow the time window" in page.get_data()


def test_the_search_page_offers_only_quick_windows_the_server_accepts(watched):
    web, _ = watched(retention=86400.0)
    html = web.get("/").get_data(as_text=True)
    quick = re.search(r'<span class="quick">(.*?)</span>', html).group(1)
    links = [unescape(href) for href in re.findall(r'href="([^"]+)"', quick)]
    assert [link.rsplit("since=", 1)[1] for link in links] == ["15m", "1h", "24h"]
    assert [web.get(link).status_code for link in links] == [200, 200, 200]
