"""Limits with a real uvicorn: message length, frame size, bad frames, rate, connections, slow members."""

from __future__ import annotations

import asyncio

import pytest

from chat_protocol import ChatMessage, Error, Left
from chat_tracker.storage.chatlog import parse_line
from support.peers import SilentMember, json_member, json_peer, plain_member, plain_peer
from support.timing import UNIT
from support.tracker import PASSWORD, RunningTracker

pytestmark = pytest.mark.anyio


def messages_logged(tracker: RunningTracker) -> list[str]:
    return [e.text for e in map(parse_line, tracker.log_lines()) if e.kind == "msg"]


async def test_message_length_limit_keeps_the_connection(start_tracker: object) -> None:
    """A message of exactly the limit is sent; one character more gets too_long and nothing is logged."""
    tracker = start_tracker("--max-message-chars", "50")  # type: ignore[operator]
    async with json_member(tracker.url, PASSWORD, "alpha") as (alpha, welcome):
        assert welcome.limits.max_message_chars == 50
        await alpha.send(type="message", text="x" * 51)
        error = await alpha.expect(Error)
        assert error.code == "too_long" and "51 characters, the limit is 50" in error.message
        await alpha.send(type="message", text="y" * 50)
        assert (await alpha.expect(ChatMessage)).text == "y" * 50
    assert messages_logged(tracker) == ["y" * 50]


async def test_plain_text_errors_are_lines(start_tracker: object) -> None:
    """A plain member's too-long and empty messages get "! ..." lines and it can go on chatting."""
    tracker = start_tracker("--max-message-chars", "10")  # type: ignore[operator]
    async with (
        plain_member(tracker.url, PASSWORD, "alpha") as alpha,
        plain_member(tracker.url, PASSWORD, "beta") as beta,
    ):
        await alpha.line()  # beta joined
        await beta.send("this is far too long")
        assert await beta.line() == "! message too long: 20 characters, the limit is 10"
        await beta.send("   ")
        assert await beta.line() == "! empty message not sent"
        await beta.send("short")
        assert await alpha.line() == "beta: short"


async def test_frame_over_size_limit_closes_with_1009(start_tracker: object) -> None:
    """A frame bigger than --max-frame-bytes closes the connection with 1009; others carry on."""
    tracker = start_tracker("--max-frame-bytes", "4096")  # type: ignore[operator]
    async with json_member(tracker.url, PASSWORD, "alpha") as (alpha, _):
        async with plain_member(tracker.url, PASSWORD, "beta", max_size=None) as beta:
            await alpha.recv()  # joined
            await beta.send("z" * 5000)
            code, _ = await beta.closed()
            assert code == 1009
        left = await alpha.expect(Left)
        assert (left.name, left.reason) == ("beta", "closed")
        await alpha.send(type="message", text="still here")
        assert (await alpha.expect(ChatMessage)).text == "still here"


async def test_binary_frame_closes_with_1003(tracker: RunningTracker) -> None:
    """Binary data where text is expected closes with 1003 and an explanation."""
    async with plain_member(tracker.url, PASSWORD, "alpha") as alpha:
        await alpha.ws.send(b"\x00\x01binary")
        code, seen = await alpha.closed()
    assert code == 1003 and seen == ["! binary frames are not accepted"]


async def test_invalid_utf8_closes_with_1007(tracker: RunningTracker) -> None:
    """A text frame that is not UTF-8 closes with 1007; nothing is logged for it."""
    async with plain_member(tracker.url, PASSWORD, "alpha") as alpha:
        await alpha.ws.send(b"caf\xe9", text=True)
        code, _ = await alpha.closed()
    assert code == 1007
    assert messages_logged(tracker) == []


async def test_malformed_and_unknown_json_keep_the_connection(tracker: RunningTracker) -> None:
    """After joining, junk and unknown types get errors; the member can still talk."""
    async with json_member(tracker.url, PASSWORD, "alpha") as (alpha, _):
        for frame, code in (
            ("{not json", "malformed"),
            ("[1,2]", "malformed"),
            ('{"type":"message"}', "malformed"),
            ('{"type":"message","text":5}', "malformed"),
            ('{"type":"dance"}', "unknown_type"),
            ('{"type":"join","name":"again"}', "already_joined"),
        ):
            await alpha.ws.send_text(frame)
            assert (await alpha.expect(Error)).code == code
        await alpha.send(type="message", text="ok")
        assert (await alpha.expect(ChatMessage)).text == "ok"


