"""The live tail page in headless Chromium: a burst faster than a person reads is sampled and the
page says so; pause keeps a cursor, not lines; resume catches up from it and every line appears once."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from test_browser import sign_in, wait
from webui_data import make_doc

pytestmark = pytest.mark.browser


def shown_ids(browser) -> list[str]:
    return browser.execute_script(
        "return Array.from(document.querySelectorAll('#tail tbody tr')).map(r => r.dataset.id)")


def state(browser) -> str:
    return browser.find_element(By.ID, "tail-state").text


def burst(seed, count: int, label: str, first_offset: int) -> list[dict]:
    now = datetime.now(UTC)
    docs = [make_doc(now, f"{label} {i}", host="web-01", offset=first_offset + i) for i in range(count)]
    seed(docs)
    return docs


def test_a_burst_is_sampled_and_said_so_and_resume_catches_up_with_every_line(browser, live_server, seed,
                                                                               output_dir: Path):
    sign_in(browser, live_server)
    browser.get(live_server + "/tail?host=web-01")
    wait(browser, lambda b: state(b) == "following")
    before = burst(seed, 100, "calm", 0)
    wait(browser, lambda b: len(shown_ids(b)) == 100)
    assert shown_ids(browser) == [d["_id"] for d in before], "a calm stream shows every line, in order"

    fast = burst(seed, 1500, "burst", 10_000)
    notice = browser.find_element(By.ID, "tail-sampling")
    wait(browser, lambda b: notice.is_displayed() and "lines not shown" in notice.text)
    match = re.fullmatch(r"showing 1 in (\d+), ([\d,]+) lines not shown; pause to catch up", notice.text)
    assert match and int(match.group(1)) >= 2, notice.text
    wait(browser, lambda b: int(re.search(r"([\d,]+) lines not shown", notice.text).group(1).replace(",", ""))
         + len(shown_ids(b)) == 1600)
    assert len(shown_ids(browser)) < 1600, "not every line of the burst is on screen"
    browser.save_screenshot(str(output_dir / "01-sampled.png"))

    browser.find_element(By.ID, "tail-toggle").click()
    assert state(browser) == "paused"
    paused = burst(seed, 100, "while paused", 20_000)
    time.sleep(1.5)  # a stream still open would have delivered them by now
    assert not {d["_id"] for d in paused} & set(shown_ids(browser)), "paused: nothing new arrives"
    browser.save_screenshot(str(output_dir / "02-paused.png"))

    browser.find_element(By.ID, "tail-toggle").click()
    expected = [d["_id"] for d in before + fast + paused]
    wait(browser, lambda b: len(shown_ids(b)) == len(expected), timeout=30)
    assert shown_ids(browser) == expected, "after resume every line is shown exactly once, in storing order"
    assert not browser.find_element(By.ID, "tail-sampling").is_displayed()
    wait(browser, lambda b: state(b) == "following")
    browser.save_screenshot(str(output_dir / "03-caught-up.png"))

    after = burst(seed, 20, "live again", 30_000)
    wait(browser, lambda b: shown_ids(b)[-20:] == [d["_id"] for d in after])
