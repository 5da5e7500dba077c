"""Usernames: refused ones get a reason and a new prompt; of concurrent claims exactly one wins."""

from __future__ import annotations

import asyncio

import pytest

from chat_protocol import Error, Hello, Welcome
from support.peers import json_member, json_peer, plain_member, plain_peer
from support.tracker import PASSWORD, RunningTracker

pytestmark = pytest.mark.anyio


async def test_taken_name_gets_a_new_prompt_on_the_same_connection(tracker: RunningTracker) -> None:
    """A plain member asking for a taken name (any case, lookalike) is told why and asked again."""
    async with plain_member(tracker.url, PASSWORD, "alpha"), plain_peer(tracker.url) as peer:
        await peer.line()
        await peer.send(PASSWORD)
        await peer.lines(2)
        for taken in ("alpha", "ALPHA", "a1pha", "alp.ha"):
            await peer.send(taken)
            refused, prompt = await peer.lines(2)
            assert refused.startswith("Name refused: the name") and "is taken" in refused
            assert prompt == "Enter your username..."
        await peer.send("beta")
        assert await peer.line() == "Hi beta, You have been added to the server."


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("", "name_invalid"),
        ("x" * 33, "name_invalid"),
        ("two words", "name_invalid"),
        ("bad\x1bname", "name_invalid"),
        ("new\nline", "name_invalid"),
        ("\u202eevil", "name_invalid"),
        ("\u0430lpha", "name_invalid"),  # Cyrillic a
        ("-dash", "name_invalid"),
        ("Tracker", "name_reserved"),
        ("ADMIN", "name_reserved"),
        ("r0ot", "name_reserved"),
    ],
)
async def test_invalid_and_reserved_names_are_refused(tracker: RunningTracker, name: str, code: str) -> None:
    """Names outside the allowlist or reserved get the matching error code; the connection stays."""
    async with json_peer(tracker.url, PASSWORD) as peer:
        await peer.expect(Hello)
        await peer.send(type="join", name=name)
        assert (await peer.expect(Error)).code == code
        await peer.send(type="join", name="fine_name-1.0")
        assert (await peer.expect(Welcome)).name == "fine_name-1.0"


async def test_name_is_free_again_after_its_owner_leaves(tracker: RunningTracker) -> None:
    """Once alpha has left, someone else can be alpha."""
    async with plain_member(tracker.url, PASSWORD, "alpha") as first:
        await first.send("exit")
        await first.closed()
    async with json_member(tracker.url, PASSWORD, "Alpha") as (_, welcome):
        assert welcome.members == ["Alpha"]


async def test_concurrent_claims_of_one_name_exactly_one_wins(tracker: RunningTracker) -> None:
    """Twenty connections claiming "sigma" at once: one welcome, nineteen name_taken."""

    async def claim() -> str:
        async with json_peer(tracker.url, PASSWORD) as peer:
            await peer.expect(Hello)
            ready.release()
            await go.wait()
            await peer.send(type="join", name="sigma")
            answer = await peer.recv()
            answered.release()
            await finished.wait()  # stay connected until all have answers, so the winner keeps the name
            return "won" if isinstance(answer, Welcome) else answer.code  # type: ignore[union-attr]

    ready, answered = asyncio.Semaphore(0), asyncio.Semaphore(0)
    go, finished = asyncio.Event(), asyncio.Event()
    tasks = [asyncio.create_task(claim()) for _ in range(20)]
    for _ in tasks:
        await ready.acquire()
    go.set()  # all twenty send their join in the same instant
    for _ in tasks:
        await answered.acquire()
    finished.set()
    results = await asyncio.gather(*tasks)
    assert results.count("won") == 1
    assert results.count("name_taken") == 19
