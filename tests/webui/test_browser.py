"""The UI in real headless Chromium: what an operator does, each step saved as a screenshot."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from webui_data import PASSWORD, file_lines, make_doc

pytestmark = pytest.mark.browser

HOSTS = ("web-01", "web-02", "db-01")
MESSAGES = (
    '192.0.2.{n} - - "GET /api/orders/{n} HTTP/1.1" 200 {size} "-" "curl/8.5"',
    "worker {n}: job done in {size} ms",
    "connection reset by peer while reading upstream (request {n})",
    "payment {n} declined: card expired <script>alert(1)</script>",
    "cache miss for key user:{n}, fetched in {size} ms",
)


@pytest.fixture
def operator_data(seed, now):
    docs = []
    for i in range(400):
        level = ("error" if i % 17 == 0 else "warning" if i % 11 == 0 else "debug" if i % 7 == 0 else "info")
        docs.append(make_doc(now - timedelta(seconds=8 * i), MESSAGES[i % len(MESSAGES)].format(n=i, size=i * 37 % 900),
                             host=HOSTS[i % 3], app=("nginx", "api", "worker")[i % 3], level=level,
                             source=f"/var/log/{('nginx', 'api', 'worker')[i % 3]}/current.log", offset=i * 120,
                             fields={"request_id": f"r-{i:05d}", "duration_ms": i * 37 % 900}))
    docs += file_lines([f"checkout step {k}: {'ok' if k != 6 else 'FAILED to reserve stock'}" for k in range(12)],
                       now - timedelta(minutes=2), host="api-07", app="checkout", source="/var/log/checkout.log",
                       level="info")
    seed(docs)
    return docs


def wait(browser, condition, timeout=15):
    return WebDriverWait(browser, timeout).until(condition)


def sign_in(browser, base: str, next_path: str = "/") -> None:
    browser.get(f"{base}/login")
    browser.delete_all_cookies()
    browser.get(f"{base}/login?next={quote(next_path)}")
    browser.find_element(By.NAME, "username").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()
    wait(browser, ec.presence_of_element_located((By.CSS_SELECTOR, "header .who form")))


def rows(browser) -> list:
    return browser.find_elements(By.CSS_SELECTOR, "#results tbody tr.rec")


def histogram_drawn(browser) -> bool:
    return bool(browser.find_elements(By.CSS_SELECTOR, "#histogram svg rect.bar-info"))


def test_sign_in_and_see_the_newest_records(browser, live_server, operator_data, output_dir: Path):
    browser.get(live_server + "/")
    assert "/login" in browser.current_url
    browser.save_screenshot(str(output_dir / "01-sign-in.png"))
    sign_in(browser, live_server)
    wait(browser, lambda b: histogram_drawn(b))
    assert len(rows(browser)) == 100
    assert 'GET /api/orders/0 HTTP/1.1' in rows(browser)[0].text
    # Log text shows as text: the script tag is visible, not executed.
    assert "<script>alert(1)</script>" in browser.find_element(By.ID, "results").text
    browser.save_screenshot(str(output_dir / "02-search.png"))


def test_search_text_filter_by_level_and_page_older(browser, live_server, operator_data, output_dir: Path):
    sign_in(browser, live_server)
    box = browser.find_element(By.NAME, "q")
    box.send_keys("CONNECTION RESET")
    browser.find_element(By.CSS_SELECTOR, "#search-form button.primary").click()
    wait(browser, lambda b: "q=CONNECTION" in b.current_url)
    marks = browser.find_elements(By.CSS_SELECTOR, "#results mark")
    assert marks and all(m.text.lower() == "connection reset" for m in marks)
    assert all("connection reset" in r.text for r in rows(browser))
    wait(browser, lambda b: histogram_drawn(b))
    browser.save_screenshot(str(output_dir / "01-text-search.png"))

    browser.find_element(By.NAME, "q").clear()
    browser.find_element(By.CSS_SELECTOR, "input[name=level][value=error]").click()
    browser.find_element(By.CSS_SELECTOR, "#search-form button.primary").click()
    wait(browser, lambda b: "level=error" in b.current_url)
    levels = {r.find_element(By.CSS_SELECTOR, ".lv").text for r in rows(browser)}
    assert levels == {"ERROR"}
    expected = sum(d.get("level") == "error" for d in operator_data)
    assert len(rows(browser)) == expected
    browser.save_screenshot(str(output_dir / "02-level-error.png"))

    browser.get(live_server + "/?limit=50")
    first_page = [r.get_attribute("data-id") for r in rows(browser)]
    browser.find_element(By.ID, "older").click()
    wait(browser, lambda b: "cursor=" in b.current_url)
    second_page = [r.get_attribute("data-id") for r in rows(browser)]
    assert len(second_page) == 50 and not set(first_page) & set(second_page)
    browser.save_screenshot(str(output_dir / "03-older-page.png"))


def test_open_a_line_and_its_context(browser, live_server, operator_data, output_dir: Path):
    sign_in(browser, live_server)
    browser.get(live_server + "/?q=FAILED+to+reserve")
    wait(browser, lambda b: len(rows(b)) == 1)
    rows(browser)[0].find_element(By.CSS_SELECTOR, "summary").click()
    details = wait(browser, ec.visibility_of_element_located((By.CSS_SELECTOR, "#results details[open] .more")))
    assert "/var/log/checkout.log @" in details.text
    assert "request_id" not in details.text  # the checkout lines have no parsed fields
    browser.save_screenshot(str(output_dir / "01-expanded.png"))
    details.find_element(By.CSS_SELECTOR, "a.ctx").click()
    wait(browser, ec.presence_of_element_located((By.CSS_SELECTOR, "tr.anchor")))
    lines = [r.find_element(By.CSS_SELECTOR, "td.m").text for r in rows(browser)]
    assert lines == [f"checkout step {k}: {'ok' if k != 6 else 'FAILED to reserve stock'}" for k in range(12)]
    assert "FAILED" in browser.find_element(By.CSS_SELECTOR, "tr.anchor").text
    browser.save_screenshot(str(output_dir / "02-context.png"))


def test_a_permalink_reopens_the_same_view(browser, live_server, operator_data, output_dir: Path):
    sign_in(browser, live_server)
    browser.get(live_server + "/?host=web-02&level=warning&level=error&since=30m")
    shown = [r.get_attribute("data-id") for r in rows(browser)]
    assert shown
    link = browser.find_element(By.ID, "permalink").get_attribute("href")
    browser.get(live_server + "/hosts")
    browser.save_screenshot(str(output_dir / "01-hosts.png"))
    browser.get(link)
    assert [r.get_attribute("data-id") for r in rows(browser)] == shown
    assert browser.find_element(By.NAME, "host").get_attribute("value") == "web-02"
    assert browser.find_element(By.CSS_SELECTOR, "input[name=level][value=warning]").is_selected()
    browser.save_screenshot(str(output_dir / "02-permalink.png"))
    browser.get(live_server + "/hosts/web-02")
    wait(browser, ec.presence_of_element_located((By.CSS_SELECTOR, "#calendar svg rect.cal-4")))
    browser.save_screenshot(str(output_dir / "03-host-calendar.png"))


def test_live_tail_receives_a_new_line(browser, live_server, operator_data, seed, output_dir: Path):
    sign_in(browser, live_server)
    browser.get(live_server + "/tail?host=web-01")
    wait(browser, lambda b: b.find_element(By.ID, "tail-state").text == "following")
    before = len(browser.find_elements(By.CSS_SELECTOR, "#tail tbody tr"))
    seed([make_doc(datetime.now(UTC), "brand new line <b>from</b> the tail test", host="web-01", level="error",
                   offset=10**9)])
    wait(browser, lambda b: "brand new line <b>from</b> the tail test" in b.find_element(By.ID, "tail").text)
    last = browser.find_elements(By.CSS_SELECTOR, "#tail tbody tr")[-1]
    assert "brand new line" in last.text and len(browser.find_elements(By.CSS_SELECTOR, "#tail tbody tr")) == before + 1
    browser.save_screenshot(str(output_dir / "01-tail.png"))
    browser.find_element(By.ID, "tail-toggle").click()
    assert browser.find_element(By.ID, "tail-state").text == "paused"
    seed([make_doc(datetime.now(UTC), "arrives while paused", host="web-01", offset=10**9 + 1)])
    time.sleep(2.5)
    assert "arrives while paused" not in browser.find_element(By.ID, "tail").text
    browser.find_element(By.ID, "tail-toggle").click()
    wait(browser, lambda b: "arrives while paused" in b.find_element(By.ID, "tail").text)
    browser.save_screenshot(str(output_dir / "02-tail-resumed.png"))


def test_export_downloads_the_current_search_as_csv(browser, live_server, operator_data, output_dir: Path):
    download_dir = output_dir / "downloads"
    download_dir.mkdir()
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(download_dir)})
    sign_in(browser, live_server)
    browser.get(live_server + "/?q=declined")
    browser.find_element(By.LINK_TEXT, "export").click()
    wait(browser, ec.presence_of_element_located((By.ID, "export-form")))
    browser.find_element(By.CSS_SELECTOR, "input[name=format][value=csv]").click()
    browser.save_screenshot(str(output_dir / "01-export.png"))
    browser.find_element(By.ID, "export-go").click()
    done = wait(browser, lambda b: [p for p in download_dir.glob("opslog-*.csv")], timeout=20)
    rows_ = list(csv.DictReader(io.StringIO(done[0].read_text(encoding="utf-8"))))
    expected = [d for d in operator_data if "declined" in d["message"]]
    assert len(rows_) == len(expected)
    assert all("declined" in r["message"] for r in rows_)
