#!/usr/bin/env python3
"""The web console in Debian's headless Chromium against a real deployment
(deployment.py): a wrong token is refused, the operator logs in, sees the
overview, a program created through the API appears in the list by the
console's own refresh, its page shows it running, the Cancel button cancels
it, and the page shows `cancelled`, all without a reload. Then the attempt
history on the program page: a program whose first step failed twice before
it finished shows its four attempts and the reason line; one that errored
shows its long error shortened, whole when expanded, never parsed as markup.

Screenshots (overview.png, list.png, program-running.png,
program-cancelled.png, login-error.png, program-attempts.png,
program-attempts-errored.png) go to PE_TEST_ARTIFACTS (default:
<build dir>/test-artifacts/console); with PE_UPDATE_DOC_SCREENSHOTS=1 the
overview and the cancelled program are also copied to docs/console/.

Exits 1 on a failure, 77 (skipped) locally when RabbitMQ, Chromium or a
Python module is missing (under CI=true: 1).

    python3 tests/web/console_test.py --binary build/test/daemon/program-executor \
        --plugin-dir build/test/plugins/demo
"""

import argparse
import os
import shutil
import sys
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import deployment  # noqa: E402

try:
    import requests
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError as e:  # Debian: python3-selenium python3-requests
    deployment.skip_or_fail(f"{e.name} is missing (apt-get install python3-selenium "
                            "python3-requests)")

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT_SECONDS = 30
SCREENSHOTS = ("overview.png", "list.png", "program-running.png", "program-cancelled.png",
               "login-error.png", "program-attempts.png", "program-attempts-errored.png")
# An error the page must show as text, long and on several lines: shortened in
# its row, whole when expanded, its markup never parsed.
LONG_ERROR = ("<img src=x id=injected> upstream refused the batch: " + "x" * 150 +
              "\nline 2 of the error\nline 3 of the error")


def step(text):
    print(f"console: {text}", flush=True)


class Console:
    def __init__(self, deploy, artifacts):
        self.deploy = deploy
        self.artifacts = artifacts
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for argument in ("--headless=new", "--no-sandbox",  # CI runs as root
                         "--window-size=1280,900", "--disable-dev-shm-usage", "--disable-gpu",
                         "--no-first-run", "--no-default-browser-check", "--lang=en-US",
                         "--force-device-scale-factor=1"):
            options.add_argument(argument)
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.driver.set_window_size(1280, 900)
        self.wait = WebDriverWait(self.driver, WAIT_SECONDS)

    def quit(self):
        self.driver.quit()

    def screenshot(self, name):
        path = self.artifacts / name
        self.driver.save_screenshot(str(path))
        step(f"screenshot {path}")

    def element(self, css):
        return self.wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, css)),
                               f"no element {css} within {WAIT_SECONDS} s")

    def visible(self, css):
        return self.wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, css)),
                               f"{css} not visible within {WAIT_SECONDS} s")

    def click(self, css):
        """Clicks `css` once it is clickable; the live refresh may replace the
        element between finding and clicking it, so a stale one is found again."""
        def clicked(driver):
            found = driver.find_elements(By.CSS_SELECTOR, css)
            if not found or not found[0].is_displayed() or not found[0].is_enabled():
                return False
            found[0].click()
            return True
        WebDriverWait(self.driver, WAIT_SECONDS, ignored_exceptions=(
            StaleElementReferenceException,)).until(clicked, f"could not click {css}")

    def text_is(self, css, expected):
        """Waits until the text of `css` is `expected`."""
        def has_text(driver):
            found = driver.find_elements(By.CSS_SELECTOR, css)
            return bool(found) and found[0].text.strip() == expected
        try:
            WebDriverWait(self.driver, WAIT_SECONDS, ignored_exceptions=(
                StaleElementReferenceException,)).until(has_text)
        except TimeoutException:
            found = self.driver.find_elements(By.CSS_SELECTOR, css)
            now = found[0].text.strip() if found else "(no such element)"
            raise AssertionError(f"{css} is {now!r}, not {expected!r}, after {WAIT_SECONDS} s")

    def mark_page(self):
        """A marker that only a reload removes."""
        self.driver.execute_script("window.__peNoReload = 'still here';")

    def assert_not_reloaded(self, what):
        marker = self.driver.execute_script("return window.__peNoReload || null;")
        assert marker == "still here", f"the page was reloaded ({what})"

    def accept_dialog_if_any(self):
        """Accepts a confirm() the console may ask before acting."""
        try:
            WebDriverWait(self.driver, 2).until(ec.alert_is_present())
        except TimeoutException:
            return
        self.driver.switch_to.alert.accept()


