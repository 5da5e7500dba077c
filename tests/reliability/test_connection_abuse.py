"""One address must not be able to fill the tracker: caps, members before strangers, deadlines, proxies.

Each test starts a real tracker on 127.0.0.1 and attacks it from other loopback
addresses (127.x.y.z: each is a distinct client address to the tracker) with raw
sockets: WebSocket upgrades that never send the password, HTTP requests whose
headers never end. Members join and chat from fresh addresses meanwhile. Counts go
to the figures file (docs/reliability.md, "Connection abuse").
"""

from __future__ import annotations

import asyncio
import re
import resource
import struct
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from support.bots import Bot, open_bot
from support.campaign import error_lines, record
from support.environment import require
from support.timing import UNIT
from support.tracker import PASSWORD, RunningTracker, tracker_command

pytestmark = pytest.mark.anyio

T = TypeVar("T")
KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # any 16 bytes in base64 will do
UPGRADE = (
    "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n"
)


def raise_own_fd_limit(needed: int) -> None:
    """This test process holds ``needed`` sockets at once: raise the soft limit, or skip (fail in CI)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    require(hard == resource.RLIM_INFINITY or hard >= needed, f"needs {needed} descriptors; the hard limit is {hard}")
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@dataclass
class Raw:
    """A raw TCP connection to the tracker from a chosen loopback address."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    opened: float
    status: int = 0  # the HTTP status answered to the request, once read (0: not read)

    def close(self) -> None:
        self.writer.transport.abort()


async def raw(port: int, source: str, data: bytes) -> Raw:
    started = time.monotonic()  # before the connect: the tracker's deadline cannot start earlier
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0), limit=2**20)
    writer.write(data)
    return Raw(reader, writer, started)


async def upgrade(port: int, source: str, headers: str = "") -> Raw:
    """A WebSocket upgrade (plain dialect) that will never send a password; the answer's status read."""
    conn = await raw(port, source, (UPGRADE + headers + "\r\n").encode())
    head = await asyncio.wait_for(conn.reader.readuntil(b"\r\n\r\n"), 4 * UNIT)
    conn.status = int(head.split(b" ", 2)[1])
    return conn


async def close_code(conn: Raw, timeout: float = 2 * UNIT) -> int | None:
    """Read the server's (unmasked) frames until a close frame: its code; None at EOF."""
    reader = conn.reader
    try:
        async with asyncio.timeout(timeout):
            while True:
                head = await reader.readexactly(2)
                length = head[1] & 0x7F
                if length == 126:
                    length = struct.unpack("!H", await reader.readexactly(2))[0]
                elif length == 127:
                    length = struct.unpack("!Q", await reader.readexactly(8))[0]
                payload = await reader.readexactly(length)
                if head[0] & 0x0F == 0x8:
                    return int(struct.unpack("!H", payload[:2])[0]) if len(payload) >= 2 else 1005
    except asyncio.IncompleteReadError:
        return None


async def eof_after(conn: Raw, timeout: float) -> tuple[float, bytes]:
    """Wait for the tracker to close ``conn``: seconds since it was opened, and what it sent first."""
    async with asyncio.timeout(timeout):
        data = await conn.reader.read()
    return time.monotonic() - conn.opened, data


async def in_batches(makers: Iterable[Callable[[], Awaitable[T]]], size: int = 200) -> list[T]:
    """Run the coroutines ``size`` at a time (a burst of thousands of SYNs overflows the listen backlog)."""
    pending = list(makers)
    done: list[T] = []
    for start in range(0, len(pending), size):
        done += await asyncio.gather(*(make() for make in pending[start : start + size]))
    return done


async def members(tracker: RunningTracker, count: int, subnet: str) -> list[Bot]:
    """``count`` JSON members joined, each from its own fresh address ``subnet.N``."""
    return [
        await open_bot(tracker.url, PASSWORD, f"m{subnet.split('.')[-1]}x{n}", local_addr=(f"{subnet}.{n}", 0))
        for n in range(1, count + 1)
    ]


async def chat_round(bots: list[Bot], text: str) -> float:
    """One member says ``text``; seconds until every member has received it."""
    sent = time.monotonic()
    await bots[0].say(text)
    for bot in bots:
        while (await bot.expect("message"))["text"] != text:
            pass
    return time.monotonic() - sent


