"""The Alerts page in headless Chromium: an editor creates a rule from the form, sees its state and the
sparkline of its recent values, opens its history, silences it and deletes it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from test_browser import sign_in

from webui.alerts.store import AlertStore

pytestmark = pytest.mark.browser


def wait(browser, condition, timeout=15):
    """Until `condition`; the page reloads after each save, so an element may go stale meanwhile."""
    return WebDriverWait(browser, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(condition)


def test_an_editor_manages_a_rule_and_sees_its_sparkline_and_history(browser, live_server, db, output_dir: Path):
    sign_in(browser, live_server, "/alerts")
    browser.get(f"{live_server}/alerts")
    form = browser.find_element(By.ID, "rule-form")
    form.find_element(By.NAME, "name").send_keys("checkout-errors")
    form.find_element(By.NAME, "query").send_keys("level:error app:checkout")
    form.find_element(By.NAME, "window").clear()
    form.find_element(By.NAME, "window").send_keys("10m")
    form.find_element(By.NAME, "threshold").clear()
    form.find_element(By.NAME, "threshold").send_keys("3")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    row = wait(browser, ec.presence_of_element_located((By.CSS_SELECTOR, "#rules tr.rule")))
    assert "checkout-errors" in row.text and "ok" in row.text and "above 3" in row.text

    # what the evaluator writes after some evaluations: values, then a firing with its history
    store = AlertStore(db)
    rule_id = row.get_attribute("data-id")
    now = datetime.now(UTC)
    for i, value in enumerate((0, 1, 2, 5, 7)):
        store.save_state(rule_id, {"rule": "checkout-errors", "state": "firing" if value > 3 else "ok",
                                   "value": float(value), "last_eval": now}, {"t": now + timedelta(seconds=i),
                                                                             "v": float(value)}, [], None)
    store.history_c.insert_one({"rule_id": rule_id, "rule": "checkout-errors", "at": now, "from": "ok",
                                "to": "firing", "value": 5.0})
    browser.get(f"{live_server}/alerts")
    wait(browser, ec.presence_of_element_located((By.CSS_SELECTOR, "td.spark svg polyline")))
    points = browser.find_element(By.CSS_SELECTOR, "td.spark svg polyline").get_attribute("points").split()
    assert len(points) == 5, points
    assert browser.find_elements(By.CSS_SELECTOR, "td.spark svg line.threshold")
    assert browser.find_element(By.CSS_SELECTOR, "#rules .state").text == "firing"

    browser.find_element(By.CSS_SELECTOR, "button.show-history").click()
    wait(browser, ec.visibility_of_element_located((By.CSS_SELECTOR, "#history")))
    wait(browser, lambda b: "firing" in b.find_element(By.CSS_SELECTOR, "#history .changes").text)
    browser.save_screenshot(str(output_dir / "alerts.png"))

    silence = browser.find_element(By.ID, "silence-form")
    silence.find_element(By.CSS_SELECTOR, "select[name=rule] option[value='checkout-errors']").click()
    silence.find_element(By.NAME, "comment").send_keys("deploying checkout")
    silence.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(browser, lambda b: "deploying checkout" in b.find_element(By.ID, "silences").text)

    browser.find_element(By.CSS_SELECTOR, "button.delete-rule").click()
    wait(browser, ec.alert_is_present()).accept()
    wait(browser, lambda b: "No alert rules yet" in b.find_element(By.ID, "rules").text)
    assert store.rules() == []