def login(console, token):
    field = console.visible("#token-input")
    field.clear()
    field.send_keys(token)
    console.click("#login-button")


def create(deploy, body):
    """A program created through the API (not the console); its run id."""
    r = requests.post(deploy.url("/api/v1/programs"), json=body, timeout=30,
                      headers={"Authorization": f"Bearer {deploy.operator_token}"})
    assert r.status_code == 201, f"POST /api/v1/programs: {r.status_code} {r.text[:300]}"
    return r.json()["runId"]


def api_get(deploy, path):
    r = requests.get(deploy.url(path), timeout=30,
                     headers={"Authorization": f"Bearer {deploy.viewer_token}"})
    assert r.status_code == 200, f"GET {path}: {r.status_code} {r.text[:300]}"
    return r.json()


def attempt_rows(console, count):
    """Waits until the attempts table has `count` rows; the rows' cells as text."""
    css = "#program-attempts tbody tr.attempt"

    def rows(driver):
        found = driver.find_elements(By.CSS_SELECTOR, css)
        if len(found) != count:
            return False
        return [[cell.text.strip() for cell in row.find_elements(By.TAG_NAME, "td")]
                + [row.get_attribute("data-outcome")] for row in found]
    try:
        return WebDriverWait(console.driver, WAIT_SECONDS, ignored_exceptions=(
            StaleElementReferenceException,)).until(rows)
    except TimeoutException:
        now = len(console.driver.find_elements(By.CSS_SELECTOR, css))
        raise AssertionError(f"{css}: {now} rows, not {count}, after {WAIT_SECONDS} s")


def open_program(console, run_id):
    """Opens a program's page from the list, as a user does."""
    console.click("#nav-programs")
    row = f'#programs-table tr[data-run-id="{run_id}"]'
    console.element(row)
    console.click(f"{row} a")
    console.text_is("#program-run-id", run_id)


