"""Rooms and direct messages on the page, in Debian's chromium, on a real tracker (docs/web.md#rooms)."""

from __future__ import annotations

import json
import signal
from typing import Any

from playwright.sync_api import Locator, Page, expect

from support.tracker import RunningTracker, StartTracker, launch_tracker
from support.web import (
    Browser,
    JsonMember,
    enter_name,
    enter_password,
    field,
    join,
    lines_with,
    log,
    online,
    open_page,
    type_line,
)

PASSPHRASE = "correct horse battery"


def place(page: Page, label: str) -> Locator:
    """The button of a room or conversation in the page's list."""
    return page.get_by_role("list", name="Rooms and conversations").get_by_role("button", name=label)


def badge(page: Page, label: str) -> Locator:
    return place(page, label).locator(".badge")


def shown(page: Page) -> Locator:
    """The name of the room or conversation the page shows."""
    return page.locator("#place-title")


def enter_room(member: JsonMember, room: str) -> None:
    member.send({"type": "join", "room": room})
    member.expect("entered", room=room)


def frames_until(member: JsonMember, own_text: str) -> list[dict[str, Any]]:
    """The frames ``member`` receives before the echo of her message ``own_text``."""
    frames: list[dict[str, Any]] = []
    while (frame := member.recv())["type"] != "message" or frame.get("text") != own_text:
        frames.append(frame)
    return frames


def join_room_from_the_page(page: Page, room: str, private: bool = False) -> None:
    field(page, "Room name").fill(room)
    if private:
        page.get_by_label("Private (by invitation)").check()
    page.get_by_role("button", name="Join room").click()
    expect(shown(page)).to_have_text(room)


def test_each_room_shows_its_own_messages_and_the_others_count_unread(
    browser: Browser, tracker: RunningTracker
) -> None:
    """A message in #dev is in #dev's view only; the page sends with room; #general gets a badge; no reload."""
    carol = JsonMember(tracker, "carol")
    page = open_page(browser(), tracker)
    try:
        join(page, tracker, "webby")
        enter_room(carol, "#dev")
        page.evaluate("window.sameDocument = true")  # gone if anything reloads the page
        join_room_from_the_page(page, "#dev")
        expect(place(page, "#general")).to_be_visible()
        expect(online(page)).to_contain_text("carol")

        carol.send({"type": "message", "room": "#dev", "text": "only in dev"})
        expect(lines_with(page, "only in dev")).to_have_count(1)
        type_line(page, "webby in dev")
        carol.expect("message", room="#dev", name="webby", text="webby in dev")

        carol.send({"type": "message", "text": "meanwhile in general"})
        expect(badge(page, "#general")).to_have_text("1")
        expect(lines_with(page, "meanwhile in general")).to_have_count(0)  # not in #dev's view

        place(page, "#general").click()
        expect(shown(page)).to_have_text("#general")
        expect(badge(page, "#general")).to_have_count(0)
        expect(lines_with(page, "meanwhile in general")).to_have_count(1)
        expect(lines_with(page, "only in dev")).to_have_count(0)
        type_line(page, "webby in general")
        frame = carol.expect("message", name="webby", text="webby in general")
        assert "room" not in frame  # the default room's events and requests carry none

        carol.send({"type": "message", "room": "#dev", "text": "dev again"})
        expect(badge(page, "#dev")).to_have_text("1")
        place(page, "#dev").click()
        expect(lines_with(page, "dev again")).to_have_count(1)
        assert page.evaluate("window.sameDocument") is True

        type_line(page, "/part #dev")  # the command, as in the terminal client
        carol.expect("left", room="#dev", name="webby", reason="part")
        expect(place(page, "#dev")).to_have_count(0)
        expect(shown(page)).to_have_text("#general")
        assert page.errors == []  # type: ignore[attr-defined]
    finally:
        carol.close()


