"""Each room and each conversation is an order of its own: seqs, catch-up, read marks and resends keep them apart."""

from __future__ import annotations

import asyncio

from chat_client.catchup import UNREAD_PAGE, CatchUp, event_seq, room_seq, unread_header
from chat_client.connection import Incoming
from chat_client.items import Notice
from chat_client.membership import Membership
from chat_client.resume import Pending, ResumeState, event_order, message_ids
from chat_protocol import (
    ChatMessage,
    Entered,
    Error,
    History,
    HistoryPage,
    Joined,
    Limits,
    Read,
    Resume,
    Say,
    ServerMessage,
    Welcome,
)

TS = "2026-12-06T10:00:00.000Z"


def welcome(seq: int = 10, registered: bool = False, read: int | None = None, unread: int | None = None) -> Welcome:
    return Welcome(
        seq, TS, "alpha", "hi", ["alpha"], Limits(), "ep1", "tok1", registered=registered, read=read, unread=unread
    )


def state() -> ResumeState:
    return ResumeState(welcome(), ids=message_ids("tag"))


def test_events_of_other_rooms_do_not_move_the_default_rooms_seq() -> None:
    """A room's seq 3 is not old news for the default room at 10, nor the other way round."""
    memory = state()
    assert memory.on_event(Entered("#dev", 2, TS, "alpha", ["alpha"]))
    assert memory.on_event(ChatMessage(3, TS, "bob", "in dev", room="#dev"))
    assert memory.on_event(ChatMessage(1, TS, "bob", "to you", to="alpha"))
    assert memory.on_event(Joined(11, TS, "carol"))
    assert memory.resume_request() == Resume(token="tok1", epoch="ep1", after=11)
    assert memory.on_event(ChatMessage(4, TS, "bob", "dev again", room="#dev"))
    assert memory.orders == {"#dev": 4, "@alpha+bob": 1}


def test_an_event_seen_already_in_its_own_order_is_dropped() -> None:
    memory = state()
    memory.on_event(Entered("#dev", 5, TS, "alpha", ["alpha"]))
    assert not memory.on_event(ChatMessage(5, TS, "bob", "before we came", room="#dev"))
    assert memory.on_event(ChatMessage(6, TS, "bob", "new", room="#dev"))
    assert not memory.on_event(ChatMessage(6, TS, "bob", "new", room="#dev"))  # a replay's overlap
    assert memory.on_event(ChatMessage(2, TS, "bob", "a", to="alpha"))
    assert not memory.on_event(ChatMessage(2, TS, "bob", "a", to="alpha"))
    assert memory.on_event(ChatMessage(3, TS, "alpha", "b", to="bob"))  # the same conversation, either way
    assert memory.orders["@alpha+bob"] == 3


def test_event_order() -> None:
    assert event_order(ChatMessage(1, TS, "bob", "x")) is None
    assert event_order(ChatMessage(1, TS, "bob", "x", room="#Dev")) == "#dev"
    assert event_order(ChatMessage(1, TS, "Bob", "x", to="ALPHA")) == "@alpha+bob"


def test_what_is_resent_goes_where_it_was_sent() -> None:
    """An unacknowledged line to a room, or to one member, is sent again to that room, that member."""
    memory = state()
    memory.sent("to dev", room="#dev")
    memory.sent("to bob", to="bob")
    memory.queue("typed offline", room="#ops")
    frames = [entry.frame() for entry in memory.lines_to_resend()]
    assert frames == [
        Say("to dev", "tag-1", room="#dev"),
        Say("to bob", "tag-2", to="bob"),
        Say("typed offline", "tag-3", room="#ops"),
    ]


def test_an_echo_without_id_acknowledges_only_a_line_sent_to_the_same_place() -> None:
    """A replay read back from a log has no id: the same text in another room is another line."""
    memory = state()
    memory.sent("hi", room="#dev")
    memory.sent("hi")
    memory.sent("hi", to="bob")
    assert memory.on_event(ChatMessage(11, TS, "alpha", "hi"))
    assert [entry.frame() for entry in memory.unacknowledged] == [
        Say("hi", "tag-1", room="#dev"),
        Say("hi", "tag-3", to="bob"),
    ]
    assert memory.on_event(ChatMessage(1, TS, "alpha", "hi", to="bob"))
    assert list(memory.unacknowledged) == [Pending("tag-1", "hi", room="#dev")]
    assert memory.on_event(ChatMessage(3, TS, "alpha", "hi", room="#dev"))
    assert not memory.unacknowledged


