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
chunk (every frame in a chunk arrived at the same moment).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import resource
import socket
import sys
import time
from array import array
from collections import Counter
from typing import Any, cast

import uvloop

STAMP_DIGITS = 19
ASTERISK, BANG = ord("*"), ord("!")
SLOW_NOTICE = b"too slow"
OP_TEXT, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x8, 0x9, 0xA
ZERO_MASK = b"\0\0\0\0"
SMALL_RCVBUF = 8192  # bytes, for members that will stall


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
        self.reset()

    def reset(self) -> None:
        self.latencies = array("q")  # ns, one per delivered message
        self.messages = 0
        self.notices = 0
        self.slow_notices = 0
        self.first_slow_notice_ns = 0  # when the first "too slow" notice arrived (monotonic ns)
        self.errors = 0


class Client(asyncio.Protocol):
    """One member speaking the plain-text dialogue."""

    def __init__(self, name: str, password: str, request: bytes, tally: Tally) -> None:
        self.name = name
        self.password = password.encode()
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
        """Handle every whole frame in ``data``; return the unfinished tail."""
        now = time.monotonic_ns()
        size = len(data)
        pos = 0
        tally = self.tally
        record = tally.latencies.append
        fast = self.state == "joined" and not self.stalled and self.counted
        messages = 0
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
            if fast and data[pos] == 0x81 and first != ASTERISK and first != BANG:
                try:
                    record(now - int(data[end - STAMP_DIGITS : end]))
                    messages += 1
                except ValueError:
                    tally.errors += 1
            else:
                self._slow_path(data[pos] & 0x0F, data[pos + head : end])
                fast = self.state == "joined" and not self.stalled and self.counted
            pos = end
        tally.messages += messages
        return data[pos:]

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
        if state == "joined":
            if not self.counted:
                pass
            elif self.stalled:
                self.stalled_messages += 1
            elif line[:1] == b"*":
                self.tally.notices += 1
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
        elif state == "welcome" and line.startswith(b"Just type"):
            self.state = "joined"
            if not self.joined.done():
                self.joined.set_result(None)
        elif line.startswith((b"Wrong password", b"Name refused")):
            self._fail(line.decode("utf-8", "replace"))

    def _fail(self, reason: str) -> None:
        if not self.joined.done():
            self.joined.set_exception(ConnectionError(reason))

    def _write(self, frame: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(frame)

    # --- commands ----------------------------------------------------------------------

    def say(self, payload: bytes) -> None:
        self._write(client_frame(payload))

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
    ) -> dict[str, Any]:
        """Join ``names``; at most ``concurrency`` handshakes in flight, ``timeout`` s in all.

        ``small_buffers`` get a small kernel receive buffer, so that when they stop reading
        the server feels it in seconds rather than after megabytes of loopback buffering.
        """
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
                            lambda: Client(name, password, request, self.tally), sock=sock
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

    async def publish(self, names: list[str], rate: float, seconds: float, start_ns: int, size: int) -> dict[str, Any]:
        """Send ``rate`` messages/s in all, round-robin over ``names``, for ``seconds``."""
        senders = [self.clients[name] for name in names if name in self.clients]
        if not senders or rate <= 0:
            await asyncio.sleep(max(0.0, (start_ns - time.monotonic_ns()) / 1e9 + seconds))
            return {"published": {}, "max_burst": 0}
        pad = (b"bench " * (size // 6 + 1))[: max(0, size - STAMP_DIGITS)]
        published = [0] * len(senders)
        await asyncio.sleep(max(0.0, (start_ns - time.monotonic_ns()) / 1e9))
        start = time.monotonic_ns()
        end = start + int(seconds * 1e9)
        per_ns = rate / 1e9
        sent, turn, max_burst = 0, 0, 0
        while (now := time.monotonic_ns()) < end:
            due = int((now - start) * per_ns) - sent
            if due > 0:
                max_burst = max(max_burst, due)
                stamp = b"%019d" % now
                payload = pad + stamp
                for _ in range(due):
                    senders[turn].say(payload)
                    published[turn] += 1
                    turn = (turn + 1) % len(senders)
                sent += due
            await asyncio.sleep(0.001)
        return {"published": {c.name: n for c, n in zip(senders, published, strict=True)}, "max_burst": max_burst}

    def window_start(self, prefix: str = "") -> dict[str, Any]:
        """Count from now on, and only what the clients named ``prefix...`` receive."""
        for name, client in self.clients.items():
            client.counted = name.startswith(prefix)
        self.tally.reset()
        self.window_cpu = time.process_time()
        self.window_wall = time.monotonic()
        return {}

    def counts(self) -> dict[str, Any]:
        return {"messages": self.tally.messages}

    def window_end(self) -> dict[str, Any]:
        cpu = time.process_time() - self.window_cpu
        wall = time.monotonic() - self.window_wall
        tally = self.tally
        return {
            "messages": tally.messages,
            "notices": tally.notices,
            "slow_notices": tally.slow_notices,
            "first_slow_notice_ns": tally.first_slow_notice_ns,
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