def test_the_url_fragment_selects_the_room_on_load(browser: Browser, tracker: RunningTracker) -> None:
    """Opened at /#room=dev, the page enters #dev and shows it; switching rewrites the fragment."""
    carol = JsonMember(tracker, "carol")
    context = browser()
    page = context.new_page()
    page.goto(tracker.http_url + "/#room=dev")
    try:
        enter_room(carol, "#dev")
        join(page, tracker, "webby")
        expect(shown(page)).to_have_text("#dev")
        carol.expect("joined", room="#dev", name="webby")
        carol.send({"type": "message", "room": "#dev", "text": "found by its link"})
        expect(lines_with(page, "found by its link")).to_have_count(1)
        place(page, "#general").click()
        expect(page).to_have_url(tracker.http_url + "/")
        place(page, "#dev").click()
        expect(page).to_have_url(tracker.http_url + "/#room=dev")
    finally:
        carol.close()


def test_a_direct_message_between_two_pages(browser: Browser, tracker: RunningTracker) -> None:
    """A name in the member list opens the conversation; the other page gets a badge on it; replies come back."""
    alice = open_page(browser(), tracker)
    bob = open_page(browser(), tracker)
    carol = JsonMember(tracker, "carol")
    try:
        join(alice, tracker, "alice")
        join(bob, tracker, "bob")
        expect(online(alice)).to_contain_text("bob")
        online(alice).get_by_role("button", name="bob").click()
        expect(shown(alice)).to_have_text("@bob")
        expect(alice).to_have_url(tracker.http_url + "/#dm=bob")
        type_line(alice, "just between us")
        expect(lines_with(alice, "just between us")).to_have_count(1)

        expect(badge(bob, "@alice")).to_have_text("1")
        expect(lines_with(bob, "just between us")).to_have_count(0)  # not in the default room's view
        place(bob, "@alice").click()
        expect(lines_with(bob, "just between us")).to_have_count(1)
        type_line(bob, "agreed")
        expect(lines_with(alice, "agreed")).to_have_count(1)
        place(alice, "#general").click()
        type_line(alice, "/msg bob sent with /msg")  # opens (here: shows) the conversation and sends
        expect(shown(alice)).to_have_text("@bob")
        expect(lines_with(bob, "sent with /msg")).to_have_count(1)

        # carol got neither: everything sent to her before her own next message's echo is a room's
        carol.send({"type": "message", "text": "carol was here"})
        before_echo = frames_until(carol, "carol was here")
        assert not [frame for frame in before_echo if "to" in frame], before_echo
        assert alice.errors == [] and bob.errors == []  # type: ignore[attr-defined]
    finally:
        carol.close()


def test_a_private_room_is_created_its_invitation_followed_and_left(browser: Browser, tracker: RunningTracker) -> None:
    """Private ticked creates it; Invite tells both pages; the invited one's Join enters; /part, /remove, Leave room."""
    page = open_page(browser(), tracker)
    guest = open_page(browser(), tracker)
    join(page, tracker, "webby")
    join(guest, tracker, "bob")
    join_room_from_the_page(page, "#ops", private=True)
    expect(place(page, "#ops")).to_contain_text("private")
    field(page, "Invite").fill("bob")
    page.get_by_role("button", name="Invite", exact=True).click()
    expect(log(page)).to_contain_text("bob may enter #ops now")
    expect(log(guest)).to_contain_text("webby invited you to #ops")
    guest.get_by_role("button", name="Join #ops").click()
    expect(shown(guest)).to_have_text("#ops")
    expect(online(page)).to_contain_text("bob")
    type_line(page, "hello bob")
    expect(lines_with(guest, "hello bob")).to_have_count(1)
    type_line(guest, "/part")  # in a room's view: leaves that room
    expect(log(page)).to_contain_text("bob left")
    expect(online(page)).not_to_contain_text("bob")

    guest.get_by_role("button", name="Join #ops").click()  # still invited
    expect(shown(guest)).to_have_text("#ops")
    type_line(page, "/remove bob")  # the owner's
    expect(log(guest)).to_contain_text("you were removed from #ops")
    expect(place(guest, "#ops")).to_have_count(0)
    expect(shown(guest)).to_have_text("#general")
    expect(log(page)).to_contain_text("bob left (removed by the room's owner)")

    page.get_by_role("button", name="Leave room").click()
    expect(shown(page)).to_have_text("#general")
    expect(place(page, "#ops")).to_have_count(0)
    assert page.errors == [] and guest.errors == []  # type: ignore[attr-defined]