def attempt_timeline(console, deploy, retried, errored):
    """The program page's attempt table and reason line, for a program whose
    first step failed twice before it finished, and for one that errored with
    a long error."""
    step(f"{retried} (demo.flaky failing twice, then demo.noop): its attempts")
    open_program(console, retried)
    console.text_is("#program-state", "finished")
    rows = attempt_rows(console, 4)
    # Columns: step (from 1), job, attempt, outcome, ran on, started, duration, error; data-outcome.
    seen = [(r[0], r[1], r[2], r[3], r[7], r[8]) for r in rows]
    assert seen == [("1", "demo.flaky", "1", "retry", "flaky failure 1 of 2", "retry"),
                    ("1", "demo.flaky", "2", "retry", "flaky failure 2 of 2", "retry"),
                    ("1", "demo.flaky", "3", "finished", "", "finished"),
                    ("2", "demo.noop", "1", "finished", "", "finished")], \
        f"the attempts table shows {seen}"
    history = api_get(deploy, f"/api/v1/programs/{retried}/attempts")
    for row, attempt in zip(rows, history["attempts"]):
        assert row[4] == attempt["worker"], f"ran on {row[4]!r}, the API says {attempt['worker']!r}"
    console.text_is("#program-reason", history["reason"])
    assert history["reason"].startswith("finished: "), f"reason {history['reason']!r}"
    console.text_is("#program-attempts-count", "(4)")
    colours = {outcome: console.element(f"#program-attempts .outcome-{outcome}")
               .value_of_css_property("background-color") for outcome in ("retry", "finished")}
    assert colours["retry"] != colours["finished"], f"retry and finished look alike: {colours}"
    console.assert_not_reloaded("attempts")
    console.screenshot("program-attempts.png")

    step(f"{errored} (demo.flaky once, then demo.fail with a long error): shortened, expandable")
    open_program(console, errored)
    console.text_is("#program-state", "errored")
    rows = attempt_rows(console, 3)
    assert [r[8] for r in rows] == ["retry", "finished", "errored"], f"outcomes {rows}"
    assert [r[0] for r in rows] == ["1", "1", "2"], f"steps {rows}"
    first_line = LONG_ERROR.split("\n", 1)[0]
    cell = console.element('#program-attempts tr[data-outcome="errored"] details.attempt-error')
    summary = cell.find_element(By.TAG_NAME, "summary")
    assert summary.text.strip() == first_line[:120] + "...", f"shortened error {summary.text!r}"
    type_cell = console.element('#program-attempts tr[data-outcome="errored"] td.error-text')
    assert type_cell.get_attribute("title") == "std::runtime_error", \
        f"the exception type's tooltip {type_cell.get_attribute('title')!r}"
    whole = cell.find_element(By.TAG_NAME, "pre")
    assert not whole.is_displayed(), "the whole error shows before it was expanded"
    summary.click()
    console.wait.until(lambda d: whole.is_displayed(), "the whole error did not expand")
    assert whole.get_attribute("textContent") == LONG_ERROR, \
        f"expanded error {whole.get_attribute('textContent')!r}"
    assert not console.driver.find_elements(By.CSS_SELECTOR, "#injected"), \
        "the error's markup was parsed into the page"
    history = api_get(deploy, f"/api/v1/programs/{errored}/attempts")
    console.text_is("#program-reason", history["reason"])
    assert history["reason"].startswith("errored at step 2 of 2 (demo.fail)"), history["reason"]
    console.assert_not_reloaded("errored attempts")
    console.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", cell)
    console.screenshot("program-attempts-errored.png")


