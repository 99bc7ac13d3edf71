"""Browser test of the demo login page: codes, then a magic link opened after a mail scanner.

Usage: python3 tests/browser/login.py BASE_URL   (e.g. http://127.0.0.1:8080)

It drives Debian's headless Chromium (/usr/bin/chromium, /usr/bin/chromedriver) with Selenium 4.
A Rust test runs it as a child process and talks with it over stdin/stdout, one line each way:

  script -> test   "CODE? ann@example.com"   the test answers one line: the code sent to that address
  script -> test   "LINK? ann@example.com"   the test answers one line: the full magic-link URL
  script -> test   "STEP <text>"             progress only, no answer expected
  script -> test   "PASS"                    the last line on success (exit 0)
  script -> test   "FAIL <reason>"           the last line on failure (exit 1); the reason holds the
                                             page's #error and #status texts and the current URL

Nothing else is written to stdout (chromedriver's and Chromium's output go to /dev/null).
"""

import secrets
import shutil
import subprocess
import sys
import tempfile
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

TIMEOUT = 15
IGNORED = (NoSuchElementException, StaleElementReferenceException)


def say(line):
    print(line, flush=True)


def ask(kind, address):
    """Asks the test for the code or link ("CODE" / "LINK") sent to `address`."""
    say(f"{kind}? {address}")
    answer = sys.stdin.readline().strip()
    if not answer:
        raise RuntimeError(f"no answer to {kind}? on stdin")
    return answer


def check(condition, reason):
    if not condition:
        raise RuntimeError(reason)


def wrong_code(code):
    """A code of the same length and alphabet as `code`, with a different first character."""
    for c in code[1:]:  # a character the code itself uses is surely in the alphabet
        if c != code[0]:
            return c + code[1:]
    for group in ("0123456789", "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"):
        if code[0] in group:
            return group[(group.index(code[0]) + 1) % len(group)] + code[1:]
    raise RuntimeError(f"cannot make a wrong code from {code!r}")


class Page:
    def __init__(self, driver, base):
        self.d, self.base, self.home = driver, base, base + "/"

    def wait(self, condition, what):
        wait = WebDriverWait(self.d, TIMEOUT, ignored_exceptions=IGNORED)
        return wait.until(condition, message=f"timed out waiting for {what}")

    def text(self, id_):
        found = self.d.find_elements(By.ID, id_)
        return found[0].text.strip() if found else ""

    def shown(self, id_):
        found = self.d.find_elements(By.ID, id_)
        return bool(found) and found[0].is_displayed()

    def visible(self, id_):
        return self.wait(EC.visibility_of_element_located((By.ID, id_)), f"#{id_} visible")

    def type(self, id_, value):
        field = self.wait(EC.element_to_be_clickable((By.ID, id_)), f"#{id_} usable")
        field.clear()
        field.send_keys(value)

    def click(self, id_):
        self.wait(EC.element_to_be_clickable((By.ID, id_)), f"#{id_} clickable").click()

    def submit(self, id_, what):
        """Clicks a form's submit button and waits for the document the form navigates to.

        The old document is marked first, so the wait knows when a new one has loaded. While the
        form navigates, chromedriver can fail on the old button ("Node with given id does not
        belong to the document") even though the click went through; the wait for the new
        document decides, not that error.
        """
        button = self.wait(EC.element_to_be_clickable((By.ID, id_)), f"#{id_} clickable")
        self.d.execute_script("window.otpOldDocument = true")
        try:
            button.click()
        except WebDriverException:
            pass
        new_document = "return !window.otpOldDocument && document.readyState === 'complete'"
        wait = WebDriverWait(self.d, TIMEOUT, ignored_exceptions=(WebDriverException,))
        wait.until(lambda d: d.execute_script(new_document), message=f"timed out waiting for {what}")

    def on_home(self):
        return self.d.current_url.split("#")[0].split("?")[0] == self.home

    def signed_in_as(self, address):
        want = f"Signed in as {address}"
        self.wait(lambda d: self.shown("signed-in") and want in self.text("signed-in"), f"'{want}'")

    def send_code(self, address):
        self.d.get(self.home)
        self.visible("signed-out")
        self.type("email", address)
        self.click("send")
        self.wait(EC.text_to_be_present_in_element((By.ID, "status"), address), f"#status naming {address}")
        say(f"STEP code sent to {address}")

    def logout(self):
        self.click("logout")
        self.visible("signed-out")
        say("STEP signed out")

    def state(self):
        return f"#error={self.text('error')!r} #status={self.text('status')!r} url={self.d.current_url}"


