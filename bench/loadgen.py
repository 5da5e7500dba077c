"""One load-generator process: many raw WebSocket clients on one uvloop loop.

The controller (``bench.workloads``) starts several of these, pinned away from the
server's core, and drives them with one JSON command per line on stdin; each
command is answered with one JSON line on stdout.

The clients are deliberately lower-level than the ``websockets`` client: an
``asyncio.Protocol`` that does the HTTP upgrade itself and parses server frames
straight out of the received bytes, so that counting a delivery and its latency
costs about a microsecond and the generator is not what a figure measures.
Client frames use the all-zero masking key (RFC 6455 allows any key; the server
still runs its unmasking code), which spares the generator a Python XOR loop.

Messages end with the sender's ``time.monotonic_ns()`` as 19 digits. On Linux
CLOCK_MONOTONIC is one system-wide clock, so a receiver in another process takes
``now - stamp`` as the end-to-end latency; ``now`` is read once per received
chunk (every frame in a chunk arrived at the same moment). Every message is
counted, but only every ``SAMPLE_EVERY``-th one (per process) has its stamp parsed
into a latency: the parse was most of the receive path's cost, and a uniform
1-in-16 sample still gives thousands of latencies per window for the percentiles.
Notices (lines starting with ``*``) are counted in the same scan, without building
a per-frame object, so that a join storm's tens of millions of notices stay cheap.

Publishers send with one of three arrival patterns (``ARRIVALS``, see ``Worker.publish``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import resource
import socket
import sys
import time
from array import array
from collections import Counter
from collections.abc import Iterator
from typing import Any, cast

import uvloop

from .broadcasts import TAIL, Receipts, broadcast_loop

STAMP_DIGITS = 19
ASTERISK, BANG = ord("*"), ord("!")
SLOW_NOTICE = b"too slow"
PASSPHRASE_PROMPT = b"This name is registered"  # the plain dialect's question to a registered name
OP_TEXT, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x8, 0x9, 0xA
ZERO_MASK = b"\0\0\0\0"
SMALL_RCVBUF = 8192  # bytes, for members that will stall
SAMPLE_EVERY = 16  # a power of two: one message in this many has its latency parsed
MS = 1_000_000  # ns: the event loop's timer resolution, and the bin of the achieved-spread figure
ARRIVALS = ("lockstep", "even", "poisson")


def client_frame(payload: bytes, opcode: int = OP_TEXT) -> bytes:
    """A final, masked (with the zero key) client frame."""
    length = len(payload)
    if length < 126:
        head = bytes((0x80 | opcode, 0x80 | length))
    elif length < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + length.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + length.to_bytes(8, "big")
    return head + ZERO_MASK + payload


class Tally:
    """What this process's healthy clients received in the current window."""

    def __init__(self) -> None:
        # The capacity workload's per-broadcast receipts (bench.broadcasts), while it runs; else None
        self.receipts: Receipts | None = None
        self.reset()

    def reset(self) -> None:
        self.latencies = array("q")  # ns, one per delivered message
        self.messages = 0
        self.notices = 0
        self.slow_notices = 0
        self.first_slow_notice_ns = 0  # when the first "too slow" notice arrived (monotonic ns)
        self.last_notice_ns = 0  # when the latest notice arrived (monotonic ns): a join storm's end
        self.errors = 0
        self.sampled = 0  # messages seen towards the next latency sample