async def test_message_before_join_is_refused(tracker: RunningTracker) -> None:
    """Authenticated but not joined: message, who and leave get not_joined."""
    async with json_peer(tracker.url, PASSWORD) as peer:
        await peer.recv()  # hello
        for kind in ("message", "who", "leave"):
            await peer.send(type=kind, text="hi")
            assert (await peer.expect(Error)).code == "not_joined"
    assert messages_logged(tracker) == []


async def test_flooding_member_is_throttled_then_closed(start_tracker: object) -> None:
    """Over the rate: rate_limited errors, then close 4006; a calm member sees only accepted messages."""
    tracker = start_tracker("--rate", "5", "--burst", "5", "--flood-tolerance", "10")  # type: ignore[operator]
    async with json_member(tracker.url, PASSWORD, "calm") as (calm, _):
        async with json_member(tracker.url, PASSWORD, "flood") as (flood, _):
            await calm.recv()  # joined
            for index in range(100):
                try:
                    await flood.send(type="message", text=f"spam {index}")
                except Exception:
                    break  # closed under us
            code, seen = await flood.closed()
        assert code == 4006
        errors = [m.code for m in seen if isinstance(m, Error)]
        assert "rate_limited" in errors and errors[-1] == "flooding"
        accepted = [m.text for m in seen if isinstance(m, ChatMessage)]
        received = []
        while True:
            message = await calm.recv()
            if isinstance(message, Left):
                assert message.reason == "flooding"
                break
            received.append(message.text)  # type: ignore[union-attr]
        assert received == accepted and len(accepted) >= 5
    assert messages_logged(tracker) == accepted


async def test_connection_limit_closes_with_4005(start_tracker: object) -> None:
    """Past --max-connections a stranger is closed 4005 to make room; if all are members, the newcomer gets 4005."""
    tracker = start_tracker("--max-connections", "2")  # type: ignore[operator]
    async with plain_member(tracker.url, PASSWORD, "alpha") as alpha, plain_peer(tracker.url) as second:
        await second.line()
        async with plain_peer(tracker.url) as third:
            code, seen = await second.closed()  # no password yet: dropped to make room, never alpha
            assert code == 4005 and seen == ["! the tracker is full; try again later"]
            assert await third.line() == "Enter server password..."
        await alpha.send("still fine")
    async with (
        plain_member(tracker.url, PASSWORD, "alpha"),
        plain_member(tracker.url, PASSWORD, "beta"),
        plain_peer(tracker.url) as third,
    ):
        code, seen = await third.closed()  # every slot is a member's: nobody is dropped
        assert code == 4005 and seen == ["! the tracker is full; try again later"]


async def test_slow_member_is_dropped_and_others_get_everything(start_tracker: object) -> None:
    """A member that stops reading is dropped (leave "slow") while a reading member receives every message."""
    tracker = start_tracker(  # type: ignore[operator]
        "--queue-size", "200", "--rate", "100000", "--burst", "100000", "--max-message-chars", "4000"
    )
    total = 3000
    async with (
        json_member(tracker.url, PASSWORD, "reader") as (reader, _),
        json_member(tracker.url, PASSWORD, "talker") as (talker, _),
    ):
        await reader.recv()  # talker joined
        stalled = await asyncio.to_thread(SilentMember, tracker.url, PASSWORD, "stalled", 4096)
        try:
            await reader.recv()  # stalled joined
            await talker.recv()

            async def talk() -> None:
                # Windows of 20, each waiting for its echoes: the talker never outruns its own reading.
                for start in range(0, total, 20):
                    for index in range(start, start + 20):
                        await talker.send(type="message", text=f"{index:05d} " + "x" * 3000)
                    echoes = 0
                    while echoes < 20:
                        echoes += isinstance(await talker.recv(timeout=4 * UNIT), ChatMessage)

            async def read() -> tuple[list[int], list[str]]:
                got: list[int] = []
                others: list[str] = []
                while len(got) < total:
                    message = await reader.recv(timeout=4 * UNIT)
                    if isinstance(message, ChatMessage):
                        got.append(int(message.text[:5]))
                    elif isinstance(message, Left):
                        others.append(f"{message.name}:{message.reason}")
                return got, others

            reading = asyncio.create_task(read())
            await talk()
            got, notices = await reading
        finally:
            stalled.sock.close()
    assert got == list(range(total))
    assert notices == ["stalled:slow"]
    tracker.wait_for_output("stalled removed: too slow")
