"""Registered names in the page, in Debian's chromium: a visible way to register, the passphrase asked when needed."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from support.tracker import RunningTracker
from support.web import WAIT_MS, Browser, enter_name, enter_password, field, join, log, online, open_page

PASSPHRASE = "correct horse battery"


def register(page: Page, passphrase: str, again: str) -> None:
    page.get_by_role("button", name="Register this name").click()
    field(page, "New passphrase").fill(passphrase)
    field(page, "The same again").fill(again)
    page.get_by_role("button", name="Register", exact=True).click()


def test_the_page_registers_a_name_and_a_second_browser_signs_in_to_it(
    browser: Browser, tracker: RunningTracker
) -> None:
    first = open_page(browser(), tracker)
    join(first, tracker, "webby")
    register(first, PASSPHRASE, PASSPHRASE + "!")
    expect(first.locator("#register-problem")).to_have_text("The two passphrases differ.")
    first.get_by_role("button", name="Cancel").click()
    register(first, PASSPHRASE, PASSPHRASE)
    expect(log(first)).to_contain_text("webby is registered", timeout=WAIT_MS)
    expect(first.get_by_role("button", name="Register this name")).to_be_hidden()
    first.get_by_role("button", name="Leave", exact=True).click()
    expect(log(first)).to_contain_text("You left the chat.", timeout=WAIT_MS)

    second = open_page(browser(), tracker)
    enter_password(second, tracker.password)
    enter_name(second, "WEBBY")  # a lookalike is the same account
    expect(field(second, "Passphrase")).to_be_visible(timeout=WAIT_MS)
    field(second, "Passphrase").fill("not the passphrase")
    field(second, "Passphrase").press("Enter")
    expect(second.locator("#name-problem")).to_have_text("Wrong passphrase.", timeout=WAIT_MS)
    field(second, "Passphrase").fill(PASSPHRASE)
    field(second, "Passphrase").press("Enter")
    expect(field(second, "Message")).to_be_visible(timeout=WAIT_MS)
    expect(online(second)).to_contain_text("webby", timeout=WAIT_MS)
    expect(second.get_by_role("button", name="Register this name")).to_be_hidden()
    assert not any(PASSPHRASE in line for line in tracker.output)
