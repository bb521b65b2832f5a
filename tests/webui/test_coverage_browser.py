"""The host page's coverage bars in real headless Chromium: stored, gap and in-flight segments,
a gap opening the context view at its edge, the verify button finding a deleted record, and a
journal input's row in entries."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from coverage_data import beat, end_of, entry, file_docs, seed_file
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from test_browser import sign_in, wait

from common import coverage

pytestmark = pytest.mark.browser


def test_the_host_page_draws_each_files_coverage_and_a_gap_opens_the_context(browser, live_server, consumer_store,
                                                                             now, db, output_dir: Path):
    docs = file_docs(60, now - timedelta(minutes=2), skip=(30,))
    seed_file(consumer_store, docs)
    beat(consumer_store, "web-01", [entry("f-app", "/var/log/app.log", end_of(docs) + 400, confirmed=end_of(docs))])
    sign_in(browser, live_server, "/hosts/web-01")
    wait(browser, ec.presence_of_element_located((By.CSS_SELECTOR, "#coverage .bar .seg.gap")))
    bar = browser.find_element(By.CSS_SELECTOR, "#coverage .file .bar")
    assert len(bar.find_elements(By.CSS_SELECTOR, ".seg.stored")) == 1
    assert len(bar.find_elements(By.CSS_SELECTOR, ".seg.flight")) == 1
    gap = bar.find_element(By.CSS_SELECTOR, ".seg.gap")
    assert gap.get_attribute("title").endswith(": missing")
    assert gap.size["width"] >= 3, "a one-line gap is still visible and clickable"
    assert "1 gap" in browser.find_element(By.CSS_SELECTOR, "#coverage .file-head").text.lower()
    assert "lag 400 B" in browser.find_element(By.CSS_SELECTOR, "#coverage .facts").text
    browser.save_screenshot(str(output_dir / "01-coverage-bar.png"))

    gap.click()
    wait(browser, ec.url_contains("/context/"))
    before_gap = docs[29]
    assert before_gap["_id"] in browser.current_url
    wait(browser, ec.presence_of_element_located((By.CSS_SELECTOR, "tr.anchor, .anchor")))
    assert before_gap["message"] in browser.page_source
    browser.save_screenshot(str(output_dir / "02-context-at-the-gap.png"))

    db.logs.delete_one({"_id": docs[10]["_id"]})  # the side table still says stored: only verify sees it
    browser.get(f"{live_server}/hosts/web-01")
    wait(browser, ec.presence_of_element_located((By.CSS_SELECTOR, "#coverage .bar .seg.gap")))
    assert len(browser.find_elements(By.CSS_SELECTOR, "#coverage .seg.gap")) == 1
    browser.find_element(By.CSS_SELECTOR, "#coverage button.verify").click()
    status = (By.CSS_SELECTOR, "#coverage .verify-status")
    wait(browser, ec.text_to_be_present_in_element(status, "1 file(s) with gaps"))
    gaps = browser.find_elements(By.CSS_SELECTOR, "#coverage .seg.gap")
    assert sorted(g.get_attribute("title").split(": ")[1] for g in gaps) == ["deleted", "missing"]
    assert "58 records verified" in browser.find_element(By.CSS_SELECTOR, "#coverage .facts").text
    browser.save_screenshot(str(output_dir / "03-verified.png"))


def test_a_journal_input_s_row_counts_entries_and_names_a_vacuumed_gap(browser, live_server, consumer_store, now,
                                                                        output_dir: Path):
    journal = coverage.journal_identity("0e062bd169124f9cb4cdb00db5109f71", "journal:system")
    docs = file_docs(20, now - timedelta(minutes=2), host="web-02", source="journal:ssh.service", file=journal)
    for seqnum, doc in enumerate(docs, start=1):  # seqnums 1..20, each entry closing its own
        doc["offset"], doc["len"] = seqnum, 1
    seed_file(consumer_store, [d for d in docs if not 10 <= d["offset"] < 16])  # 10..15 vacuumed, never read
    beat(consumer_store, "web-02", [{**entry(journal, "journal:system", 26, confirmed=21),
                                     "inode": None, "fingerprint": None, "mtime": None, "skipped": [[10, 16]]}])
    sign_in(browser, live_server, "/hosts/web-02")
    wait(browser, ec.presence_of_element_located((By.CSS_SELECTOR, "#coverage .bar .seg.gap")))
    assert browser.find_element(By.CSS_SELECTOR, "#coverage .seg.gap").get_attribute("title") == \
        "gap [10, 16): vacuumed"
    facts = browser.find_element(By.CSS_SELECTOR, "#coverage .facts").text
    assert "14 entries stored of 26 entries" in facts and "lag 5 entries" in facts, facts
    browser.save_screenshot(str(output_dir / "04-journal-coverage.png"))
