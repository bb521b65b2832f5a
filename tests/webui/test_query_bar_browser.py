"""The query bar in real headless Chromium: typing a query, a syntax error pointed at, filters added
from an expanded row and from the field sidebar's top values, and suggestions picked by keyboard."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from test_browser import rows, sign_in, wait
from webui_data import make_doc

pytestmark = pytest.mark.browser
METHODS = ("GET", "GET", "POST", "GET", "DELETE")


@pytest.fixture
def requests_data(seed, now):
    """120 requests on three hosts; parsed fields, one of them nested, one value that needs quotes."""
    docs = []
    for i in range(120):
        docs.append(make_doc(now - timedelta(seconds=20 * i), f"request {i} served",
                             host=("web-01", "web-02", "db-01")[i % 3], app="api",
                             level="error" if i % 8 == 0 else "info", offset=i * 100,
                             fields={"status": (200, 200, 503, 404)[i % 4],
                                     "req": {"method": METHODS[i % 5]},
                                     "user": "ann lee" if i % 6 == 0 else f"u{i % 4}"}))
    seed(docs)
    return docs


def settled(browser, condition, timeout=15):
    """`condition` holds within `timeout`; a page still being replaced (stale elements) is waited out."""
    return WebDriverWait(browser, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(condition)


def shows(browser, expected: set[str]) -> None:
    """The result table comes to hold exactly the records `expected` (ids)."""
    try:
        settled(browser, lambda b: row_ids(b) == expected)
    except TimeoutException:
        raise AssertionError(f"q={q_of(browser)!r}: shows {sorted(row_ids(browser))}, "
                             f"expected {sorted(expected)}") from None


def drawn(browser) -> None:
    """The histogram has been drawn: the rows below it no longer move (a click lands where it aims)."""
    wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "#histogram svg, #histogram .plot .error"))


def q_of(browser) -> str:
    return parse_qs(urlsplit(browser.current_url).query).get("q", [""])[0]


def row_ids(browser) -> set[str]:
    return {r.get_attribute("data-id") for r in rows(browser)}


def ids(docs) -> set[str]:
    return {d["_id"] for d in docs}


def search_for(browser, text: str) -> None:
    box = browser.find_element(By.NAME, "q")
    box.clear()
    box.send_keys(text)
    box.send_keys(Keys.ENTER)


def test_typing_a_query_shows_the_matching_rows(browser, live_server, requests_data, output_dir: Path):
    sign_in(browser, live_server)
    search_for(browser, "status>=500 req.method:POST")
    wait(browser, lambda b: q_of(b) == "status>=500 req.method:POST")
    expected = [d for d in requests_data if d["fields"]["status"] >= 500 and d["fields"]["req"]["method"] == "POST"]
    assert expected
    shows(browser, ids(expected))
    # the permalink keeps q
    permalink = browser.find_element(By.ID, "permalink").get_attribute("href")
    assert parse_qs(urlsplit(permalink).query)["q"] == ["status>=500 req.method:POST"]
    browser.save_screenshot(str(output_dir / "01-query.png"))


def test_a_syntax_error_is_underlined_where_the_api_says(browser, live_server, api, requests_data,
                                                         output_dir: Path):
    bad = "level:error AND (host:web-01 OR"
    answer = api.get("/api/logs", query_string={"q": bad}).get_json()
    assert answer["param"] == "q"
    position = answer["position"]
    sign_in(browser, live_server)
    before = browser.current_url
    search_for(browser, bad)
    mark = wait(browser, ec.visibility_of_element_located((By.CSS_SELECTOR, ".qbar.has-error .qerr-at")))
    mirror = browser.find_element(By.CSS_SELECTOR, ".qbar .qmirror")
    before_mark = browser.execute_script("return arguments[0].firstChild.textContent", mirror)
    assert len(before_mark) == position
    assert mark.get_attribute("textContent") == (bad[position:position + 1] or " ")
    message = browser.find_element(By.ID, "q-error")
    assert message.is_displayed() and answer["error"] in message.text
    assert browser.current_url == before  # nothing was searched
    browser.save_screenshot(str(output_dir / "01-error-typed.png"))

    # fixing the query clears the mark; a permalink with the bad query shows the same mark on load
    box = browser.find_element(By.NAME, "q")
    box.send_keys(" host:db-01)")
    wait(browser, lambda b: not b.find_elements(By.CSS_SELECTOR, ".qbar.has-error"))
    browser.get(f"{live_server}/?q=" + bad.replace(" ", "+").replace(":", "%3A"))
    wait(browser, ec.visibility_of_element_located((By.CSS_SELECTOR, ".qbar.has-error .qerr-at")))
    mirror = browser.find_element(By.CSS_SELECTOR, ".qbar .qmirror")
    assert len(browser.execute_script("return arguments[0].firstChild.textContent", mirror)) == position
    browser.save_screenshot(str(output_dir / "02-error-permalink.png"))


def test_a_field_of_an_expanded_row_filters_for_or_against_its_value(browser, live_server, requests_data,
                                                                     output_dir: Path):
    sign_in(browser, live_server)
    browser.get(f"{live_server}/?q=request")
    drawn(browser)
    first = rows(browser)[0]
    first_doc = next(d for d in requests_data if d["_id"] == first.get_attribute("data-id"))
    first.find_element(By.CSS_SELECTOR, "summary").click()
    method = wait(browser, lambda b: first.find_element(
        By.CSS_SELECTOR, "details[open] dd[data-field='req.method'] button.fv-add"))
    browser.save_screenshot(str(output_dir / "01-expanded.png"))
    method.click()
    wanted = first_doc["fields"]["req"]["method"]
    wait(browser, lambda b: q_of(b) == f"request req.method:{wanted}")
    shows(browser, ids(d for d in requests_data if d["fields"]["req"]["method"] == wanted))

    # exclude a value that needs quotes, from a row that has it
    browser.get(f"{live_server}/?q=user:\"ann lee\" OR status:404")
    drawn(browser)
    target = next(r for r in rows(browser)
                  if next(d for d in requests_data if d["_id"] == r.get_attribute("data-id"))["fields"]["user"]
                  == "ann lee")
    target.find_element(By.CSS_SELECTOR, "summary").click()
    wait(browser, lambda b: target.find_element(
        By.CSS_SELECTOR, "details[open] dd[data-field='user'] button.fv-not")).click()
    wait(browser, lambda b: q_of(b) == '(user:"ann lee" OR status:404) -user:"ann lee"')
    shows(browser, ids(d for d in requests_data if d["fields"]["status"] == 404 and d["fields"]["user"] != "ann lee"))
    browser.save_screenshot(str(output_dir / "02-excluded.png"))


def open_top_values(browser, field: str) -> list:
    browser.find_element(By.CSS_SELECTOR, f"#fieldbar button.fname[data-field='{field}']").click()
    shown = f"#fieldbar li:has(> button[data-field='{field}']) .topval"
    return wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, shown))


def test_top_values_of_a_field_add_and_exclude_filters(browser, live_server, requests_data, output_dir: Path):
    sign_in(browser, live_server)
    browser.get(f"{live_server}/?level=info")
    result = [d for d in requests_data if d["level"] == "info"]
    names = [b.get_attribute("data-field") for b in browser.find_elements(By.CSS_SELECTOR, "#fieldbar button.fname")]
    assert names == ["host", "app", "source", "level", "req.method", "status", "user"]
    shown = [(r.find_element(By.CSS_SELECTOR, ".v").text, r.find_element(By.CSS_SELECTOR, ".n").text)
             for r in open_top_values(browser, "status")]
    counts = Counter(d["fields"]["status"] for d in result)
    assert shown == [(str(v), str(n)) for v, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    assert f"in {len(result)} records" in browser.find_element(By.CSS_SELECTOR, "#fieldbar .topvals .note").text
    browser.save_screenshot(str(output_dir / "01-top-values.png"))

    top = browser.find_elements(By.CSS_SELECTOR, "#fieldbar .topval")[0]
    value = top.find_element(By.CSS_SELECTOR, ".v").text
    top.find_element(By.CSS_SELECTOR, "button.fv-add").click()
    wait(browser, lambda b: q_of(b) == f"status:{value}")
    shows(browser, ids(d for d in result if str(d["fields"]["status"]) == value))

    browser.get(f"{live_server}/?level=info")
    host_values = open_top_values(browser, "host")
    excluded = host_values[0].find_element(By.CSS_SELECTOR, ".v").text
    host_values[0].find_element(By.CSS_SELECTOR, "button.fv-not").click()
    wait(browser, lambda b: q_of(b) == f"-host:{excluded}")
    shows(browser, ids(d for d in result if d["host"] != excluded))
    browser.save_screenshot(str(output_dir / "02-excluded-host.png"))


def suggestions(browser) -> list[str]:
    return [li.find_element(By.CSS_SELECTOR, ".label").text
            for li in browser.find_elements(By.CSS_SELECTOR, "#q-suggest li")]


ODD_VALUES = ("a:b", "-5", "OR", "x*y", 'say "hi"', "back\\slash", "(paren)", "/api/", "über alles")


def test_plus_quotes_every_value_so_the_filter_finds_exactly_its_records(browser, live_server, seed, now):
    docs = [make_doc(now - timedelta(seconds=i), f"odd {i}", offset=i, fields={"odd": value})
            for i, value in enumerate(ODD_VALUES * 2)]
    seed(docs)
    sign_in(browser, live_server)
    for value in ODD_VALUES:
        browser.get(f"{live_server}/")
        entries = open_top_values(browser, "odd")
        entry = next(li for li in entries if li.find_element(By.CSS_SELECTOR, ".v").text == value)
        assert entry.find_element(By.CSS_SELECTOR, ".n").text == "2"
        entry.find_element(By.CSS_SELECTOR, "button.fv-add").click()
        wait(browser, lambda b: q_of(b).startswith("odd:"))
        shows(browser, ids(d for d in docs if d["fields"]["odd"] == value))


def test_autocompletion_picks_a_field_name_then_a_value_by_keyboard(browser, live_server, requests_data, seed,
                                                                   now, output_dir: Path):
    # a field only the catalogue knows: its one record is older than the page's window
    seed([make_doc(now - timedelta(days=2), "old trace", offset=10**6, fields={"trace": {"id": "t-1"}})])
    sign_in(browser, live_server)
    box = browser.find_element(By.NAME, "q")
    box.send_keys("trac")
    wait(browser, lambda b: suggestions(b) == ["trace.id"])
    box.send_keys(Keys.TAB)
    assert box.get_attribute("value") == "trace.id:"
    box.clear()
    box.send_keys("level:error req.m")
    wait(browser, lambda b: suggestions(b) == ["req.method"])
    browser.save_screenshot(str(output_dir / "01-field-names.png"))
    box.send_keys(Keys.ARROW_DOWN, Keys.ENTER)
    assert box.get_attribute("value") == "level:error req.method:"
    # then the field's common values in the window, most frequent first (ties in value order)
    wait(browser, lambda b: suggestions(b) == ["GET", "DELETE", "POST"])
    browser.save_screenshot(str(output_dir / "02-values.png"))
    box.send_keys("P")
    wait(browser, lambda b: suggestions(b) == ["POST"])
    box.send_keys(Keys.TAB)
    assert box.get_attribute("value") == "level:error req.method:POST "
    assert not browser.find_element(By.ID, "q-suggest").is_displayed()
    # Esc closes the list and keeps the text
    box.send_keys("us")
    wait(browser, lambda b: suggestions(b) == ["user", "status"])
    box.send_keys(Keys.ESCAPE)
    assert not browser.find_element(By.ID, "q-suggest").is_displayed()
    assert box.get_attribute("value") == "level:error req.method:POST us"
    box.send_keys(Keys.BACKSPACE, Keys.BACKSPACE)
    # values inside a field group, and inside an open phrase (taken whole, quoted)
    box.send_keys("-user:(u1 OR u")
    wait(browser, lambda b: suggestions(b) == ["u1", "u3", "u0", "u2"])  # by count, then value
    box.send_keys(Keys.ESCAPE)
    for _ in "-user:(u1 OR u":
        box.send_keys(Keys.BACKSPACE)
    box.send_keys('-user:"ann')
    wait(browser, lambda b: suggestions(b) == ["ann lee"])
    box.send_keys(Keys.ARROW_DOWN, Keys.ENTER)
    assert box.get_attribute("value") == 'level:error req.method:POST -user:"ann lee" '
    box.send_keys(Keys.ENTER)
    wait(browser, lambda b: q_of(b) == 'level:error req.method:POST -user:"ann lee"')
    shows(browser, ids(d for d in requests_data if d["level"] == "error" and d["fields"]["req"]["method"] == "POST"
                       and d["fields"]["user"] != "ann lee"))


def test_the_question_mark_opens_the_language_help(browser, live_server, requests_data, output_dir: Path):
    sign_in(browser, live_server)
    search = browser.current_window_handle
    browser.find_element(By.CSS_SELECTOR, ".qbar a.qhelp").click()
    wait(browser, lambda b: len(b.window_handles) == 2)
    browser.switch_to.window(next(h for h in browser.window_handles if h != search))
    try:
        wait(browser, ec.presence_of_element_located((By.CSS_SELECTOR, "[data-example]")))
        assert browser.find_element(By.TAG_NAME, "h1").text == "The query language"
        assert len(browser.find_elements(By.CSS_SELECTOR, "#sample tbody tr")) == 8
        browser.save_screenshot(str(output_dir / "01-help.png"))
        # "try it" runs an example on the operator's own logs
        example = browser.find_element(By.CSS_SELECTOR, "[data-example][data-q='level:error'] a.try")
        example.click()
        wait(browser, lambda b: q_of(b) == "level:error")
        shows(browser, ids(d for d in requests_data if d["level"] == "error"))
    finally:
        browser.close()
        browser.switch_to.window(search)
