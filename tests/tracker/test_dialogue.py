"""The seed's dialogue and our JSON protocol, against a real tracker on 127.0.0.1."""

from __future__ import annotations

import asyncio

import pytest

from chat_protocol import Authenticated, Bye, ChatMessage, Hello, Joined, Left, Members, Welcome
from chat_tracker.storage.chatlog import parse_line
from support.peers import json_member, json_peer, plain_member
from support.tracker import PASSWORD, RunningTracker

pytestmark = pytest.mark.anyio

SEED_CONVERSATION = [
    ("alpha", "Hi I am alpha"),
    ("beta", "And I am beta"),
    ("gamma", "I am gamma"),
    ("beta", "One day I will be sigma"),
    ("alpha", "That day I will become the Omega"),
    ("gamma", "Are you both done now with the greek alphabet"),
    ("beta", "Ok I am leaving now"),
    ("alpha", "Ok bye"),
    ("gamma", "Bye"),
]


async def test_seed_dialogue_with_three_plain_members(tracker: RunningTracker) -> None:
    """alpha, beta and gamma chat as in the seed's screenshots; each sees the others' lines in order."""
    async with (
        plain_member(tracker.url, PASSWORD, "alpha") as alpha,
        plain_member(tracker.url, PASSWORD, "beta") as beta,
    ):
        assert await alpha.line() == "* beta joined the chat"
        async with plain_member(tracker.url, PASSWORD, "gamma") as gamma:
            assert await alpha.line() == "* gamma joined the chat"
            assert await beta.line() == "* gamma joined the chat"
            peers = {"alpha": alpha, "beta": beta, "gamma": gamma}
            for speaker, text in SEED_CONVERSATION:
                await peers[speaker].send(text)
                for name, peer in peers.items():
                    if name != speaker:  # as in the seed, nobody gets an echo of their own line
                        assert await peer.line() == f"{speaker}: {text}"
            await beta.send("exit")
            assert await beta.closed() == (1000, ["Bye, beta."])
            assert await alpha.line() == "* beta left the chat"
            assert await gamma.line() == "* beta left the chat"
            await alpha.send("I am leaving too bye")
            assert await gamma.line() == "alpha: I am leaving too bye"
            await gamma.send("bye")
            assert await alpha.line() == "gamma: bye"
            await gamma.send("exit")
            assert (await gamma.closed())[0] == 1000
            assert await alpha.line() == "* gamma left the chat"
        await alpha.send("exit")
        assert (await alpha.closed())[0] == 1000

    entries = [parse_line(line) for line in tracker.log_lines()]
    said = [(e.name, e.text) for e in entries if e.kind == "msg"]
    assert said == [*SEED_CONVERSATION, ("alpha", "I am leaving too bye"), ("gamma", "bye")]
    assert [(e.kind, e.name) for e in entries if e.kind in ("join", "leave")] == [
        ("join", "alpha"),
        ("join", "beta"),
        ("join", "gamma"),
        ("leave", "beta"),
        ("leave", "gamma"),
        ("leave", "alpha"),
    ]
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))


async def test_message_containing_exit_is_an_ordinary_message(tracker: RunningTracker) -> None:
    """Only a line that is exactly "exit" leaves; "exit now" and " exit" are messages."""
    async with (
        plain_member(tracker.url, PASSWORD, "alpha") as alpha,
        plain_member(tracker.url, PASSWORD, "beta") as beta,
    ):
        await alpha.line()  # beta joined
        for text in ("I will exit now", "exit ", "EXIT"):
            await beta.send(text)
            assert await alpha.line() == f"beta: {text}"


