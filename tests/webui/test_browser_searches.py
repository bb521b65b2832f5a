"""Saved searches and query history in real headless Chromium: save, list, open, rename, delete;
the history of the last 50 searches kept per user in the browser."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from test_browser import sign_in, wait
from webui_data import make_doc
from werkzeug.serving import make_server

pytestmark = pytest.mark.browser


@pytest.fixture
def some_lines(seed, now):
    docs = [make_doc(now - timedelta(seconds=10 * i),
                     ("connection reset by peer (request {i})" if i % 4 == 0 else "job {i} done").format(i=i),
                     host=("web-01", "web-02")[i % 2], app="api", level="error" if i % 4 == 0 else "info",
                     offset=i * 100)
            for i in range(40)]
    seed(docs)
    return docs


def saved_names(browser) -> list[str]:
    return [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#saved .saved-list a.saved-link")]


def open_saved(browser) -> None:
    wait(browser, lambda b: not b.find_elements(By.XPATH, "//ul[@class='saved-list']/li[text()='loading…']"))
    browser.execute_script("document.getElementById('saved').open = true")


def test_save_open_rename_and_delete_a_search(browser, live_server, some_lines, db, output_dir: Path):
    sign_in(browser, live_server, "/?q=connection+reset&since=1h")
    open_saved(browser)
    wait(browser, lambda b: "none saved yet" in b.find_element(By.ID, "saved").text)
    browser.find_element(By.CSS_SELECTOR, "input[name=level][value=error]").click()
    browser.execute_script("document.getElementById('columns').open = true")
    browser.find_element(By.CSS_SELECTOR, "#columns input[value=host]").click()  # hide the host column
    wait(browser, lambda b: "columns=time%2Clevel%2Capp%2Cmessage" in b.current_url)
    assert not any(td.is_displayed() for td in browser.find_elements(By.CSS_SELECTOR, "#results td.h"))
    assert all(td.is_displayed() for td in browser.find_elements(By.CSS_SELECTOR, "#results td.a"))
    browser.find_element(By.NAME, "save_name").send_keys("resets")
    browser.find_element(By.NAME, "save_shared").click()
    browser.find_element(By.CSS_SELECTOR, "#save-search button[type=submit]").click()
    wait(browser, lambda b: saved_names(b) == ["resets"])
    assert "saved as “resets”" in browser.find_element(By.CSS_SELECTOR, ".saved-status").text
    assert "shared" in browser.find_element(By.CSS_SELECTOR, "#saved .saved-list li").text.lower()
    stored = db["searches"].find_one({"name": "resets"})
    assert (stored["owner"], stored["shared"], stored["q"]) == ("admin", True, "connection reset")
    assert stored["since"] == "1h"
    assert stored["filters"]["level"] == ["error"] and stored["filters"]["host"] is None
    assert stored["columns"] == ["time", "level", "app", "message"]
    browser.save_screenshot(str(output_dir / "01-saved.png"))

    browser.get(live_server + "/")  # the list is there on any search page; its link is a permalink
    open_saved(browser)
    wait(browser, lambda b: saved_names(b) == ["resets"])
    browser.find_element(By.CSS_SELECTOR, "#saved a.saved-link").click()
    wait(browser, lambda b: "q=connection+reset" in b.current_url)
    assert "since=1h" in browser.current_url and "level=error" in browser.current_url
    found = browser.find_elements(By.CSS_SELECTOR, "#results tbody tr.rec")
    assert len(found) == 10 and all("connection reset" in r.text for r in found)
    # its columns come back too: no host column, the others shown
    assert not any(td.is_displayed() for td in browser.find_elements(By.CSS_SELECTOR, "#results td.h"))
    assert browser.find_element(By.CSS_SELECTOR, "#results th.t").is_displayed()
    assert not browser.find_element(By.CSS_SELECTOR, "#columns input[value=host]").is_selected()
    browser.save_screenshot(str(output_dir / "02-opened.png"))

    open_saved(browser)
    wait(browser, lambda b: saved_names(b) == ["resets"])
    browser.find_element(By.CSS_SELECTOR, "#saved button.rename").click()
    box = browser.find_element(By.CSS_SELECTOR, "#saved input.rename-input")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys("peer resets", Keys.ENTER)
    wait(browser, lambda b: saved_names(b) == ["peer resets"])
    assert db["searches"].find_one({"_id": stored["_id"]})["name"] == "peer resets"
    browser.save_screenshot(str(output_dir / "03-renamed.png"))

    browser.find_element(By.CSS_SELECTOR, "#saved button.delete").click()
    wait(browser, lambda b: "none saved yet" in b.find_element(By.ID, "saved").text)
    assert db["searches"].count_documents({}) == 0
    browser.save_screenshot(str(output_dir / "04-deleted.png"))


def history(browser) -> list[str]:
    browser.execute_script("document.getElementById('history').open = true")
    return [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#history .history-list a.history-link")]


def test_the_history_lists_this_users_last_50_searches_under_the_query_box(browser, live_server, some_lines,
                                                                          output_dir: Path):
    sign_in(browser, live_server, "/?q=connection+reset")
    browser.execute_script("localStorage.clear()")
    browser.get(live_server + "/?q=connection+reset")
    browser.get(live_server + "/?host=web-01&level=error&since=2h")
    browser.get(live_server + "/?q=job")
    assert history(browser) == ['"job"', "host:web-01 level:error since 2h", '"connection reset"']
    # the same search again moves to the top rather than repeating
    browser.get(live_server + "/?q=connection+reset&cursor=")
    assert history(browser) == ['"connection reset"', '"job"', "host:web-01 level:error since 2h"]
    browser.save_screenshot(str(output_dir / "01-history.png"))

    browser.find_elements(By.CSS_SELECTOR, "#history a.history-link")[1].click()
    wait(browser, lambda b: b.current_url.endswith("/?q=job"))

    # kept per user: another user's history in the same browser is not shown; at most 50 are kept
    older = [{"query": f"q=old+{i}", "at": "2026-01-01T00:00:00Z"} for i in range(60)]
    browser.execute_script("localStorage.setItem('opslog.history.admin', arguments[0]);"
                           "localStorage.setItem('opslog.history.someone', arguments[1]);",
                           json.dumps(older), json.dumps([{"query": "q=not+mine", "at": "2026-01-01T00:00:00Z"}]))
    browser.get(live_server + "/?q=newest")
    shown = history(browser)
    assert len(shown) == 50 and shown[0] == '"newest"' and shown[1] == '"old 0"' and '"not mine"' not in shown
    assert len(json.loads(browser.execute_script("return localStorage.getItem('opslog.history.admin')"))) == 50

    browser.find_element(By.ID, "history-clear").click()
    assert history(browser) == []
    assert "no searches yet" in browser.find_element(By.ID, "history").text


def test_a_viewer_sees_the_list_but_no_save_form(browser, make_app, password_hash):
    app = make_app(users={"admin": password_hash}, roles={"admin": "viewer"})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        sign_in(browser, base)
        open_saved(browser)
        assert not browser.find_elements(By.ID, "save-search")
        assert "none saved yet" in browser.find_element(By.ID, "saved").text
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
