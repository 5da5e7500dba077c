"""How the rooms' events look: ``[#name] `` from other rooms, direct messages, entered, parted, invited, /rooms."""

from __future__ import annotations

import re
from datetime import UTC

from chat_client.render import event_line, plain
from chat_client.room_view import RoomView
from chat_protocol import (
    Announcement,
    ChatMessage,
    Entered,
    Invited,
    Joined,
    Left,
    Limits,
    MemberInfo,
    Members,
    Parted,
    RoomInfo,
    RoomList,
    ServerMessage,
    Welcome,
)

TS = "2026-11-24T01:50:38.123Z"


def view_in(*rooms: str) -> RoomView:
    view = RoomView()
    view.take(Welcome(5, TS, "alpha", "hi", ["alpha"], Limits()))
    for room in rooms:
        view.joining(room)
        view.take(Entered(room, 1, TS, "alpha", ["alpha"]))
    return view


def line(message: ServerMessage, view: RoomView) -> str:
    view.take(message)  # as the modes do: the view first, then the line
    fragments = event_line(message, seconds=True, tz=UTC, view=view)
    assert fragments is not None
    return re.sub(r"^\[\d\d:\d\d:\d\d\] ", "", plain(fragments))  # untimed frames get the time of arrival


def test_the_current_rooms_lines_look_as_before() -> None:
    view = view_in("#dev")
    assert line(ChatMessage(3, TS, "bob", "ship it?", room="#dev"), view) == "bob: ship it?"
    assert line(Joined(4, TS, "carol", room="#dev"), view) == "* carol joined"


def test_lines_from_other_rooms_start_with_their_name() -> None:
    view = view_in("#dev", "#ops")
    assert line(ChatMessage(3, TS, "bob", "ship it?", room="#dev"), view) == "[#dev] bob: ship it?"
    assert line(ChatMessage(7, TS, "carol", "lunch?"), view) == "[#general] carol: lunch?"
    assert line(Left(8, TS, "carol", "exit", room="#dev"), view) == "[#dev] * carol left"
    assert line(Announcement(9, TS, "noon"), view) == "[#general] * Announcement: noon"
    members = Members([MemberInfo("bob", TS, 0.0)], room="#dev")
    assert line(members, view) == "[#dev] * online now (1): bob"


def test_in_the_default_room_only_other_rooms_have_a_prefix() -> None:
    view = view_in()
    assert line(ChatMessage(7, TS, "carol", "lunch?"), view) == "carol: lunch?"
    assert line(ChatMessage(3, TS, "bob", "hi", room="#dev"), view) == "[#dev] bob: hi"


def test_direct_messages_show_who_from_and_our_own_whom_to() -> None:
    view = view_in("#dev")
    assert line(ChatMessage(1, TS, "dave", "hi alpha", to="alpha"), view) == "[dave] hi alpha"
    assert (
        line(ChatMessage(2, TS, "alpha", "in 5 minutes", id="x-1", to="carol"), view) == "[alpha -> carol] in 5 minutes"
    )


def test_peer_text_in_room_lines_is_sanitised() -> None:
    view = view_in("#dev")
    assert line(ChatMessage(3, TS, "bob", "a\x1b[2Jb", to="alpha"), view) == "[bob] a\\x1b[2Jb"


def test_entered_says_where_lines_go() -> None:
    view = view_in()
    view.joining("#dev")
    entered = Entered("#dev", 4, TS, "alpha", ["alpha", "bob"])
    assert line(entered, view) == (
        "* You are in #dev now (2): alpha, bob; your lines go there (/join #general goes back)"
    )


def test_entered_after_a_welcome_leaves_her_where_she_writes() -> None:
    """Back in a room at sign-in: said, but her lines still go to the default room (the unread header follows)."""
    view = view_in()
    entered = Entered("#ops", 9, TS, "alpha", ["alpha"], private=True, read=3, unread=5)
    assert line(entered, view) == "* You are in the private room #ops now (1): alpha"


def test_parted() -> None:
    view = view_in("#dev", "#ops")
    assert line(Parted("#ops"), view) == "* You left #ops; your lines go to #general"
    view.switch("#dev")
    assert (
        line(Parted("#dev", "removed"), view) == "* You were removed from #dev by its owner; your lines go to #general"
    )


def test_invited() -> None:
    view = view_in("#x")
    assert line(Invited("#x", "bob", "alpha"), view) == "* bob may enter #x now"
    assert line(Invited("#y", "alpha", "carol"), view) == "* carol invited you to #y: /join #y enters it"
    assert line(Invited("#x", "bob", "carol"), view) == "* carol invited bob to #x"


def test_room_list() -> None:
    view = view_in("#dev")
    listing = RoomList(
        [
            RoomInfo("#general", 5, 3, joined=True),
            RoomInfo("#dev", 2, 1, joined=True, unread=4),
            RoomInfo("#secret", 3, 3, private=True, joined=True),
            RoomInfo("#random", 7, 0),
            RoomInfo("#quiet", 1, 0),
        ]
    )
    assert line(listing, view).split("\n") == [
        "* rooms (5); /join #name enters one:",
        "  #general  5 members, 3 online  (yours)",
        "  #dev  2 members, 1 online  (yours, writing here, 4 unread)",
        "  #secret  private, 3 members, 3 online  (yours)",
        "  #random  7 members, 0 online",
        "  #quiet  1 member, 0 online",
    ]