def test_a_refused_direct_message_is_not_sent_again() -> None:
    memory = state()
    memory.sent("hi", to="nobody")
    memory.on_event(Error("no_such_member", "no member named nobody", id="tag-1"))
    assert not memory.lines_to_resend()


def test_the_catch_up_keeps_to_the_default_room() -> None:
    """Live events of other rooms and direct messages are not held back behind the default room's pages."""
    catch_up = CatchUp(welcome(10, registered=True, read=4, unread=5))
    in_dev = Incoming("{}", ChatMessage(2, TS, "bob", "dev", room="#dev"))
    direct = Incoming("{}", ChatMessage(1, TS, "bob", "psst", to="alpha"))
    held = Incoming("{}", ChatMessage(11, TS, "bob", "general"))
    assert catch_up.on_live(in_dev) == [in_dev]
    assert catch_up.on_live(direct) == [direct]
    assert catch_up.on_live(held) == []
    assert event_seq(in_dev.message) is None and room_seq(in_dev.message) == ("#dev", 2)
    assert room_seq(direct.message) is None and room_seq(held.message) is None
    assert room_seq(Entered("#dev", 2, TS, "alpha", ["alpha"])) is None


def test_read_marks_are_sent_per_room() -> None:
    """What was shown of each room goes in that room's ``read``; direct messages in none."""

    async def reads_sent() -> list[History | Read]:
        sent: list[History | Read] = []

        async def send(message: History | Read) -> bool:
            sent.append(message)
            return True

        membership = Membership(send)
        membership.on_welcome(welcome(10, registered=True))
        for message in (
            ChatMessage(11, TS, "bob", "general"),
            ChatMessage(3, TS, "bob", "dev", room="#dev"),
            ChatMessage(4, TS, "bob", "dev", room="#dev"),
            ChatMessage(7, TS, "bob", "psst", to="alpha"),
            ChatMessage(12, TS, "bob", "general"),
        ):
            membership.seen(message)
        await membership.flush()
        return sent

    assert asyncio.run(reads_sent()) == [Read(12), Read(4, "#dev")]


def incoming(message: ServerMessage) -> Incoming:
    return Incoming("{}", message)


def shown(items: list[Incoming | Notice]) -> list[str]:
    return [
        item.text if isinstance(item, Notice) else getattr(item.message, "text", item.message.TYPE) for item in items
    ]


def page_of(room: str, *seqs: int) -> HistoryPage:
    events: list[dict[str, object]] = [
        {"type": "message", "seq": seq, "ts": TS, "name": "bob", "text": f"dev {seq}"} for seq in seqs
    ]
    return HistoryPage(seqs[0], seqs[-1], False, events, room=room)


def test_a_room_she_is_back_in_is_caught_up_in_its_own_order() -> None:
    """Her ``entered`` with unread: that room's pages are asked for, its live events wait behind them;
    the default room and the other rooms go on meanwhile."""

    async def run() -> tuple[list[History | Read], list[str]]:
        sent: list[History | Read] = []

        async def send(message: History | Read) -> bool:
            sent.append(message)
            return True

        membership = Membership(send)
        membership.on_welcome(welcome(10, registered=True))
        items: list[Incoming | Notice] = []
        for message in (
            Entered("#dev", 9, TS, "alpha", ["alpha", "bob"], read=6, unread=2),
            ChatMessage(10, TS, "bob", "dev live", room="#dev"),  # after her join: waits behind the pages
            ChatMessage(11, TS, "bob", "general live"),  # the default room: no catch-up, shown now
            ChatMessage(3, TS, "bob", "ops live", room="#ops"),
            page_of("#dev", 7, 8),
        ):
            items += membership.take(incoming(message))
            await membership.ask_following(message)
        return sent, shown(items)

    sent, lines = asyncio.run(run())
    assert sent == [History(after=6, limit=UNREAD_PAGE, room="#dev")]
    assert lines == ["entered", unread_header(2, "#dev"), "general live", "ops live", "dev 7", "dev 8", "dev live"]
    assert unread_header(2, "#dev") == "--- 2 unread in #dev since you were last here ---"


def test_a_rooms_page_events_belong_to_it_even_unmarked() -> None:
    """Events of a room's page that carry no ``room`` are taken as that room's, not the default room's."""
    catch_up = CatchUp(Entered("#dev", 9, TS, "alpha", ["alpha"], read=6, unread=1))
    items = catch_up.on_page(page_of("#dev", 7))
    assert [getattr(item, "message", None) for item in items] == [ChatMessage(7, TS, "bob", "dev 7", room="#dev")]
    assert catch_up.done
