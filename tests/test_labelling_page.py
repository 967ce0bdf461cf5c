"""The labelling page in a real headless Chromium: 20 requests answered by keys and clicks."""

import time

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import need
from tests.test_http_api import Daemon, _records


def _browser():
    options = Options()
    options.binary_location = need("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(need("chromedriver")), options=options)


def test_a_person_answers_twenty_requests_in_the_browser(tmp_path):
    d = Daemon(tmp_path, "--classes", "hi,lo")
    browser = _browser()
    try:
        d.feed(_records(600))
        d.open_requests(25)
        browser.get(f"{d.base}/#token={d.token}")
        wait = WebDriverWait(browser, 20)
        answered = {}
        for i in range(20):
            wait.until(lambda b: b.find_element(By.ID, "rid").text
                       and b.find_element(By.ID, "rid").text not in answered)  # fmt: skip
            rid = browser.find_element(By.ID, "rid").text
            assert browser.find_element(By.ID, "why").text  # why it was asked
            x = float(browser.find_element(By.XPATH, "//th[text()='x']/../td").text)
            label = "hi" if x > 4 else "lo"
            if i % 2:  # a key for every other answer, a click for the rest
                browser.find_element(By.TAG_NAME, "body").send_keys("1" if label == "hi" else "2")
            else:
                browser.find_element(By.XPATH, f"//button[contains(., ': {label}')]").click()
            answered[rid] = label
        # skip one, answer one and take it back: neither is sent
        wait.until(lambda b: b.find_element(By.ID, "rid").text not in answered)
        browser.find_element(By.TAG_NAME, "body").send_keys("s")
        wait.until(lambda b: b.find_element(By.ID, "rid").text not in answered)
        browser.find_element(By.TAG_NAME, "body").send_keys("2")
        browser.find_element(By.TAG_NAME, "body").send_keys("u")
        assert "taken back" in browser.find_element(By.ID, "held").text
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # the last answer is sent after its hold
            if browser.find_element(By.ID, "given").text == "20":
                break
            time.sleep(0.2)
        assert browser.find_element(By.ID, "given").text == "20"
        assert "%" in browser.find_element(By.ID, "spent").text
    finally:
        browser.quit()
        d.stop()
    from streamal import checkpoint

    state = checkpoint.load(tmp_path / "s.ckpt", checkpoint.resolve_key(tmp_path / "s.ckpt"))
    learner = state["learner"]
    answered_ids = {rid for rid, why in learner["pending"].closed_entries() if why == "answered"}
    assert answered_ids == set(answered)
    assert learner["labels_applied"] == 20
    assert dict(learner["label_counts"]) == {
        c: n for c, n in {"hi": sum(v == "hi" for v in answered.values()),
                          "lo": sum(v == "lo" for v in answered.values())}.items() if n
    }  # fmt: skip