class Client(asyncio.Protocol):
    """One member speaking the plain-text dialogue."""

    def __init__(self, name: str, password: str, request: bytes, tally: Tally, passphrase: str = "") -> None:
        self.name = name
        self.password = password.encode()
        self.passphrase = passphrase.encode()  # a registered member's, sent when the tracker asks for it
        self.request = request
        self.tally = tally
        self.state = "handshake"
        self.joined: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.rest = b""
        self.stalled = False
        self.counted = True  # only the measured server's members count in a window
        self.close_code: int | None = None
        self.lost = False
        self.stalled_messages = 0
        self.entered: asyncio.Future[None] | None = None  # while entering a room (``enter``)

    # --- asyncio.Protocol ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transport is no asyncio.Transport subclass, but it has the same methods.
        self.transport = cast("asyncio.Transport", transport)
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = self.close_code is None
        self.state = "closed"
        self._fail("connection lost before joining")

    def data_received(self, data: bytes) -> None:
        if self.rest:
            data = self.rest + data
        if self.state == "handshake":
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.rest = data
                return
            if b" 101 " not in data[: data.find(b"\r\n")]:
                self._fail("upgrade refused: " + data[:40].decode("latin-1"))
                self.transport.close()  # type: ignore[union-attr]
                return
            self.state = "password"
            data = data[end + 4 :]
        self.rest = self._frames(data)

    # --- frames ----------------------------------------------------------------------

    def _frames(self, data: bytes) -> bytes:
        """Handle every whole frame in ``data``; return the unfinished tail.

        The common frames (a chat line, a notice) of a counted member are only counted
        here; one message in ``SAMPLE_EVERY`` has its stamp parsed into a latency.
        """
        now = time.monotonic_ns()
        size = len(data)
        pos = 0
        tally = self.tally
        fast = self.state == "joined" and not self.stalled and self.counted
        messages = notices = 0
        seen = tally.sampled
        receipts = tally.receipts
        while pos + 2 <= size:
            length = data[pos + 1] & 0x7F
            head = 2
            if length == 126:
                if pos + 4 > size:
                    break
                length = int.from_bytes(data[pos + 2 : pos + 4], "big")
                head = 4
            elif length == 127:
                if pos + 10 > size:
                    break
                length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                head = 10
            end = pos + head + length
            if end > size:
                break
            first = data[pos + head] if length else 0
            if fast and data[pos] == 0x81 and first != BANG:
                if first != ASTERISK:
                    messages += 1
                    if receipts is not None:
                        receipts.receipt(data[end - TAIL : end], now)
                    seen += 1
                    if not seen & (SAMPLE_EVERY - 1):
                        self._sample(now, data[end - STAMP_DIGITS : end])
                elif data.find(SLOW_NOTICE, pos + head, end) < 0:
                    notices += 1
                else:
                    self._text(data[pos + head : end])
            else:
                self._slow_path(data[pos] & 0x0F, data[pos + head : end])
                fast = self.state == "joined" and not self.stalled and self.counted
            pos = end
        tally.messages += messages
        tally.sampled = seen
        if notices:
            tally.notices += notices
            tally.last_notice_ns = now
        return data[pos:]

    def _sample(self, now: int, stamp: bytes) -> None:
        try:
            self.tally.latencies.append(now - int(stamp))
        except ValueError:  # only sampled frames are parsed, so errors are undercounted 16-fold
            self.tally.errors += 1

    def _slow_path(self, opcode: int, payload: bytes) -> None:
        if opcode == OP_PING:
            self._write(client_frame(payload, OP_PONG))
        elif opcode == OP_CLOSE:
            self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            self._fail(f"closed {self.close_code} before joining")
            self.state = "closed"
            if self.transport is not None:
                self.transport.close()
        elif opcode == OP_TEXT:
            self._text(payload)

    def _text(self, line: bytes) -> None:
        state = self.state
        if state == "entering":
            self._entering(line)
        elif state == "joined":
            if not self.counted:
                pass
            elif self.stalled:
                self.stalled_messages += 1
            elif line[:1] == b"*":
                self.tally.notices += 1
                self.tally.last_notice_ns = time.monotonic_ns()
                if SLOW_NOTICE in line:
                    self.tally.slow_notices += 1
                    if not self.tally.first_slow_notice_ns:
                        self.tally.first_slow_notice_ns = time.monotonic_ns()
            elif line[:1] == b"!":
                self.tally.errors += 1
        elif state == "password" and line.startswith(b"Enter server password"):
            self.state = "name"
            self._write(client_frame(self.password))
        elif state == "name" and line.startswith(b"Enter your username"):
            self.state = "welcome"
            self._write(client_frame(self.name.encode()))
        elif state == "welcome" and self.passphrase and line.startswith(PASSPHRASE_PROMPT):
            self._write(client_frame(self.passphrase))
        elif state == "welcome" and line.startswith(b"Just type"):
            self.state = "joined"
            if not self.joined.done():
                self.joined.set_result(None)
        elif line.startswith((b"Wrong password", b"Name refused")):
            self._fail(line.decode("utf-8", "replace"))

    def _entering(self, line: bytes) -> None:
        """While ``/join #room`` is on its way: its answer ends the entering; whatever else comes is let go."""
        if line.startswith(b"* You are in "):
            self._entered(None)
        elif line[:1] == b"!":
            self._entered(line.decode("utf-8", "replace"))

    def _entered(self, refusal: str | None) -> None:
        """The room's answer: in (``refusal`` None), or refused; the member is back to counting either way."""
        self.state = "joined"
        if self.entered is not None and not self.entered.done():
            if refusal is None:
                self.entered.set_result(None)
            else:
                self.entered.set_exception(ConnectionError(refusal))

    def _fail(self, reason: str) -> None:
        if not self.joined.done():
            self.joined.set_exception(ConnectionError(reason))
        if self.entered is not None and not self.entered.done():
            self.entered.set_exception(ConnectionError(reason))

    def _write(self, frame: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(frame)

    # --- commands ----------------------------------------------------------------------

    def say(self, payload: bytes) -> None:
        self._write(client_frame(payload))

    def enter(self, room: str) -> asyncio.Future[None]:
        """Enter ``room`` (``#name``) besides the default room; what this member says goes there from then on."""
        self.entered = asyncio.get_running_loop().create_future()
        self.state = "entering"  # off the fast path, so that the answer is read, not counted
        self._write(client_frame(b"/join " + room.encode()))
        return self.entered

    def stall(self) -> None:
        """Stop reading: the kernel buffers fill, then the server's."""
        self.stalled = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()


class Worker:
    """Holds this process's clients and answers the controller's commands."""

    def __init__(self) -> None:
        self.clients: dict[str, Client] = {}
        self.tally = Tally()
        self.window_cpu = 0.0
        self.window_wall = 0.0
        self.armed = Receipts()  # the capacity workload's receipts, once capacity_arm opened its socket

    # Each command returns a JSON-able dict.

    async def connect(
        self,
        host: str,
        port: int,
        path: str,
        password: str,
        names: list[str],
        concurrency: int,
        timeout: float,
        small_buffers: list[str] | None = None,
        protocol: str = "ws",
        passphrase: str = "",
    ) -> dict[str, Any]:
        """Join ``names``; at most ``concurrency`` handshakes in flight, ``timeout`` s in all.

        ``passphrase``: the names are registered accounts of the tracker's, signed in with it.

        ``small_buffers`` get a small kernel receive buffer, so that when they stop reading
        the server feels it in seconds rather than after megabytes of loopback buffering.
        ``protocol`` is the server's (``Server.protocol``): ``ws``, or ``irc``/``resp`` for
        the native references, whose clients send no HTTP upgrade.
        """
        member = client_class(protocol)
        signing_in = (passphrase,) if passphrase else ()  # the peers' clients take no passphrase
        shrink = set(small_buffers or ())
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(concurrency)
        errors: Counter[str] = Counter()
        started = time.monotonic()
        deadline = started + timeout

        async def join(name: str) -> bool:
            async with gate:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    errors["not attempted in time"] += 1
                    return False
                key = base64.b64encode(os.urandom(16)).decode()
                request = (
                    f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                ).encode()
                if protocol != "ws":
                    request = b""  # IRC and RESP start talking at once: no HTTP upgrade
                client: Client | None = None
                try:
                    async with asyncio.timeout(remaining):
                        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                        if name in shrink:
                            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_RCVBUF)
                        sock.setblocking(False)
                        try:
                            await loop.sock_connect(sock, (host, port))
                        except BaseException:
                            sock.close()
                            raise
                        _, client = await loop.create_connection(
                            lambda: member(name, password, request, self.tally, *signing_in), sock=sock
                        )
                        await client.joined
                except (OSError, TimeoutError) as exc:
                    errors[f"{type(exc).__name__}: {str(exc)[:60]}"] += 1
                    if client is not None and client.transport is not None:
                        client.transport.abort()
                    return False
                self.clients[name] = client
                return True

        results = await asyncio.gather(*(join(name) for name in names))
        return {
            "joined": sum(results),
            "failed": len(names) - sum(results),
            "members": [name for name, ok in zip(names, results, strict=True) if ok],
            "seconds": time.monotonic() - started,
            "errors": dict(errors),
        }

    async def publish(
        self,
        names: list[str],
        rate: float,
        seconds: float,
        start_ns: int,
        size: int,
        arrivals: str = "lockstep",
        slots: list[int] | None = None,
        period: int = 0,
        seed: int = 0,
        pick: str = "turn",
    ) -> dict[str, Any]:
        """Send ``rate`` messages/s in all from ``names`` for ``seconds`` from ``start_ns``.

        ``pick`` is who sends each message: ``turn``, the senders in turn; ``random``, one drawn
        at random each time (seeded by ``seed``), as the many-rooms workload spreads its messages
        over the rooms its senders speak in (``bench.rooms``).

        ``arrivals`` is how the sends are spaced in time:

        - ``lockstep``: every millisecond tick, all messages due by then go out together,
          round-robin over ``names`` (the harness's original pattern, kept as it was).
        - ``even``: the whole room's messages evenly spread: message k of the room is due at
          ``start_ns + k / room rate``, sent by the room's publisher ``k % period``. This
          process owns the publishers at indices ``slots`` (``names[i]`` is publisher
          ``slots[i]``), so the room's rate is ``rate * period / len(slots)`` and the
          processes' messages interleave without any coordination but the common start.
        - ``poisson``: exponential gaps at ``rate`` (seeded by ``seed``): the union of the
          processes' independent Poisson streams is a Poisson stream at the room's rate.

        ``even`` and ``poisson`` sleep until each message is due, never send one early, and
        send together only messages due within the same millisecond (the loop's timer
        resolution): each is late by 0 to about 1.2 ms. The answer has, besides the counts,
        the sends per millisecond since ``start_ns`` (``bins``), from which the harness takes
        the room's achieved spread, and the lateness of the paced patterns.
        """
        senders = [self.clients[name] for name in names if name in self.clients]
        if not senders or rate <= 0:
            await asyncio.sleep(max(0.0, (start_ns - time.monotonic_ns()) / 1e9 + seconds))
            return {"published": {}, "max_burst": 0, "bins": [], "late_ns": [0, 0, 0]}
        if arrivals not in ARRIVALS:
            raise ValueError(f"unknown arrival pattern {arrivals!r}")
        pad = (b"bench " * (size // 6 + 1))[: max(0, size - STAMP_DIGITS)]
        await asyncio.sleep(max(0.0, (start_ns - time.monotonic_ns()) / 1e9))
        pace = Pace(senders, pad, start_ns, random.Random(seed + 1) if pick == "random" else None)
        if arrivals == "lockstep":
            await pace.lockstep(rate, seconds)
        else:
            end = start_ns + int(seconds * 1e9)
            if arrivals == "even":
                owned = slots if slots is not None and len(slots) == len(names) else list(range(len(names)))
                # a publisher that failed to join leaves a gap in the room's spacing, nothing worse
                pairs = [(slot, name) for slot, name in zip(owned, names, strict=True) if name in self.clients]
                pace.senders = [self.clients[name] for _, name in pairs]
                room = rate * max(period, len(owned)) / len(owned)
                dues = even_dues(start_ns, room, [slot for slot, _ in pairs], max(period, len(owned)))
            else:
                dues = poisson_dues(start_ns, rate, random.Random(seed))
            await pace.paced(dues, end)
        return pace.answer()

    async def enter(self, rooms: dict[str, list[str]], concurrency: int, timeout: float) -> dict[str, Any]:
        """Each member of ``rooms`` enters its rooms in order (the last one is where it speaks), at most
        ``concurrency`` members entering at once, ``timeout`` s in all."""
        gate = asyncio.Semaphore(concurrency)
        errors: Counter[str] = Counter()
        started = time.monotonic()

        async def enter_all(name: str, names: list[str]) -> int:
            done = 0
            async with gate:
                for room in names:
                    try:
                        await self.clients[name].enter(room)
                    except ConnectionError as exc:
                        errors[str(exc)[:60]] += 1
                        continue
                    done += 1
            return done

        try:
            async with asyncio.timeout(timeout):
                entered = await asyncio.gather(*(enter_all(name, names) for name, names in rooms.items()))
        except TimeoutError:
            return {"entered": 0, "seconds": time.monotonic() - started, "errors": {"timed out": 1}}
        return {"entered": sum(entered), "seconds": time.monotonic() - started, "errors": dict(errors)}

    async def capacity_arm(self) -> dict[str, Any]:
        """Open this process's UDP socket for the capacity workload's reports; its port."""
        if self.armed.transport is None:
            loop = asyncio.get_running_loop()
            await loop.create_datagram_endpoint(lambda: self.armed, local_addr=("127.0.0.1", 0))
        assert self.armed.transport is not None
        return {"port": self.armed.transport.get_extra_info("sockname")[1]}

    async def capacity_run(
        self,
        me: int,
        counts: list[int],
        peers: list[int],
        echoes_own: bool,
        broadcasters: list[str],
        each: int,
        size: int,
        give_up: float,
        start_ns: int,
    ) -> dict[str, Any]:
        """One capacity step (``bench.broadcasts``): from ``start_ns`` each of ``broadcasters`` sends
        ``each`` broadcasts of ``size`` bytes, one at a time, closed-loop; their times in ns (None:
        did not reach everyone within ``give_up`` s). Receipts are counted from now on, until
        ``capacity_end``."""
        receipts = self.armed
        receipts.configure(me, counts, echoes_own, peers)
        self.tally.receipts = receipts
        await asyncio.sleep(max(0.0, (start_ns - time.monotonic_ns()) / 1e9))
        senders = [self.clients[name] for name in broadcasters if name in self.clients]
        loops = [broadcast_loop(receipts, sender, each, size, give_up) for sender in senders]
        times = await asyncio.gather(*loops)
        return {"times_ns": [t for mine in times for t in mine], "errors": receipts.errors}

    def capacity_end(self) -> dict[str, Any]:
        """Stop counting receipts (the UDP socket stays open for the next step)."""
        self.tally.receipts = None
        return {}

    def window_start(self, prefix: str = "") -> dict[str, Any]:
        """Count from now on, and only what the clients named ``prefix...`` receive."""
        for name, client in self.clients.items():
            client.counted = name.startswith(prefix)
        self.tally.reset()
        self.window_cpu = time.process_time()
        self.window_wall = time.monotonic()
        return {}

    def counts(self) -> dict[str, Any]:
        tally = self.tally
        return {"messages": tally.messages, "notices": tally.notices, "last_notice_ns": tally.last_notice_ns}

    def window_end(self) -> dict[str, Any]:
        cpu = time.process_time() - self.window_cpu
        wall = time.monotonic() - self.window_wall
        tally = self.tally
        return {
            "messages": tally.messages,
            "notices": tally.notices,
            "slow_notices": tally.slow_notices,
            "first_slow_notice_ns": tally.first_slow_notice_ns,
            "last_notice_ns": tally.last_notice_ns,
            "errors": tally.errors,
            "cpu_seconds": cpu,
            "wall_seconds": wall,
            "latency_us": histogram(tally.latencies),
            "clients": len(self.clients),
            "healthy_open": self._healthy_open(),
        }

    def _healthy_open(self, prefix: str = "") -> int:
        return sum(
            1 for name, c in self.clients.items() if name.startswith(prefix) and not c.stalled and c.state == "joined"
        )

    def stall(self, names: list[str]) -> dict[str, Any]:
        for name in names:
            self.clients[name].stall()
        return {"stalled": len(names)}

    def resume(self, names: list[str]) -> dict[str, Any]:
        for name in names:
            self.clients[name].resume()
        return {}

    def status(self, names: list[str], prefix: str = "") -> dict[str, Any]:
        """Close code (or ``lost``/``open``) of each of ``names``."""
        out: dict[str, Any] = {}
        for name in names:
            client = self.clients[name]
            out[name] = (
                client.close_code if client.close_code is not None else ("lost" if client.lost else client.state)
            )
        return {"status": out, "open": self._healthy_open(prefix)}

    def close_all(self, prefix: str = "") -> dict[str, Any]:
        """Abort the connections of every client whose name starts with ``prefix``."""
        doomed = [name for name in self.clients if name.startswith(prefix)]
        for name in doomed:
            transport = self.clients.pop(name).transport
            if transport is not None:
                transport.abort()
        return {"closed": len(doomed)}


class Pace:
    """One ``publish``: sends ``senders``' messages on time and keeps what the answer reports."""

    def __init__(self, senders: list[Client], pad: bytes, start_ns: int, draw: random.Random | None = None) -> None:
        self.senders = senders
        self.draw = draw  # None: the senders in turn; else who sends is drawn at random
        self.pad = pad
        self.start_ns = start_ns
        self.published = [0] * len(senders)
        self.bins: Counter[int] = Counter()  # sends per millisecond since start_ns
        self.max_burst = 0  # lockstep: the most messages sent in one tick (the old figure)
        self.late = [0, 0, 0]  # paced: [messages, total ns late, max ns late]
        self.turn = 0

    def send(self, now: int) -> None:
        if self.draw is not None:
            self.turn = self.draw.randrange(len(self.senders))
        self.senders[self.turn].say(self.pad + b"%019d" % now)
        self.published[self.turn] += 1
        self.turn = (self.turn + 1) % len(self.senders)
        self.bins[(now - self.start_ns) // MS] += 1

    async def lockstep(self, rate: float, seconds: float) -> None:
        """Every millisecond tick, send everything due since the start, all at once."""
        start = time.monotonic_ns()
        end = start + int(seconds * 1e9)
        per_ns = rate / 1e9
        sent = 0
        while (now := time.monotonic_ns()) < end:
            due = int((now - start) * per_ns) - sent
            if due > 0:
                self.max_burst = max(self.max_burst, due)
                for _ in range(due):
                    self.send(now)
                sent += due
            await asyncio.sleep(0.001)

    async def paced(self, dues: Iterator[int], end: int) -> None:
        """Send each message at its due time (ns), never early, and those due in the same ms together."""
        late = self.late
        pending = next(dues)
        while pending < end:
            now = time.monotonic_ns()
            if now < pending:
                # uvloop rounds a sleep to whole milliseconds and may wake up to 1 ms early;
                # a sleep of at least one tick never spins, and early wakes just sleep again
                await asyncio.sleep(max(pending - now, MS) / 1e9)
                continue
            group = pending + MS
            while pending <= now and pending < group and pending < end:
                self.send(now)
                late[0] += 1
                late[1] += now - pending
                late[2] = max(late[2], now - pending)
                pending = next(dues)
            if pending <= now:
                await asyncio.sleep(0)  # behind: the next millisecond's messages in the next iteration

    def answer(self) -> dict[str, Any]:
        burst = self.max_burst or max(self.bins.values(), default=0)
        return {
            "published": {c.name: n for c, n in zip(self.senders, self.published, strict=True)},
            "max_burst": burst,
            "bins": sorted(self.bins.items()),
            "late_ns": self.late,
        }


def even_dues(start_ns: int, room_rate: float, slots: list[int], period: int) -> Iterator[int]:
    """Due times (ns) of the room's messages ``k`` with ``k % period`` in ``slots``, at ``room_rate``."""
    gap = 1e9 / room_rate
    owned = sorted(slots)
    block = 0
    while True:
        for slot in owned:
            yield start_ns + int((block * period + slot) * gap)
        block += 1


def poisson_dues(start_ns: int, rate: float, rng: random.Random) -> Iterator[int]:
    """Due times (ns) of a Poisson stream at ``rate`` from ``start_ns``: exponential gaps."""
    at = float(start_ns)
    while True:
        at += rng.expovariate(rate) * 1e9
        yield int(at)


def client_class(protocol: str) -> type[Client]:
    """The member class for a server's protocol: ``Client`` for WebSocket servers."""
    if protocol == "ws":
        return Client
    # Imported here: bench.peer_clients subclasses Client, so it imports this module.
    from .peer_clients import PEER_CLIENTS

    if protocol not in PEER_CLIENTS:
        raise ValueError(f"unknown client protocol {protocol!r}")
    return PEER_CLIENTS[protocol]


def histogram(latencies_ns: array[int]) -> list[tuple[int, int]]:
    """[(microseconds, count)] with every value quantized by ``_quantize``, sorted.

    With numpy (installed with matplotlib) this takes milliseconds for a million
    latencies rather than most of a second, which keeps high-rate windows short.
    """
    try:
        import numpy as np
    except ImportError:
        return sorted(Counter(_quantize(ns // 1000) for ns in latencies_ns).items())
    if not latencies_ns:
        return []
    us = np.frombuffer(latencies_ns, dtype=np.int64) // 1000
    negative = us < 0  # not expected from one system-wide monotonic clock
    magnitude = np.abs(us)
    bits = np.zeros_like(magnitude)
    positive = magnitude > 0
    bits[positive] = np.floor(np.log2(magnitude[positive])).astype(np.int64) + 1
    shift = np.maximum(0, bits - 7)
    quantized = (magnitude >> shift) << shift
    quantized[negative] = -quantized[negative]
    values, counts = np.unique(quantized, return_counts=True)
    return [(int(v), int(c)) for v, c in zip(values, counts, strict=True)]


def _quantize(us: int) -> int:
    """``us`` rounded down to 7 significant bits (under 1.6 % error): a small, mergeable histogram."""
    shift = max(0, us.bit_length() - 7)
    return (us >> shift) << shift


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


async def serve_commands() -> None:
    """Answer JSON commands from stdin until ``quit`` or end of input."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    worker = Worker()
    while line := await reader.readline():
        command = json.loads(line)
        op = command.pop("cmd")
        if op == "quit":
            break
        result = getattr(worker, op)(**command)
        if asyncio.iscoroutine(result):
            result = await result
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()
    worker.close_all()


def main() -> None:
    raise_fd_limit()
    uvloop.run(serve_commands())


if __name__ == "__main__":
    main()
