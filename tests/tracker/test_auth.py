"""Passwords: wrong, empty, in the URL, too slow, guessed repeatedly - against a real tracker."""

from __future__ import annotations

import asyncio

import pytest

from chat_protocol import Authenticated, Error, Hello
from chat_tracker.storage.chatlog import parse_line
from support.peers import json_peer, plain_member, plain_peer
from support.timing import UNIT
from support.tracker import PASSWORD, RunningTracker

pytestmark = pytest.mark.anyio


def logged_kinds(tracker: RunningTracker) -> list[str]:
    return [parse_line(line).kind for line in tracker.log_lines()]


@pytest.mark.parametrize("guess", ["wrong", "", " " + PASSWORD, PASSWORD.upper(), "pässwörd", "x" * 60000])
async def test_wrong_password_in_plain_text_is_refused(tracker: RunningTracker, guess: str) -> None:
    """A wrong, empty, very long or non-ASCII password gets an error line and close 4001; nothing joins."""
    async with plain_peer(tracker.url) as peer:
        assert await peer.line() == "Enter server password..."
        await peer.send(guess)
        assert await peer.closed() == (4001, ["Wrong password. Bye."])
    assert logged_kinds(tracker) == ["start"]


async def test_non_ascii_password_works(start_tracker: object) -> None:
    """A password with non-ASCII characters is compared as UTF-8 bytes and admits its holder."""
    tracker = start_tracker(password="pässwörd✓")  # type: ignore[operator]
    async with plain_member(tracker.url, "pässwörd✓", "alpha"):
        pass


async def test_wrong_header_password_is_refused_before_hello(tracker: RunningTracker) -> None:
    """A wrong Authorization header gets error bad_password and close 4001, without a hello."""
    async with json_peer(tracker.url, "wrong") as peer:
        code, seen = await peer.closed()
    assert code == 4001
    assert [m.code for m in seen if isinstance(m, Error)] == ["bad_password"]
    assert not any(isinstance(m, Hello) for m in seen)


async def test_wrong_auth_frame_is_refused(tracker: RunningTracker) -> None:
    """A wrong password in the auth frame gets close 4001."""
    async with json_peer(tracker.url) as peer:
        await peer.expect(Hello)
        await peer.send(type="auth", password="nope")
        code, seen = await peer.closed()
    assert code == 4001 and isinstance(seen[0], Error) and seen[0].code == "bad_password"


async def test_anything_but_auth_before_authentication_is_a_protocol_error(tracker: RunningTracker) -> None:
    """A join (or junk) before the password closes with 4008: nobody joins unauthenticated."""
    for frame in ('{"type":"join","name":"mallory"}', "not json", '{"type":"message","text":"hi"}'):
        async with json_peer(tracker.url) as peer:
            await peer.expect(Hello)
            await peer.ws.send_text(frame)
            code, _ = await peer.closed()
            assert code == 4008
    assert logged_kinds(tracker) == ["start"]


async def test_password_in_url_is_refused_and_never_logged(tracker: RunningTracker) -> None:
    """A /ws URL with a query string is closed with 4003 and the password appears in no log."""
    secret_in_url = f"{tracker.url}?password={PASSWORD}"
    async with plain_peer(secret_in_url) as peer:
        code, seen = await peer.closed()
    assert code == 4003 and seen == ["! never put the password in the URL"]
    tracker.stop()
    assert not any(PASSWORD in line for line in tracker.output)
    assert not any(PASSWORD in line for line in tracker.log_lines())


async def test_unauthenticated_socket_gets_a_deadline(start_tracker: object) -> None:
    """A connection that never sends the password is closed with 4002 after --auth-timeout."""
    tracker = start_tracker("--auth-timeout", "0.5")  # type: ignore[operator]
    async with plain_peer(tracker.url) as peer:
        code, seen = await peer.closed(timeout=4 * UNIT)
    assert code == 4002
    assert seen == ["Enter server password...", "! no password within 0.5 s"]


async def test_unjoined_socket_gets_a_deadline(start_tracker: object) -> None:
    """An authenticated connection that never picks a name is closed with 4002 after --join-timeout."""
    tracker = start_tracker("--join-timeout", "0.5")  # type: ignore[operator]
    async with json_peer(tracker.url, PASSWORD) as peer:
        await peer.expect(Hello)
        code, _ = await peer.closed(timeout=4 * UNIT)
    assert code == 4002


async def test_repeated_guessing_refuses_that_address_at_once_but_not_others(tracker: RunningTracker) -> None:
    """After its free failures 127.0.0.1 is refused at once (4013, a retry time), even with the right password;
    127.0.0.2 gets in at once; once the delay is over the right password works from 127.0.0.1 again."""

    async def attempt(password: str, source: str) -> tuple[int | None, list[str]]:
        async with plain_peer(tracker.url, local_addr=(source, 0)) as peer:
            await peer.line()
            await peer.send(password)
            if password != PASSWORD:
                return await peer.closed()
            first = await peer.line()
            if first != "Welcome to our server...":
                code, rest = await peer.closed()
                return code, [first, *rest]
            return None, [first]

    for _ in range(3):  # the free failures: checked and answered at once; the 3rd closes the address for 0.5 s
        assert (await attempt("guess", "127.0.0.1"))[0] == 4001
    started = asyncio.get_running_loop().time()
    code, seen = await attempt(PASSWORD, "127.0.0.1")
    assert code == 4013 and seen[0].startswith("! too many wrong passwords from your address; retry in 1 s"), seen
    assert asyncio.get_running_loop().time() - started < 0.5 * UNIT, "refused, not parked"
    assert (await attempt(PASSWORD, "127.0.0.2")) == (None, ["Welcome to our server..."])
    await asyncio.sleep(0.6)  # the announced retry time (0.5 s) passes: a wall-clock rule, not synchronisation
    assert (await attempt(PASSWORD, "127.0.0.1")) == (None, ["Welcome to our server..."])


async def test_auth_frame_after_authentication_is_refused(tracker: RunningTracker) -> None:
    """A second auth frame gets an error and the connection stays usable."""
    async with json_peer(tracker.url) as peer:
        await peer.expect(Hello)
        await peer.send(type="auth", password=PASSWORD)
        await peer.expect(Authenticated)
        await peer.send(type="auth", password=PASSWORD)
        error = await peer.expect(Error)
        assert error.code == "already_authenticated"