async def gauge(tracker: RunningTracker, name: str, source: str = "127.0.99.1") -> float:
    """A value from /metrics, fetched from an address of its own."""
    transport = httpx.AsyncHTTPTransport(local_address=source)
    async with httpx.AsyncClient(transport=transport, timeout=UNIT) as client:
        text = (await client.get(f"{tracker.http_url}/metrics")).text
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


async def http_get(tracker: RunningTracker, source: str, path: str = "/healthz", **headers: str) -> httpx.Response:
    transport = httpx.AsyncHTTPTransport(local_address=source)
    async with httpx.AsyncClient(transport=transport, timeout=UNIT) as client:
        return await client.get(f"{tracker.http_url}{path}", headers=headers)


async def test_one_address_cannot_fill_the_tracker(start_tracker: Any) -> None:
    """1,000 upgrades from one address: 16 sockets at most (8 strangers), the rest 429 at once; members join."""
    raise_own_fd_limit(3000)
    tracker: RunningTracker = start_tracker("--max-connections", "100", address_limits=True)  # 16 and 8
    attacker = "127.0.9.1"
    started = time.monotonic()
    conns = await in_batches(lambda: upgrade(tracker.port, attacker) for _ in range(1000))
    statuses = [c.status for c in conns]
    attack_seconds = time.monotonic() - started
    assert statuses.count(101) == 16 and statuses.count(429) == 984, sorted(set(statuses))
    upgraded = [c for c in conns if c.status == 101]
    refused_codes = await asyncio.gather(*(close_code(c, timeout=UNIT) for c in upgraded[8:]))
    assert refused_codes == [4009] * 8, refused_codes  # past the address's stranger share
    busy = await http_get(tracker, attacker)
    assert busy.status_code == 429 and busy.headers["retry-after"] == "10", busy
    joined = time.monotonic()
    room = await members(tracker, 20, "127.0.10")
    join_seconds = time.monotonic() - joined
    assert await chat_round(room, "still room for members") < UNIT
    connections = await gauge(tracker, "chat_connections")
    assert connections == 8 + 20  # the attacker's 8 strangers are all it holds
    for conn in conns:
        conn.close()
    assert error_lines(tracker.output) == []
    record(
        "connection_abuse",
        test="one_address",
        sockets=len(conns),
        refused_429=statuses.count(429),
        refused_4009=refused_codes.count(4009),
        held=int(connections) - len(room),
        members=len(room),
        attack_seconds=round(attack_seconds, 2),
        join_seconds=round(join_seconds, 2),
    )


async def test_members_get_in_while_strangers_fill_the_tracker(start_tracker: Any) -> None:
    """1,500 strangers from 125 addresses fill --max-connections 100; 30 members still join, none is dropped."""
    raise_own_fd_limit(4000)
    tracker: RunningTracker = start_tracker("--max-connections", "100", address_limits=True)
    sources = [f"127.0.11.{n}" for n in range(1, 126)]
    wave = await in_batches(partial(upgrade, tracker.port, source) for source in sources * 8)
    assert all(c.status == 101 for c in wave)
    room = await members(tracker, 30, "127.0.12")
    assert await chat_round(room, "in despite the flood") < UNIT
    second = await in_batches(partial(upgrade, tracker.port, source) for source in sources * 4)
    attackers = wave + second
    codes = await asyncio.gather(*(close_code(c, timeout=UNIT) for c in attackers[:-70]))
    assert set(codes) <= {4005, 4009}, set(codes)
    assert await chat_round(room, "nobody dropped") < UNIT  # every member received it: none was dropped
    dropped = sum(bot.ws.protocol.close_rcvd is not None for bot in room)
    assert await gauge(tracker, "chat_connections") == 100  # 30 members and the 70 newest strangers
    for conn in attackers:
        conn.close()
    assert error_lines(tracker.output) == []
    record(
        "connection_abuse",
        test="strangers_fill",
        sockets=len(attackers),
        dropped_for_room=codes.count(4005),
        refused_4009=codes.count(4009),
        members=len(room),
        members_dropped=dropped,
    )