def scenario(console, deploy):
    driver = console.driver
    driver.get(deploy.url("/"))
    step("a wrong token shows #login-error")
    login(console, "not-a-token-" + "x" * 24)
    console.visible("#login-error")
    console.wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#login-error").text.strip(),
                       "#login-error stayed empty")
    step(f"#login-error: {console.element('#login-error').text.strip()!r}")
    console.screenshot("login-error.png")

    step("the operator logs in and sees the overview")
    login(console, deploy.operator_token)
    console.visible("#count-running")
    console.text_is("#count-running", "0")
    console.visible("#throughput-chart")
    console.element("#recent-errors")
    console.mark_page()

    step("programs that finish and one that fails show up in the counts and the errors")
    for _ in range(3):
        create(deploy, {"jobs": ["demo.count", "demo.noop"]})
    failed = create(deploy, {"jobs": ["demo.noop", "demo.fail"], "jobData": {
        "demo.fail": {"message": "upstream answered 503 Service Unavailable"}}})
    console.text_is("#count-finished", "3")
    console.text_is("#count-errored", "1")
    console.element(f'#recent-errors tr[data-run-id="{failed}"]')
    # Two programs that retry, for the attempt history at the end: their retries
    # (1 s each) run meanwhile.
    retried = create(deploy, {"jobs": ["demo.flaky", "demo.noop"],
                              "jobData": {"demo.flaky": {"failures": 2}}})
    errored = create(deploy, {"jobs": ["demo.flaky", "demo.fail"], "jobData": {
        "demo.flaky": {"failures": 1}, "demo.fail": {"message": LONG_ERROR}}})

    # A program that stays running (demo.sleep, 10 minutes; interruptible, so
    # the daemon hands it back at once when the test stops it).
    run_id = create(deploy, {"jobs": ["demo.sleep", "demo.noop"],
                             "programData": {"from": "console_test"},
                             "jobData": {"demo.sleep": {"ms": 600000, "interruptible": True}}})
    step(f"created {run_id}; the overview counts it by its own refresh")
    console.text_is("#count-running", "1")
    console.screenshot("overview.png")

    step("the list shows it by its own refresh")
    console.click("#nav-programs")
    console.element("#programs-table")
    # Another program created while the list is shown appears without a reload.
    later = create(deploy, {"jobs": ["demo.noop"]})
    row = f'#programs-table tr[data-run-id="{run_id}"]'
    console.element(row)
    console.element(f'#programs-table tr[data-run-id="{later}"]')
    console.assert_not_reloaded("list")
    console.screenshot("list.png")

    step("its page shows it running")
    console.click(f"{row} a")
    console.text_is("#program-run-id", run_id)
    console.text_is("#program-state", "running")
    console.element("#program-jobs")
    console.visible("#cancel-button")
    console.screenshot("program-running.png")

    step("Cancel: the page shows cancelled")
    console.click("#cancel-button")
    console.accept_dialog_if_any()
    console.text_is("#program-state", "cancelled")
    console.visible("#action-message")
    console.visible("#resume-button")
    console.assert_not_reloaded("cancel")
    r = requests.get(deploy.url(f"/api/v1/programs/{run_id}"), timeout=30,
                     headers={"Authorization": f"Bearer {deploy.viewer_token}"})
    assert r.status_code == 200 and r.json()["state"] == "cancelled", \
        f"the API says {r.status_code} {r.text[:300]}"
    console.screenshot("program-cancelled.png")

    attempt_timeline(console, deploy, retried, errored)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    deployment.add_arguments(parser)
    parser.add_argument("--artifacts", default=None,
                        help="screenshot directory (env PE_TEST_ARTIFACTS wins; default: "
                             "<build dir>/test-artifacts/console)")
    args = parser.parse_args()
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            deployment.skip_or_fail(f"{path} is missing (apt-get install chromium chromium-driver)")
    artifacts = Path(os.environ.get("PE_TEST_ARTIFACTS") or args.artifacts or
                     Path(args.binary).resolve().parents[1] / "test-artifacts" / "console")
    # One folder per database pass of .ci/test, so no pass overwrites another's pictures.
    artifacts = artifacts / os.environ.get("PE_TEST_DATABASE", "sqlite3")
    artifacts.mkdir(parents=True, exist_ok=True)
    for name in SCREENSHOTS:  # no stale picture of an earlier run passes for this one's
        (artifacts / name).unlink(missing_ok=True)

    failed = False
    with deployment.Deployment(args.binary, args.plugin_dir, name="webui") as deploy:
        console = Console(deploy, artifacts)
        try:
            scenario(console, deploy)
        except Exception:  # noqa: BLE001 - report, keep a picture of where it stood
            failed = True
            traceback.print_exc()
            try:
                console.screenshot("failure.png")
                step(f"browser log: {console.driver.get_log('browser')}")
            except Exception:  # noqa: BLE001
                pass
        finally:
            console.quit()
    if failed:
        print("console test: FAILED", file=sys.stderr)
        return 1
    if os.environ.get("PE_UPDATE_DOC_SCREENSHOTS") == "1":
        docs = deployment.SOURCE_DIR / "docs" / "console"
        docs.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(artifacts / "overview.png", docs / "overview.png")
        shutil.copyfile(artifacts / "program-cancelled.png", docs / "program.png")
        step(f"copied overview.png and program.png to {docs}")
    print("console test: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
