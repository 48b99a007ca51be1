#!/usr/bin/env python3
"""Drives rdv's web panel in a real headless Chromium (WebDriver, Debian's chromium-driver).

    panel_driver.py BASE_URL TOKEN ROOM

Signs in with TOKEN, opens ROOM from the room list, prints "room", then takes one command
per line on standard input and answers with one line on standard output:

    rows N                  waits until the participant table has N rows -> "rows N"
    click ACCOUNT ACTION    clicks the row's button[data-action=ACTION]   -> "clicked"
    label ACCOUNT ACTION T  waits until that button's text is T            -> "label T"
    quit

A wait that times out (20 s) or a missing element prints "error: ..." and exits 1.
"""

import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

WAIT = 20
# The panel redraws its table on every room event: an element found a moment ago may be gone.
REDRAWN = (NoSuchElementException, StaleElementReferenceException)


def say(line):
    print(line, flush=True)


def click(browser, locator):
    """Clicks the element now at `locator`; False (try again) if a redraw replaced it."""
    try:
        element = browser.find_element(*locator)
        if not (element.is_displayed() and element.is_enabled()):
            return False
        element.click()
        return True
    except REDRAWN:
        return False


def main():
    base, token, room = sys.argv[1:4]
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1024,768", "--mute-audio", "--disable-audio-output"):
        options.add_argument(arg)
    browser = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    wait = WebDriverWait(browser, WAIT, ignored_exceptions=REDRAWN)
    try:
        browser.get(base + "/panel/")
        wait.until(ready.visibility_of_element_located((By.ID, "token"))).send_keys(token)
        browser.find_element(By.ID, "sign-in").click()
        room_button = (By.CSS_SELECTOR, '#room-list button[data-room="%s"]' % room)
        wait.until(ready.element_to_be_clickable(room_button)).click()
        wait.until(ready.visibility_of_element_located((By.ID, "room-view")))
        say("room")
        for line in sys.stdin:
            words = line.split(maxsplit=3)
            if not words or words[0] == "quit":
                break
            if words[0] == "rows":
                count = int(words[1])
                rows = (By.CSS_SELECTOR, "#participants tbody tr[data-account]")
                wait.until(lambda b: len(b.find_elements(*rows)) == count)
                say("rows %d" % count)
            elif words[0] in ("click", "label"):
                account, action = words[1], words[2]
                button = (By.CSS_SELECTOR, '#participants tr[data-account="%s"] '
                          'button[data-action="%s"]' % (account, action))
                if words[0] == "click":
                    wait.until(lambda b: click(b, button))
                    say("clicked")
                else:
                    text = words[3].strip()
                    wait.until(lambda b: b.find_element(*button).text.strip() == text)
                    say("label %s" % text)
            else:
                say("error: unknown command %r" % line)
                return 1
        return 0
    except Exception as error:  # a failed wait or a missing element ends the run
        say("error: %s: %s" % (type(error).__name__, str(error).splitlines()[0] if str(error) else ""))
        return 1
    finally:
        browser.quit()


sys.exit(main())