async def test_json_dialogue_with_header_password(tracker: RunningTracker) -> None:
    """JSON members get a welcome with members and limits, echoes with seq, joined/left events, who, bye."""
    async with json_member(tracker.url, PASSWORD, "alpha") as (alpha, welcome):
        assert welcome.members == ["alpha"]
        assert welcome.limits.max_message_chars == 2000
        async with json_member(tracker.url, PASSWORD, "beta") as (beta, beta_welcome):
            assert beta_welcome.members == ["alpha", "beta"]
            joined = await alpha.expect(Joined)
            assert (joined.name, joined.seq) == ("beta", beta_welcome.seq)
            await beta.send(type="message", text="And I am beta")
            echo = await beta.expect(ChatMessage)
            seen = await alpha.expect(ChatMessage)
            assert echo == seen and seen.name == "beta" and seen.seq == beta_welcome.seq + 1
            await alpha.send(type="who")
            members = await alpha.expect(Members)
            assert [m.name for m in members.members] == ["alpha", "beta"]
            await beta.send(type="leave")
            code, rest = await beta.closed()
            assert code == 1000 and rest == [Bye(reason="left", message="Bye, beta.")]
            left = await alpha.expect(Left)
            assert (left.name, left.reason) == ("beta", "exit")


async def test_json_password_in_auth_frame(tracker: RunningTracker) -> None:
    """Without a header the tracker says hello unauthenticated and accepts an auth frame."""
    async with json_peer(tracker.url) as peer:
        assert await peer.expect(Hello) == Hello(version=1, authenticated=False)
        await peer.send(type="auth", password=PASSWORD)
        await peer.expect(Authenticated)
        await peer.send(type="join", name="alpha")
        assert (await peer.expect(Welcome)).name == "alpha"


async def test_plain_and_json_members_share_the_room(tracker: RunningTracker) -> None:
    """A wscat-style member and a JSON member see each other's messages, names attached by the tracker."""
    async with (
        plain_member(tracker.url, PASSWORD, "alpha") as alpha,
        json_member(tracker.url, PASSWORD, "beta") as (beta, _),
    ):
        assert await alpha.line() == "* beta joined the chat"
        await alpha.send("hello from plain")
        message = await beta.expect(ChatMessage)
        assert (message.name, message.text) == ("alpha", "hello from plain")
        await beta.send(type="message", text="hello from json")
        assert await alpha.line() == "beta: hello from json"


async def test_newcomer_sees_nothing_from_before_she_joined(tracker: RunningTracker) -> None:
    """The first event a newcomer receives after her welcome is newer than her join."""
    async with json_member(tracker.url, PASSWORD, "alpha") as (alpha, _):
        for index in range(5):
            await alpha.send(type="message", text=f"early {index}")
            await alpha.expect(ChatMessage)
        async with json_member(tracker.url, PASSWORD, "beta") as (beta, welcome):
            await alpha.expect(Joined)
            await alpha.send(type="message", text="late")
            first = await beta.expect(ChatMessage)
            assert first.text == "late" and first.seq > welcome.seq


async def test_every_member_receives_messages_in_chat_log_order(tracker: RunningTracker) -> None:
    """Four members talking at once all receive the same sequence, which is chat.log's."""
    names = ["alpha", "beta", "gamma", "delta"]
    per_member = 15
    async with (
        json_member(tracker.url, PASSWORD, "alpha") as (alpha, _),
        json_member(tracker.url, PASSWORD, "beta") as (beta, _),
        json_member(tracker.url, PASSWORD, "gamma") as (gamma, _),
        json_member(tracker.url, PASSWORD, "delta") as (delta, _),
    ):
        peers = [alpha, beta, gamma, delta]

        async def receive_all(peer: object) -> list[tuple[int, str, str]]:
            got: list[tuple[int, str, str]] = []
            while len(got) < per_member * len(names):
                message = await peer.recv()  # type: ignore[attr-defined]
                if isinstance(message, ChatMessage):
                    got.append((message.seq, message.name, message.text))
            return got

        async def talk(peer: object, name: str) -> None:
            for index in range(per_member):
                await peer.send(type="message", text=f"{name} {index}")  # type: ignore[attr-defined]

        receivers = [asyncio.create_task(receive_all(peer)) for peer in peers]
        await asyncio.gather(*(talk(peer, name) for peer, name in zip(peers, names, strict=True)))
        received = await asyncio.gather(*receivers)

    assert all(seen == received[0] for seen in received)
    seqs = [seq for seq, _, _ in received[0]]
    assert seqs == sorted(seqs)
    logged = [(e.seq, e.name, e.text) for e in map(parse_line, tracker.log_lines()) if e.kind == "msg"]
    assert logged == received[0]