async def test_slowloris_sockets_are_closed_at_the_header_deadline(start_tracker: Any) -> None:
    """2,000 half-open HTTP requests and 200 half-finished upgrades are closed after --header-timeout."""
    raise_own_fd_limit(5000)
    deadline = 2.0
    flags = ("--header-timeout", str(deadline), "--rate", "1000", "--burst", "1000")
    tracker: RunningTracker = start_tracker(*flags, address_limits=True)
    room = await members(tracker, 3, "127.0.22")
    half_http = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"  # no blank line: the headers never end
    half_upgrade = UPGRADE.encode()
    started = time.monotonic()
    http_sockets = await in_batches(
        partial(raw, tracker.port, f"127.0.20.{n % 125 + 1}", half_http) for n in range(2000)
    )
    upgrade_sockets = await in_batches(
        partial(raw, tracker.port, f"127.0.21.{n % 25 + 1}", half_upgrade) for n in range(200)
    )
    sockets = http_sockets + upgrade_sockets
    opened_in = time.monotonic() - started
    closing = asyncio.gather(*(eof_after(s, deadline + 4 * UNIT) for s in sockets))
    latencies: list[float] = []
    healthy = await http_get(tracker, "127.0.23.1")  # a fresh address is served meanwhile
    assert healthy.status_code == 200
    while not closing.done():
        latencies.append(await chat_round(room, f"chatting {len(latencies)}"))
    results = await closing
    lifetimes = [lifetime for lifetime, _ in results]
    assert all(answer.startswith(b"HTTP/1.1 408 ") for _, answer in results)
    assert min(lifetimes) >= deadline - 0.05, min(lifetimes)
    assert max(lifetimes) < deadline + 0.6 * UNIT, max(lifetimes)
    assert max(latencies) < UNIT / 5, f"a member waited {max(latencies):.2f} s for an echo"
    assert error_lines(tracker.output) == []
    record(
        "connection_abuse",
        test="slowloris",
        sockets=len(sockets),
        half_open_http=len(http_sockets),
        half_upgrades=len(upgrade_sockets),
        addresses=len({conn.writer.get_extra_info("sockname")[0] for conn in sockets}),
        opened_seconds=round(opened_in, 2),
        closed_after_min=round(min(lifetimes), 2),
        closed_after_max=round(max(lifetimes), 2),
        chat_rounds=len(latencies),
        echo_max_ms=round(max(latencies) * 1000, 1),
    )


async def test_a_dribbling_request_is_closed_at_the_deadline_not_kept_alive(start_tracker: Any) -> None:
    """One header byte every 0.2 s does not extend the deadline: it is for the whole request head."""
    tracker: RunningTracker = start_tracker("--header-timeout", "1", address_limits=True)
    conn = await raw(tracker.port, "127.0.24.1", b"G")
    answer = None
    dribbled = 1
    for byte in b"ET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
        try:  # the attack's pace: a byte whenever 0.2 s pass without the tracker closing the socket
            answer = await asyncio.wait_for(conn.reader.read(), 0.2)
            break
        except TimeoutError:
            conn.writer.write(bytes([byte]))
            dribbled += 1
    lifetime = time.monotonic() - conn.opened
    assert answer is not None and answer.startswith(b"HTTP/1.1 408 "), answer
    assert 1.0 <= lifetime < 1.0 + UNIT / 5, lifetime
    conn.close()
    record("connection_abuse", test="dribble", sockets=len([conn]), bytes_dribbled=dribbled)


async def _guess_seconds(tracker: RunningTracker, source: str, forwarded: str | None = None) -> tuple[int, float]:
    """A wrong password in the upgrade's Authorization header: the close code and how long it took."""
    headers = "Sec-WebSocket-Protocol: groupchat.v1\r\nAuthorization: Bearer wrong\r\n"
    if forwarded is not None:
        headers += f"X-Forwarded-For: {forwarded}\r\n"
    started = time.monotonic()
    conn = await upgrade(tracker.port, source, headers)
    assert conn.status == 101
    code = await close_code(conn)
    conn.close()
    assert code is not None
    return code, time.monotonic() - started


