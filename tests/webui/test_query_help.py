"""The query language's help page (/help/query) cannot drift from the language: every example on the
rendered page runs through /api/logs against the page's own sample records, stored in a real
database by the consumer's code, and must return exactly the records the page says it does."""

from __future__ import annotations

import json
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from webui_data import make_doc


class HelpPage(HTMLParser):
    """The sample records (`data-record`), examples (`data-example`) and refused queries (`data-bad-example`)."""

    def __init__(self, html: str):
        super().__init__()
        self.records: list[dict] = []
        self.examples: list[tuple[str, set[int]]] = []
        self.bad: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "data-record" in a:
            self.records.append(json.loads(a["data-record"]))
        if "data-example" in a:
            self.examples.append((a["data-q"], {int(n) for n in a["data-matches"].split()}))
        if "data-bad-example" in a:
            self.bad.append(a["data-q"])


@pytest.fixture
def page(user) -> HelpPage:
    response = user.get("/help/query")
    assert response.status_code == 200
    return HelpPage(response.get_data(as_text=True))


def test_the_page_documents_every_construct_with_examples(page):
    assert len(page.records) == 8 and [r["n"] for r in page.records] == list(range(1, 9))
    queries = " ".join(q for q, _ in page.examples)
    for construct in ('"', "fields.", "*", "?", "_exists_:", ">=", "<", "[", "{", " TO ", " AND ", " OR ",
                      "NOT ", "-", "(", ":/", "\\d"):
        assert construct in queries, construct
    assert len(page.bad) >= 5


def test_every_example_returns_the_records_the_page_names(api, page, seed, now):
    ids = {}
    docs = []
    for rec in page.records:
        doc = make_doc(now - timedelta(seconds=rec["n"]), rec["message"], host=rec["host"], app=rec["app"],
                       level=rec["level"], source=rec["source"], offset=rec["n"] * 100, fields=rec["fields"])
        ids[doc["_id"]] = rec["n"]
        docs.append(doc)
    seed(docs)
    wrong = []
    for q, expected in page.examples:
        response = api.get("/api/logs", query_string={"q": q})
        assert response.status_code == 200, (q, response.get_json())
        found = {ids[r["id"]] for r in response.get_json()["records"]}
        if found != expected:
            wrong.append((q, sorted(expected), sorted(found)))
    assert not wrong, "examples whose records differ from the page (query, page says, API returns): " + repr(wrong)


def test_every_refused_example_is_a_400_pointing_into_the_query(api, page):
    for q in page.bad:
        response = api.get("/api/logs", query_string={"q": q})
        body = response.get_json()
        assert response.status_code == 400 and body["param"] == "q", (q, body)
        assert 0 <= body["position"] <= len(q)


def test_the_search_box_links_to_the_help(user):
    html = user.get("/").get_data(as_text=True)
    assert 'href="/help/query"' in html and 'class="qhelp"' in html
