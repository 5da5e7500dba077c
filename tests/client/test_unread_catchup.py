"""The catch-up after a returning member's welcome, and the coalesced read marks: pure, driven with plain frames."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from chat_client.catchup import CatchUp, ReadMarks, page_items, unread_header
from chat_client.connection import Incoming
from chat_client.items import Notice
from chat_client.membership import Membership
from chat_protocol import ChatMessage, History, HistoryPage, Limits, Members, Read, Welcome, encode

TS = "2026-11-24T01:50:38.123Z"


def welcome(seq: int, read: int | None, unread: int | None, registered: bool = True) -> Welcome:
    return Welcome(seq, TS, "alpha", "hi", ["alpha"], Limits(), registered=registered, read=read, unread=unread)


def message(seq: int, text: str, name: str = "bob") -> dict[str, Any]:
    return {"type": "message", "seq": seq, "ts": TS, "name": name, "text": text}


def page(first: int, last: int, events: list[dict[str, Any]], more: bool, gone: list[int] | None = None) -> HistoryPage:
    return HistoryPage(first=first, last=last, more=more, events=events, gone=gone)


def live(seq: int, text: str) -> Incoming:
    frame = ChatMessage(seq=seq, ts=TS, name="bob", text=text)
    return Incoming(encode(frame), frame)


def texts(items: list[Any]) -> list[str]:
    shown = []
    for item in items:
        if isinstance(item, Notice):
            shown.append(f"* {item.text}")
        else:
            assert isinstance(item.message, ChatMessage)
            shown.append(item.message.text)
    return shown


def test_only_a_registered_welcome_with_unread_events_is_caught_up() -> None:
    assert CatchUp.wanted(welcome(50, read=40, unread=9))
    assert not CatchUp.wanted(welcome(50, read=49, unread=0))
    assert not CatchUp.wanted(welcome(50, read=None, unread=None, registered=False))
    assert unread_header(42) == "--- 42 unread since you were last here ---"


def test_pages_are_asked_from_the_read_position_until_the_welcome() -> None:
    """Each page starts after the last one's ``last``; the one that reaches the seq before the welcome ends it."""
    catch_up = CatchUp(welcome(10, read=3, unread=6), page=3)
    assert catch_up.request() == History(after=3, limit=3)
    first = catch_up.on_page(page(4, 6, [message(4, "a"), message(5, "b"), message(6, "c")], more=True))
    assert texts(first) == ["a", "b", "c"] and not catch_up.done
    assert catch_up.request() == History(after=6, limit=3)
    second = catch_up.on_page(page(7, 9, [message(7, "d"), message(9, "e")], more=True))
    assert texts(second) == ["d", "e"] and catch_up.done


def test_live_events_wait_for_the_last_page_and_are_not_shown_twice() -> None:
    """Live room events that arrive during the catch-up follow it, in order; other frames pass at once."""
    catch_up = CatchUp(welcome(10, read=7, unread=2), page=5)
    assert catch_up.on_live(live(11, "live 1")) == []
    who = Incoming("{}", Members(members=[]))
    assert catch_up.on_live(who) == [who]
    assert catch_up.on_live(live(12, "live 2")) == []
    # A page that runs past the welcome (the tracker pages to its newest event): only what came before it.
    shown = catch_up.on_page(page(8, 12, [message(8, "x"), message(9, "y"), message(11, "live 1")], more=False))
    assert texts(shown) == ["x", "y", "live 1", "live 2"]
    assert catch_up.done
    assert catch_up.on_live(live(13, "live 3")) == [live(13, "live 3")]


def test_a_page_with_gone_events_says_so() -> None:
    catch_up = CatchUp(welcome(20, read=5, unread=14))
    shown = catch_up.on_page(page(6, 19, [message(19, "kept")], more=False, gone=[6, 18]))
    assert texts(shown) == ["* events 6-18 are no longer kept by the tracker and were missed", "kept"]


def test_her_own_comings_and_goings_are_covered_not_shown() -> None:
    catch_up = CatchUp(welcome(10, read=2, unread=1))
    own = {"type": "presence", "seq": 3, "ts": TS, "name": "alpha", "online": False}
    assert texts(catch_up.on_page(page(3, 9, [own, message(4, "hi")], more=False))) == ["hi"]


def test_an_empty_last_page_ends_the_catch_up() -> None:
    catch_up = CatchUp(welcome(10, read=3, unread=2))
    catch_up.on_live(live(11, "live"))
    assert texts(catch_up.on_page(page(4, 3, [], more=False))) == ["live"]


def test_page_events_unknown_to_this_client_are_skipped() -> None:
    events = [{"type": "something_new", "seq": 4}, message(5, "known")]
    items = page_items(page(4, 5, events, more=False))
    assert [json.loads(item.frame)["seq"] for item in items] == [5]


def test_read_marks_are_coalesced_to_one_per_interval() -> None:
    """The newest seq shown goes at once, then at most once per interval; nothing new: nothing to send."""
    marks = ReadMarks(interval=1.0)
    assert marks.due() is None
    marks.seen(5)
    assert marks.wait(now=100.0) == 0.0 and marks.due() == 5
    marks.sent_now(5, now=100.0)
    marks.seen(6)
    marks.seen(9)
    marks.seen(7)  # never backwards
    assert marks.wait(now=100.25) == 0.75
    assert marks.due() == 9
    marks.sent_now(9, now=101.0)
    assert marks.due() is None and not marks.pending


def test_only_a_registered_member_sends_her_read_position_and_leaving_sends_the_newest() -> None:
    """Events seen in a burst go as one ``read`` of the newest when leaving; a guest sends none."""

    async def reads_sent(registered: bool) -> list[History | Read]:
        sent: list[History | Read] = []

        async def send(message: History | Read) -> bool:
            sent.append(message)
            return True

        membership = Membership(send)
        membership.on_welcome(welcome(10, read=None, unread=None, registered=registered))
        for seq in (11, 13, 12):
            membership.seen(ChatMessage(seq, TS, "bob", "hi"))
        await membership.flush()
        return sent

    assert asyncio.run(reads_sent(registered=False)) == []
    assert asyncio.run(reads_sent(registered=True)) == [Read(13)]