async def _refused_after_three(
    tracker: RunningTracker, source: str, forwarded: Callable[[int], str | None]
) -> tuple[int, int]:
    """Three wrong guesses (the free ones: checked, 4001), then the fourth, sent at once: its close code, and
    how many guesses (sockets) were made."""
    guesses = 0
    for attempt in range(3):
        assert (await _guess_seconds(tracker, source, forwarded(attempt)))[0] == 4001
        guesses += 1
    code, seconds = await _guess_seconds(tracker, source, forwarded(3))
    assert seconds < 0.3 * UNIT, f"the fourth guess was parked ({seconds:.2f} s)"
    return code, guesses + 1


async def test_forwarded_for_from_an_untrusted_address_is_ignored(start_tracker: Any) -> None:
    """A forged X-Forwarded-For neither escapes the throttle nor the cap, nor reaches the log."""
    flags = ("--trusted-proxies", "127.0.0.5", "--max-connections-per-address", "4")
    tracker: RunningTracker = start_tracker(*flags, address_limits=True)
    forger = "127.0.30.1"
    refused, guesses = await _refused_after_three(tracker, forger, lambda n: f"203.0.113.{n + 1}")
    assert refused == 4013, f"a fresh forged address per guess escaped the throttle ({refused})"
    conns = await in_batches(
        partial(upgrade, tracker.port, forger, f"X-Forwarded-For: 198.51.100.{n}\r\n") for n in range(1, 7)
    )
    assert sorted(c.status for c in conns) == [101] * 4 + [429] * 2
    for conn in conns:
        conn.close()
    wrong = [line for line in tracker.output if "Wrong password from" in line]
    honoured = sum(not line.endswith(f"from {forger}") for line in wrong)  # a log line naming a forged address
    honoured += sum(conn.status == 101 for conn in conns) - 4  # sockets past the cap of 4
    record("connection_abuse", test="forged_forwarded_for", sockets=guesses + len(conns), honoured=honoured)
    assert wrong and honoured == 0, wrong


async def _join_through(tracker: RunningTracker, proxy: str, client: str, name: str) -> Raw:
    """A JSON member joining through ``proxy`` that names ``client``; returns once welcomed."""
    headers = (
        f"Sec-WebSocket-Protocol: groupchat.v1\r\nAuthorization: Bearer {PASSWORD}\r\nX-Forwarded-For: {client}\r\n"
    )
    conn = await upgrade(tracker.port, proxy, headers)
    assert conn.status == 101
    join = f'{{"type":"join","name":"{name}"}}'.encode()
    conn.writer.write(bytes([0x81, 0x80 | len(join)]) + b"\0\0\0\0" + join)  # masked with a zero key
    async with asyncio.timeout(4 * UNIT):
        while b'"welcome"' not in await conn.reader.readuntil(b"}"):
            pass
    return conn


async def test_forwarded_for_from_a_trusted_proxy_names_the_client(start_tracker: Any) -> None:
    """Through a trusted proxy the named client is throttled and capped, not the proxy; logs name the client."""
    proxy = "127.0.0.5"
    flags = ("--trusted-proxies", proxy, "--max-connections-per-address", "4")
    tracker: RunningTracker = start_tracker(*flags, address_limits=True)
    refused, guesses = await _refused_after_three(tracker, proxy, lambda n: "203.0.113.7")
    assert refused == 4013, f"the named guesser was not refused ({refused})"
    code, other = await _guess_seconds(tracker, proxy, "203.0.113.8")
    guesses += 1
    assert code == 4001 and other < 0.3 * UNIT, f"another client behind the proxy was refused too ({other:.2f} s)"
    rest_honoured = 0
    rest = (("203.0.113.7", 429), ("203.0.113.9", 401))  # REST shares the throttle
    for client, status in rest:
        answer = await http_get(tracker, proxy, "/members", authorization="Bearer wrong", **{"x-forwarded-for": client})
        rest_honoured += answer.status_code == status
        assert answer.status_code == status, (client, answer.status_code)
    named = await in_batches(
        partial(upgrade, tracker.port, proxy, "X-Forwarded-For: 198.51.100.1\r\n") for _ in range(6)
    )
    others = await in_batches(
        partial(upgrade, tracker.port, proxy, f"X-Forwarded-For: 198.51.100.{n}\r\n") for n in range(2, 6)
    )
    assert sorted(c.status for c in named) == [101] * 4 + [429] * 2  # the cap counts the named client
    assert [c.status for c in others] == [101] * 4  # the proxy itself is not capped
    member = await _join_through(tracker, proxy, "198.51.100.9", "proxied")
    tracker.wait_for_output(r"proxied has been added \(198\.51\.100\.9, json\)")
    member.close()
    for conn in named + others:
        conn.close()
    wrong = [line for line in tracker.output if "Wrong password from" in line]
    assert any(line.endswith("from 203.0.113.7") for line in wrong), wrong
    assert any(line.endswith("from 203.0.113.8") for line in wrong), wrong
    assert not any(line.endswith(f"from {proxy}") for line in wrong), wrong
    # Honoured: each outcome that shows the named client was used: a guess logged under it (or refused
    # for its own earlier guesses), a REST answer throttled for it, an upgrade refused by its own cap or
    # let in past the proxy's, the member logged with it.
    honoured = sum(line.endswith(("from 203.0.113.7", "from 203.0.113.8")) for line in wrong) + (refused == 4013)
    honoured += rest_honoured + sum(c.status == 429 for c in named) + sum(c.status == 101 for c in others)
    honoured += sum("proxied has been added (198.51.100.9" in line for line in tracker.output)
    sockets = guesses + len(named) + len(others) + 1  # the guesses, the capped upgrades, the member
    record(
        "connection_abuse", test="trusted_forwarded_for", sockets=sockets, rest_requests=len(rest), honoured=honoured
    )