def flow_codes(p):
    address = f"browser-{secrets.token_hex(4)}@example.com"
    p.send_code(address)
    code = ask("CODE", address)
    p.type("code", wrong_code(code))
    p.click("verify")
    p.wait(lambda d: "left" in p.text("attempts") and p.text("error"), "#attempts '... left' and #error")
    check("left" in p.text("attempts"), f"#attempts is {p.text('attempts')!r}")
    check(p.text("error"), "#error is empty after a wrong code")
    say(f"STEP wrong code refused: {p.text('error')} / {p.text('attempts')}")
    p.type("code", code)
    p.click("verify")
    p.signed_in_as(address)
    say(f"STEP signed in as {address} with the code")
    p.logout()
    p.d.refresh()
    p.visible("signed-out")
    check(not p.shown("signed-in"), "#signed-in visible after reload")
    status = p.d.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch('/api/session', {credentials: 'same-origin'}).then(r => done(r.status), e => done(String(e)));"
    )
    check(status == 401, f"GET /api/session after logout and reload answered {status}")
    say("STEP still signed out after reload")


def flow_link(p):
    address = f"browser-{secrets.token_hex(4)}@example.com"
    p.send_code(address)
    link = ask("LINK", address)
    for n in (1, 2):  # a mail scanner: plain GETs, no cookies; they must not use up the link
        with urllib.request.urlopen(link, timeout=TIMEOUT) as answer:
            body = answer.read().decode("utf-8", "replace")
            check(answer.status == 200, f"scanner GET {n} answered {answer.status}")
        check("Sign in as" in body, f"scanner GET {n}: no 'Sign in as' in the page")
    say("STEP scanner fetched the link twice")
    p.d.get(link)
    p.wait(lambda d: "Sign in as" in d.find_element(By.TAG_NAME, "body").text, "'Sign in as' on the link page")
    p.submit("confirm", "the answer to #confirm")
    p.wait(lambda d: p.on_home(), f"redirect to {p.home}")
    p.signed_in_as(address)
    say(f"STEP signed in as {address} with the link")
    p.logout()
    # The link is spent: clicking it again must not sign this browser in anew.
    p.d.get(link)
    if p.d.find_elements(By.ID, "confirm"):
        p.submit("confirm", "the answer to the second #confirm")
    check(not p.on_home(), f"a spent link redirected home: {p.d.current_url}")
    p.d.get(p.home)
    p.wait(lambda d: p.shown("signed-out"), "#signed-out after reusing a spent link")
    say("STEP a spent link does not sign in again")

def main():
    if len(sys.argv) != 2:
        say("FAIL usage: login.py BASE_URL")
        return 1
    profile = tempfile.mkdtemp(prefix="otp-browser-")
    driver = p = None
    try:
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                    f"--user-data-dir={profile}", "--window-size=1280,900"):
            options.add_argument(arg)
        service = Service(executable_path="/usr/bin/chromedriver", log_output=subprocess.DEVNULL)
        driver = webdriver.Chrome(service=service, options=options)
        driver.set_page_load_timeout(TIMEOUT)
        driver.set_script_timeout(TIMEOUT)
        p = Page(driver, sys.argv[1].rstrip("/"))
        say("STEP browser started")
        flow_codes(p)
        flow_link(p)
        say("PASS")
        return 0
    except Exception as err:  # any failure: one FAIL line with what the page showed
        message = (getattr(err, "msg", None) or str(err)).strip().splitlines() or [repr(err)]
        reason = f"{type(err).__name__}: {message[0]}"
        if p is not None:
            try:
                reason += f" | {p.state()}"
            except Exception:
                pass
        say(f"FAIL {reason}")
        return 1
    finally:
        if driver is not None:
            try:
                driver.quit()
            except Exception:
                pass
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
