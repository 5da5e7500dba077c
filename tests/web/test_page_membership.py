"""Membership that outlives the connection, in Debian's chromium: what was missed, the read position, presence, part."""

from __future__ import annotations

import json
from typing import Any

from playwright.sync_api import Page, WebSocket, expect

from support.tracker import RunningTracker
from support.web import WAIT_MS, Browser, JsonMember, enter_name, enter_password, field, join, log, online, open_page

PASSPHRASE = "correct horse battery"
MISSED = ["first while away", "second while away", "third while away"]


def register(page: Page) -> None:
    page.get_by_role("button", name="Register this name").click()
    field(page, "New passphrase").fill(PASSPHRASE)
    field(page, "The same again").fill(PASSPHRASE)
    page.get_by_role("button", name="Register", exact=True).click()
    expect(page.get_by_role("button", name="Leave for good")).to_be_visible()


def sign_in(page: Page, tracker: RunningTracker, name: str) -> WebSocket:
    """Password, name, passphrase, as a person types them; the page's WebSocket, once the room is shown."""
    with page.expect_websocket() as opened:
        enter_password(page, tracker.password)
    enter_name(page, name)
    field(page, "Passphrase").fill(PASSPHRASE)
    field(page, "Passphrase").press("Enter")
    expect(field(page, "Message")).to_be_visible()
    return opened.value


def said(page: Page) -> list[str]:
    return log(page).locator("li.message bdi.text").all_inner_texts()


def say(member: JsonMember, text: str) -> int:
    """``member`` says ``text``; its seq."""
    member.send({"type": "message", "text": text})
    return int(member.expect("message", text=text)["seq"])


def wait_for_read(ws: WebSocket, frames: list[dict[str, Any]], seq: int) -> None:
    """Until the page has sent a ``read`` at or past ``seq``.

    Playwright's sync API delivers events only inside its own calls, so none is lost between
    looking at what was sent so far and waiting for the next frame.
    """

    def reaches(frame: dict[str, Any]) -> bool:
        return frame.get("type") == "read" and int(frame["seq"]) >= seq

    if not any(reaches(frame) for frame in frames):
        ws.wait_for_event("framesent", lambda payload: reaches(json.loads(payload)), timeout=WAIT_MS)


def test_a_returning_member_sees_what_she_missed_once_in_order_and_her_read_position_moves(
    browser: Browser, tracker: RunningTracker
) -> None:
    bob = JsonMember(tracker, "bob")
    first = open_page(browser(), tracker)
    join(first, tracker, "webby")
    register(first)
    first.close()  # the tab: she goes offline and stays a member
    assert bob.expect("presence", name="webby")["online"] is False
    for text in MISSED:
        say(bob, text)

    second = open_page(browser(), tracker)
    frames: list[dict[str, Any]] = []
    ws = sign_in(second, tracker, "webby")
    ws.on("framesent", lambda payload: frames.append(json.loads(payload)))
    assert bob.expect("presence", name="webby")["online"] is True
    expect(log(second).locator(".unread-divider .text")).to_have_text(
        f"* {len(MISSED)} unread since you were last here"
    )
    expect(log(second)).to_contain_text("that is everything you missed")
    expect(log(second).locator("li.message bdi.text")).to_have_text(MISSED)  # in order, each once
    live = say(bob, "live after the catch-up")
    expect(log(second).locator("li.message bdi.text")).to_have_text([*MISSED, "live after the catch-up"])
    wait_for_read(ws, frames, live)
    second.get_by_role("button", name="Leave", exact=True).click()
    expect(log(second)).to_contain_text("You left the chat.")

    third = open_page(browser(), tracker)
    sign_in(third, tracker, "webby")
    expect(online(third)).to_contain_text("webby")
    expect(log(third).locator(".unread-divider")).to_have_count(0)
    assert said(third) == []
    third.get_by_role("button", name="Earlier messages").click()  # what she had read, from the journal
    expect(log(third).locator("li.message bdi.text")).to_have_text([*MISSED, "live after the catch-up"])
    assert first.errors == second.errors == third.errors == []  # type: ignore[attr-defined]
    bob.close()


def test_presence_the_offline_members_and_leaving_for_good(browser: Browser, tracker: RunningTracker) -> None:
    page = open_page(browser(), tracker)
    join(page, tracker, "webby")
    alpha = JsonMember(tracker, "alpha")
    alpha.send({"type": "register", "passphrase": PASSPHRASE})
    alpha.expect("registered")
    alpha.close()
    expect(log(page)).to_contain_text("alpha is offline")
    offline = page.get_by_role("list", name="Offline members")
    expect(offline).to_contain_text("alpha")
    expect(offline).to_contain_text("last seen")
    expect(online(page)).not_to_contain_text("alpha")

    expect(page.get_by_role("button", name="Leave for good")).to_be_hidden()  # a guest has no membership to end
    register(page)
    bob = JsonMember(tracker, "bob")
    page.get_by_role("button", name="Leave for good").click()
    page.get_by_role("button", name="Stay").click()
    expect(page.get_by_role("button", name="Yes, leave for good")).to_be_hidden()
    page.get_by_role("button", name="Leave for good").click()
    page.get_by_role("button", name="Yes, leave for good").click()
    assert bob.expect("left", name="webby")["reason"] == "part"
    expect(log(page)).to_contain_text("You left the chat for good.")
    expect(field(page, "Message")).to_be_disabled()
    assert page.errors == []  # type: ignore[attr-defined]
    bob.close()
