"""Devices in Debian's chromium: the kept device token, two browsers on one account, signing a device out."""

from __future__ import annotations

import json
from typing import Any

from playwright.sync_api import Page, WebSocket, expect

from support.tracker import RunningTracker
from support.web import (
    Browser,
    JsonMember,
    enter_name,
    enter_password,
    field,
    join,
    lines_with,
    log,
    open_page,
    type_line,
)

PASSPHRASE = "correct horse battery"
TOKENS_KEY = "groupchat.device-tokens"  # where logic.js DeviceTokens keeps them (docs/web.md#devices)
SIGNED_OUT = "This device was signed out; sign in again with your passphrase."


def kept_token(page: Page, name: str) -> str | None:
    """The device token this browser keeps for ``name`` (None: none)."""
    stored = page.evaluate(f"() => localStorage.getItem({json.dumps(TOKENS_KEY)})")
    entry = json.loads(stored)["accounts"].get(name) if stored else None
    return None if entry is None else str(entry["token"])


def wait_for_token_other_than(page: Page, name: str, old: str | None) -> str:
    """Until this browser keeps a token for ``name`` that is not ``old``; that token."""
    page.wait_for_function(
        "([key, name, old]) => { const kept = JSON.parse(localStorage.getItem(key) || 'null');"
        " const entry = kept && kept.accounts[name]; return Boolean(entry && entry.token !== old); }",
        arg=[TOKENS_KEY, name, old],
    )
    token = kept_token(page, name)
    assert token is not None
    return token


def register(page: Page) -> None:
    page.get_by_role("button", name="Register this name").click()
    field(page, "New passphrase").fill(PASSPHRASE)
    field(page, "The same again").fill(PASSPHRASE)
    page.get_by_role("button", name="Register", exact=True).click()
    expect(page.get_by_role("button", name="Leave for good")).to_be_visible()


def sign_in_with_passphrase(page: Page, tracker: RunningTracker, name: str) -> None:
    enter_password(page, tracker.password)
    enter_name(page, name)
    field(page, "Passphrase").fill(PASSPHRASE)
    field(page, "Passphrase").press("Enter")
    expect(field(page, "Message")).to_be_visible()


def registered_account(tracker: RunningTracker, name: str) -> None:
    """``name`` made an account by a JSON member, who then goes."""
    owner = JsonMember(tracker, name)
    owner.send({"type": "register", "passphrase": PASSPHRASE})
    owner.expect("registered")
    owner.close()


def test_a_reloaded_page_signs_in_with_its_device_token_and_keeps_the_next_one(
    browser: Browser, tracker: RunningTracker
) -> None:
    page = open_page(browser(), tracker)
    join(page, tracker, "webby")
    register(page)
    first = wait_for_token_other_than(page, "webby", None)

    page.reload()
    sent: list[dict[str, Any]] = []
    with page.expect_websocket() as opened:
        enter_password(page, tracker.password)
    ws: WebSocket = opened.value
    ws.on("framesent", lambda payload: sent.append(json.loads(payload)))
    expect(field(page, "Name")).to_be_visible()
    expect(field(page, "Name")).to_have_value("webby")  # the name this browser is signed in to
    field(page, "Name").press("Enter")
    expect(field(page, "Message")).to_be_visible()
    expect(field(page, "Passphrase")).to_be_hidden()
    expect(page.get_by_role("button", name="Leave for good")).to_be_visible()  # signed in, not a guest
    joins = [frame for frame in sent if frame["type"] == "join"]
    assert joins == [{"type": "join", "name": "webby", "device_token": first}]
    second = wait_for_token_other_than(page, "webby", first)  # each token signs in once
    assert second != first
    assert first not in page.url and second not in page.url
    assert not any(first in line or second in line for line in tracker.output)

    page.evaluate(  # a spent token (a profile restored from a backup, say): refused, the passphrase is asked
        "([key, token]) => { const kept = JSON.parse(localStorage.getItem(key));"
        " kept.accounts.webby.token = token; localStorage.setItem(key, JSON.stringify(kept)); }",
        [TOKENS_KEY, first],
    )
    page.reload()
    enter_password(page, tracker.password)
    expect(field(page, "Name")).to_be_visible()  # the password answered: an Enter before it is lost
    expect(field(page, "Name")).to_have_value("webby")
    field(page, "Name").press("Enter")
    expect(page.locator("#name-problem")).to_have_text(
        "This browser is no longer signed in to this name: enter its passphrase."
    )
    field(page, "Passphrase").fill(PASSPHRASE)
    field(page, "Passphrase").press("Enter")
    expect(field(page, "Message")).to_be_visible()
    wait_for_token_other_than(page, "webby", first)
    assert page.errors == []  # type: ignore[attr-defined]


def test_two_browsers_on_one_account_both_chat_and_one_signs_the_other_out(
    browser: Browser, tracker: RunningTracker
) -> None:
    registered_account(tracker, "webby")
    first = open_page(browser(), tracker)
    sign_in_with_passphrase(first, tracker, "webby")
    second = open_page(browser(), tracker)
    sign_in_with_passphrase(second, tracker, "webby")
    bob = JsonMember(tracker, "bob")

    bob.say("hello to both of you")
    for page in (first, second):
        expect(lines_with(page, "hello to both of you")).to_have_count(1)
    type_line(first, "said in the first browser")
    expect(lines_with(second, "said in the first browser")).to_have_count(1)
    type_line(second, "said in the second browser")
    expect(lines_with(first, "said in the second browser")).to_have_count(1)
    bob.expect("message", text="said in the second browser")

    reconnections: list[WebSocket] = []

    def reconnected(ws: WebSocket) -> None:  # a bound list.append is no handler Playwright can wrap
        reconnections.append(ws)

    first.on("websocket", reconnected)
    second.get_by_role("button", name="Devices").click()
    devices = second.get_by_role("list", name="Signed-in devices").get_by_role("listitem")
    expect(devices).to_have_count(2)
    expect(devices.filter(has_text="this device")).to_have_count(1)
    expect(devices.first).to_contain_text("browser: ")
    devices.filter(has_not_text="this device").get_by_role("button", name="Sign out").click()
    expect(first.get_by_role("status")).to_have_text(SIGNED_OUT)
    expect(log(first)).to_contain_text(SIGNED_OUT)
    expect(field(first, "Message")).to_be_disabled()
    expect(devices).to_have_count(1)  # the list, asked again after the sign-out
    assert kept_token(first, "webby") is None
    assert kept_token(second, "webby") is not None

    type_line(second, "after the sign-out")  # once bob has it, the first browser would have had it too
    bob.expect("message", text="after the sign-out")
    expect(lines_with(second, "after the sign-out")).to_have_count(1)
    assert lines_with(first, "after the sign-out").count() == 0
    assert reconnections == []  # stays disconnected

    first.reload()
    enter_password(first, tracker.password)
    expect(field(first, "Name")).to_have_value("")
    enter_name(first, "webby")
    expect(field(first, "Passphrase")).to_be_visible()

    devices.get_by_role("button", name="Sign out this device").click()  # leaving a shared computer
    expect(second.get_by_role("status")).to_have_text(SIGNED_OUT)
    assert kept_token(second, "webby") is None
    assert first.errors == second.errors == []  # type: ignore[attr-defined]
    bob.close()