def test_the_public_rooms_are_listed_and_one_entered_from_the_list(browser: Browser, tracker: RunningTracker) -> None:
    carol = JsonMember(tracker, "carol")
    page = open_page(browser(), tracker)
    try:
        join(page, tracker, "webby")
        enter_room(carol, "#lobby-2")
        page.get_by_role("button", name="Public rooms").click()
        rooms = page.get_by_role("list", name="Public rooms")
        expect(rooms).to_contain_text("#lobby-2")
        rooms.get_by_role("listitem").filter(has_text="#lobby-2").get_by_role("button").click()
        expect(shown(page)).to_have_text("#lobby-2")
        carol.expect("joined", room="#lobby-2", name="webby")
    finally:
        carol.close()


def test_a_returning_member_finds_her_rooms_and_what_she_missed_there(
    browser: Browser, tracker: RunningTracker
) -> None:
    """The welcome's rooms and the entered after it: #dev with a badge, its missed message fetched; the direct message
    sent while she was away in its conversation; reading #dev sends `read` with its room."""
    alice = JsonMember(tracker, "alice")
    alice.send({"type": "register", "passphrase": PASSPHRASE})
    alice.expect("registered")
    enter_room(alice, "#dev")
    alice.send({"type": "leave"})
    alice.expect("bye")
    alice.close()
    carol = JsonMember(tracker, "carol")
    page = open_page(browser(), tracker)
    try:
        enter_room(carol, "#dev")
        carol.send({"type": "message", "room": "#dev", "text": "missed in dev"})
        missed = int(carol.expect("message", room="#dev", text="missed in dev")["seq"])
        carol.send({"type": "message", "to": "alice", "text": "missed direct"})
        carol.expect("message", to="alice", text="missed direct")

        sent: list[dict[str, Any]] = []
        with page.expect_websocket() as opened:
            enter_password(page, tracker.password)
        opened.value.on("framesent", lambda payload: sent.append(json.loads(payload)))
        enter_name(page, "alice")
        field(page, "Passphrase").fill(PASSPHRASE)
        field(page, "Passphrase").press("Enter")
        expect(field(page, "Message")).to_be_visible()
        expect(badge(page, "#dev")).to_be_visible()
        expect(badge(page, "@carol")).to_have_text("1")

        place(page, "#dev").click()
        expect(lines_with(page, "missed in dev")).to_have_count(1)
        expect(badge(page, "#dev")).to_have_count(0)

        def read_past_missed(frame: dict[str, Any]) -> bool:
            return frame.get("type") == "read" and frame.get("room") == "#dev" and int(frame["seq"]) >= missed

        if not any(read_past_missed(frame) for frame in sent):
            opened.value.wait_for_event("framesent", lambda payload: read_past_missed(json.loads(payload)))
        place(page, "@carol").click()
        expect(lines_with(page, "missed direct")).to_have_count(1)
        assert page.errors == []  # type: ignore[attr-defined]
    finally:
        carol.close()


def test_after_a_tracker_restart_the_page_is_back_in_its_rooms(browser: Browser, start_tracker: StartTracker) -> None:
    """A resume covers the default room only: the page enters #dev again; what was typed there meanwhile goes there."""
    tracker = start_tracker(resume_grace=60)
    page = open_page(browser(), tracker)
    join(page, tracker, "webby")
    join_room_from_the_page(page, "#dev")
    assert tracker.stop(signal.SIGTERM) == 0
    expect(page.get_by_role("status")).to_contain_text("Reconnecting")
    type_line(page, "typed in dev while away")
    restarted = launch_tracker(tracker.data_dir, "--port", str(tracker.port), resume_grace=60)
    try:
        expect(log(page)).to_contain_text("back in #dev")
        expect(lines_with(page, "typed in dev while away")).to_have_count(1)
        expect(page.get_by_role("list", name="Not sent yet")).to_be_hidden()
        carol = JsonMember(restarted, "carol")
        enter_room(carol, "#dev")
        carol.send({"type": "message", "room": "#dev", "text": "dev after the restart"})
        expect(lines_with(page, "dev after the restart")).to_have_count(1)
        expect(shown(page)).to_have_text("#dev")
        carol.close()
        assert page.errors == []  # type: ignore[attr-defined]
    finally:
        restarted.stop()
