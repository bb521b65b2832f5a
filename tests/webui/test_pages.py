"""HTML pages: they render the same data as the API, escaped, with every state in the URL."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
from webui_data import file_lines, make_doc

XSS = ["<script>alert('x')</script>", '"><img src=x onerror=alert(1)>', "' onmouseover='alert(1)",
       "</textarea><svg onload=alert(1)>"]


@pytest.fixture
def hostile(seed, now):
    docs = [make_doc(now - timedelta(seconds=i), f"payload {p}", offset=i, host=p if i == 1 else "web-01",
                     app=p if i == 2 else "nginx", source=f"/var/log/{p}", fields={"user": p, p: "v"},
                     parse_error=p if i == 3 else None)
            for i, p in enumerate(XSS)]
    for d in docs:
        if d["parse_error"] is None:
            del d["parse_error"]
    seed(docs)
    return docs


class _Elements(HTMLParser):
    """Every element and attribute as a browser would build them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def assert_escaped(html: str) -> None:
    """No payload became markup: no handler attributes, no script but ours, no injected elements."""
    parser = _Elements()
    parser.feed(html)
    for tag, attrs in parser.tags:
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        assert tag not in ("img", "svg", "iframe", "object", "textarea"), (tag, attrs)
        if tag == "script":
            # our own scripts only (opslog.js, and a page's own file such as searches.js): no inline code
            assert re.fullmatch(r"/static/[a-z0-9_-]+\.js", attrs.get("src") or ""), attrs
    for payload in XSS:
        assert payload not in html, payload


@pytest.mark.parametrize("path", ["/", "/?q=%22%3Cscript%3E%22", "/?q=onerror", "/tail?q=%22%3Cscript%3E%22",
                                  "/hosts", "/export?q=%22%5C%22%3E%3Cimg%22"])
def test_log_text_is_escaped_in_every_page(user, hostile, path):
    response = user.get(path)
    assert response.status_code == 200
    assert_escaped(response.get_data(as_text=True))


@pytest.mark.parametrize("path", ["/?q=%3Cscript%3E", "/tail?q=%3Cscript%3E", "/export?q=%22%3E%3Cimg"])
def test_a_query_that_does_not_parse_is_escaped_in_its_error_page(user, hostile, path):
    response = user.get(path)
    assert response.status_code == 400
    assert_escaped(response.get_data(as_text=True))


def test_log_text_is_escaped_in_context_and_host_pages(user, hostile):
    assert_escaped(user.get(f"/context/{hostile[0]['_id']}").get_data(as_text=True))
    assert_escaped(user.get("/hosts/" + XSS[1].replace("/", "%2F")).get_data(as_text=True))


def test_escaped_text_still_reads_as_the_original_line(user, hostile):
    html = user.get("/").get_data(as_text=True)
    assert "payload &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert unescape("&#34;&gt;&lt;img src=x onerror=alert(1)&gt;") == XSS[1]


def test_search_highlights_matches_without_unescaping(user, seed, now):
    seed([make_doc(now, "Disk <b>FULL</b> on /dev/sda: full stop")])
    html = user.get("/?q=full").get_data(as_text=True)
    assert "Disk &lt;b&gt;<mark>FULL</mark>&lt;/b&gt; on /dev/sda: <mark>full</mark> stop" in html


def test_search_page_shows_filtered_results_and_keeps_the_form_state(user, seed, now):
    seed([make_doc(now, "boom", level="error", host="web-01"),
          make_doc(now - timedelta(seconds=1), "fine", level="info", host="web-01"),
          make_doc(now - timedelta(seconds=2), "boom elsewhere", level="error", host="db-01")])
    html = user.get("/?host=web-01&level=error&since=30m").get_data(as_text=True)
    assert "boom" in html and "fine" not in html and "boom elsewhere" not in html
    assert 'name="host" value="web-01"' in html and 'name="since" value="30m"' in html
    assert re.search(r'value="error" checked', html) and not re.search(r'value="info" checked', html)


def test_permalink_pins_the_window_and_reproduces_the_view(user, seed, now):
    seed([make_doc(now, "needle here", level="warning")])
    html = user.get("/?q=needle&level=warning&since=2h").get_data(as_text=True)
    link = unescape(re.search(r'href="([^"]+)" id="permalink"', html).group(1))
    params = parse_qs(urlsplit(link).query)
    assert params["q"] == ["needle"] and params["level"] == ["warning"]
    assert params["since"][0].endswith("Z") and params["until"][0].endswith("Z")
    again = user.get(link).get_data(as_text=True)
    assert "needle" in again and 'name="q" value="needle"' in again


def test_older_link_pages_by_cursor_without_repeating(user, seed, now):
    seed([make_doc(now - timedelta(seconds=i), f"entry-{i:03d}", offset=i) for i in range(25)])
    first = user.get("/?limit=10").get_data(as_text=True)
    older = unescape(re.search(r'href="([^"]+)" id="older"', first).group(1))
    assert "cursor=" in older and "skip" not in older
    second = user.get(older).get_data(as_text=True)
    shown = re.findall(r"entry-\d{3}", first) + re.findall(r"entry-\d{3}", second)
    assert shown == [f"entry-{i:03d}" for i in range(20)]


def test_bad_parameters_show_an_error_on_the_page(user):
    response = user.get("/?since=last+tuesday")
    assert response.status_code == 400
    assert "since: not a time" in response.get_data(as_text=True)


def test_context_page_marks_the_line_and_offers_more(user, seed, now):
    lines = file_lines([f"ctx line {i}" for i in range(60)], now - timedelta(minutes=3))
    seed(lines)
    html = user.get(f"/context/{lines[30]['_id']}").get_data(as_text=True)
    assert re.findall(r"ctx line \d+", html) == [f"ctx line {i}" for i in range(10, 51)]
    assert f'class="rec lvrow-info anchor" id="r-{lines[30]["_id"]}"' in html
    assert 'id="more-before"' in html and 'id="more-after"' in html
    more = unescape(re.search(r'href="([^"]+)" id="more-before"', html).group(1))
    assert re.findall(r"ctx line \d+", user.get(more).get_data(as_text=True))[0] == "ctx line 0"
    assert user.get("/context/ffffffffffffffffffffffff").status_code == 404


def test_hosts_pages_list_hosts_apps_files_and_mark_stale_ones(user, seed, now):
    seed([make_doc(now, "x", host="web-01", app="nginx"),
          make_doc(now - timedelta(hours=2), "y", host="old-01", app="cron", source="/var/log/cron.log")])
    html = user.get("/hosts").get_data(as_text=True)
    assert 'href="/hosts/web-01"' in html and 'href="/hosts/old-01"' in html
    assert re.search(r'<tr class="stale">\s*<td><a href="/hosts/old-01"', html)
    page = user.get("/hosts/old-01").get_data(as_text=True)
    assert "cron" in page and "/var/log/cron.log" in page and 'id="calendar"' in page
    assert user.get("/hosts/nobody").status_code == 404


def test_export_page_carries_the_search_to_the_download(user, seed, now):
    html = user.get("/export?q=boom&host=web-01&since=2h").get_data(as_text=True)
    assert 'action="/api/export"' in html
    assert '<input type="hidden" name="q" value="boom">' in html
    assert '<input type="hidden" name="host" value="web-01">' in html


def test_static_assets_are_ours_and_served_locally(user):
    html = user.get("/").get_data(as_text=True)
    assert not re.search(r'(src|href)="(https?:)?//', html)
    for asset in ("/static/opslog.js", "/static/opslog.css"):
        with user.get(asset) as response:
            assert response.status_code == 200