async def test_the_socket_total_stays_below_the_descriptor_limit(start_tracker: Any) -> None:
    """With only 300 descriptors, 600 half-open sockets cannot starve the tracker: the oldest make room."""
    raise_own_fd_limit(2000)
    flags = ("--max-connections", "100", "--header-timeout", "60")
    nofile = 300
    tracker: RunningTracker = start_tracker(*flags, nofile=(nofile, nofile), address_limits=True)
    sockets = await in_batches(
        partial(raw, tracker.port, f"127.0.40.{n % 60 + 1}", b"GET / HTTP/1.1\r\n") for n in range(600)
    )
    room = await members(tracker, 5, "127.0.41")
    assert await chat_round(room, "the tracker still accepts") < UNIT
    assert (await http_get(tracker, "127.0.42.1")).status_code == 200
    dropped = sum(s.reader.at_eof() or s.writer.transport.is_closing() for s in sockets)
    assert dropped >= 600 - 236, f"only {dropped} half-open sockets were dropped at the ceiling"
    for conn in sockets:
        conn.close()
    troubles = error_lines(tracker.output) + [line for line in tracker.output if "Too many open files" in line]
    assert troubles == [], "the tracker ran out of descriptors"
    record(
        "connection_abuse", test="descriptor_ceiling", sockets=len(sockets), nofile=nofile, dropped_half_open=dropped
    )


def _start_with_limit(tmp: Path, nofile: tuple[int, int], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*tracker_command(tmp, nofile), *args],
        env={"TRACKER_PASSWORD": PASSWORD, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=4 * UNIT,
        check=False,
    )


def test_a_max_connections_that_cannot_fit_refuses_to_start(tmp_path: Path) -> None:
    """Hard limit 256, --max-connections 1000: exit 2 and one line saying what to change."""
    result = _start_with_limit(tmp_path, (256, 256), "--max-connections", "1000")
    assert result.returncode == 2, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("chat-tracker: error: --max-connections 1000 needs 1064"), lines
    assert not (tmp_path / "chat.log").exists()
    # No socket is opened here (the tracker refuses to start): the row carries what was checked.
    record("connection_abuse", test="descriptor_check", exit_status=result.returncode, error_lines=len(lines))


def test_the_soft_descriptor_limit_is_raised_to_the_hard_one(start_tracker: Any) -> None:
    """Soft 256, hard 2048, --max-connections 1000: the tracker starts with 2048 as its soft limit."""
    tracker: RunningTracker = start_tracker("--max-connections", "1000", nofile=(256, 2048))
    limits = Path(f"/proc/{tracker.process.pid}/limits").read_text()
    row = next(line for line in limits.splitlines() if line.startswith("Max open files"))
    assert row.split()[3:5] == ["2048", "2048"], row
    record("connection_abuse", test="descriptor_raise", soft_limit=int(row.split()[3]))  # no socket opened here
