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


def test_a_second_opinion_is_shown_to_another_person_not_the_first(tmp_path):
    import random

    from tests.test_http_api import _call

    d = Daemon(tmp_path, "--classes", "hi,lo", "--second-opinion-below", "0.8")
    browser = _browser()
    try:
        d.feed(_records(2000))
        requests = d.open_requests(200)
        rng = random.Random(1)

        def answer(r, who, careful):
            right = "hi" if r["features"]["x"] > 4 else "lo"
            label = right if careful else rng.choice(["hi", "lo"])
            body = {"request_id": r["request_id"], "label": label, "annotator": who}
            return _call(d.base, "/labels", d.token, body)[1]["results"][0]["outcome"]

        for r in requests[:120]:
            answer(r, "careful", True)
        outcomes = [answer(r, "careless", False) for r in requests[120:200]]
        assert "held" in outcomes  # careless's answers now wait for a second opinion
        held = {r["request_id"] for r in d.open_requests(1) if r["second_opinion"]}
        assert held and all(
            r["exclude_annotator"] == "careless" for r in d.open_requests(1) if r["second_opinion"]
        )
        seen = set()
        browser.get(f"{d.base}/#token={d.token}")
        wait = WebDriverWait(browser, 20)
        name = wait.until(lambda b: b.find_element(By.ID, "who"))
        name.clear()
        name.send_keys("careless\n")
        for _ in range(10):  # what careless is shown: never a request waiting on them
            wait.until(lambda b: (t := b.find_element(By.ID, "rid").text) and t not in seen)
            seen.add(browser.find_element(By.ID, "rid").text)
            browser.find_element(By.ID, "skip").click()
        assert not seen & held
        name.clear()
        name.send_keys("careful\n")
        browser.refresh()  # a fresh page, nothing skipped: the oldest held request comes
        first_held = next(r for r in d.open_requests(1) if r["second_opinion"])
        wait.until(lambda b: b.find_element(By.ID, "rid").text)
        shown = [browser.find_element(By.ID, "rid").text]
        while shown[-1] != first_held["request_id"]:
            browser.find_element(By.ID, "skip").click()
            wait.until(lambda b, last=shown[-1]: b.find_element(By.ID, "rid").text != last)
            shown.append(browser.find_element(By.ID, "rid").text)
        assert "second opinion" in browser.find_element(By.ID, "second").text
    finally:
        browser.quit()
        d.stop()
