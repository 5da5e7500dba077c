"""The rooms as the member sees them: the room written in, the rooms she is in, the unread counts."""

from __future__ import annotations

from chat_client.room_view import RoomView, event_room
from chat_protocol import ChatMessage, Entered, Joined, Limits, Parted, RoomInfo, RoomList, Welcome

TS = "2026-12-06T10:00:00.000Z"


def welcome(rooms: list[RoomInfo] | None = None) -> Welcome:
    return Welcome(5, TS, "alpha", "hi", ["alpha"], Limits(), "e1", "t1", rooms=rooms)


def entered(room: str, seq: int = 1, unread: int | None = None) -> Entered:
    return Entered(room, seq, TS, "alpha", ["alpha", "bob"], unread=unread)


def said(name: str, room: str | None = None, to: str | None = None, seq: int = 9) -> ChatMessage:
    return ChatMessage(seq, TS, name, "text", room=room, to=to)


def view_in(*rooms: str) -> RoomView:
    view = RoomView()
    view.take(welcome())
    for room in rooms:
        view.joining(room)
        view.take(entered(room))
    return view


def test_a_join_answered_makes_the_room_current() -> None:
    view = view_in()
    assert view.current is None and view.current_name == "#general" and view.status() == ""
    view.joining("#dev")
    assert view.current is None  # not before the tracker's answer
    view.take(entered("#dev"))
    assert view.current == "#dev" and view.is_current("#dev") and not view.is_current(None)
    assert view.status() == " #dev"


def test_joining_a_room_already_in_switches_at_once() -> None:
    view = view_in("#dev", "#ops")
    assert view.current == "#ops"
    view.joining("#DEV")
    assert view.current == "#dev"
    view.joining("#general")  # the default room by its name
    assert view.current is None and view.status() == " #general"


def test_the_entered_frames_after_a_welcome_do_not_move_her() -> None:
    """A registered member back in her rooms keeps writing in the default room; what is caught up there counts."""
    view = RoomView()
    view.take(welcome([RoomInfo("#dev", 3, 1, joined=True, unread=2), RoomInfo("#ops", 2, 1, joined=True)]))
    assert view.rooms == {"#dev": "#dev", "#ops": "#ops"} and view.status() == " #general"
    view.take(entered("#dev", unread=2))
    view.take(entered("#ops"))
    assert view.current is None
    view.take(said("bob", "#dev", seq=1))  # the catch-up's events, shown as they come
    view.take(said("bob", "#dev", seq=2))
    assert view.elsewhere() == [("#dev", 2)]
    assert view.status() == " #general (#dev 2)"


def test_messages_elsewhere_are_counted_until_she_switches_there() -> None:
    view = view_in("#dev")
    view.take(said("bob", None))  # the default room, not current now
    view.take(said("bob", None))
    view.take(said("bob", "#dev"))  # the current room: not unread
    view.take(said("alpha", None))  # her own: not unread
    view.take(said("bob", to="alpha"))  # a direct message: in no room
    view.take(Joined(10, TS, "carol"))  # only messages count
    assert view.elsewhere() == [("#general", 2)]
    assert view.status() == " #dev (#general 2)"
    view.switch(None)
    assert view.elsewhere() == [] and view.status() == " #general"
    view.take(said("bob", "#dev"))
    assert view.status() == " #general (#dev 1)"


def test_parted_leaves_the_room_and_writes_in_the_default_one_again() -> None:
    view = view_in("#dev", "#ops")
    view.take(said("bob", "#dev"))
    view.take(Parted("#ops"))
    assert view.current is None and not view.is_in("#ops") and view.is_in("#dev")
    view.take(Parted("#dev", "removed"))
    assert view.rooms == {} and view.unread == {} and view.status() == ""


def test_a_fresh_welcome_forgets_the_rooms_it_does_not_list() -> None:
    """A guest's rooms end with her session: a welcome after a refused resume has none of them."""
    view = view_in("#dev")
    view.take(welcome())
    assert view.current is None and view.rooms == {}


def test_the_default_rooms_name_comes_from_a_room_list() -> None:
    view = view_in()
    view.take(RoomList([RoomInfo("#lobby", 4, 2, joined=True), RoomInfo("#dev", 1, 1)]))
    assert view.default == "#lobby" and view.current_name == "#lobby" and view.is_default("#LOBBY")


def test_event_room() -> None:
    assert event_room(said("bob", "#dev")) == "#dev"
    assert event_room(said("bob")) is None
    assert event_room(said("bob", to="alpha")) is None
    assert event_room(Joined(3, TS, "bob", room="#ops")) == "#ops"
