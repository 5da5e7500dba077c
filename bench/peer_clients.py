"""Load-generator members for the native reference servers (``bench.native``).

Each is an ``asyncio.Protocol`` with the interface of ``bench.loadgen.Client`` (the
``joined`` future, ``say``, ``stall``, ``resume``, ``counted``, ``state``,
``close_code``/``lost``) and counts into the same ``Tally``, so that ``Worker`` drives
them unchanged. Like the WebSocket client they parse the received bytes directly:
a delivered message is counted after one bounded search, and one in ``SAMPLE_EVERY``
has its 19-digit stamp parsed into a latency.

- ``IrcClient``: PASS/NICK/USER, JOIN #bench; ``say`` sends a PRIVMSG to the channel, or to
  the last channel it entered (``enter``, the many-rooms workload's small rooms).
  IRC does not echo a member's own PRIVMSG, like the tracker's plain-text dialogue.
- ``RespClient``: AUTH, SUBSCRIBE bench. A subscribed Redis connection may not PUBLISH,
  so a member that speaks opens a second connection of its own on its first ``say``
  (only the bench's few publishers do): one publish connection per publishing member
  keeps the server's view like the other servers' (one sender, one socket) and adds
  nothing to the idle members' memory. Redis delivers a PUBLISH to every subscriber,
  the publisher's own subscription included: ``Server.echoes_own`` tells the harness.
"""

from __future__ import annotations

import asyncio
import time
from typing import TypeAlias, cast

from .broadcasts import TAIL
from .loadgen import SAMPLE_EVERY, STAMP_DIGITS, Client, Tally

CHANNEL = b"#bench"
PRIVMSG = b" PRIVMSG "
JOIN = b" JOIN "
PREFIX_SCAN = 160  # a PRIVMSG's command starts within ":nick!~user@127.0.0.1 " (nick up to 30)
RESP_CHANNEL = b"bench"
# Every pushed message on our one channel starts with these bytes, then the payload's length.
RESP_MESSAGE = b"*3\r\n$7\r\nmessage\r\n$%d\r\n%s\r\n$" % (len(RESP_CHANNEL), RESP_CHANNEL)

Resp: TypeAlias = "bytes | list[Resp] | None"


class PeerClient(Client):
    """What the native clients share with the WebSocket client: the interface, not the framing."""

    def __init__(self, name: str, password: str, request: bytes, tally: Tally) -> None:
        super().__init__(name, password, request, tally)
        self.state = "connecting"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)
        self.greet()

    def greet(self) -> None:
        raise NotImplementedError

    def _joined(self) -> None:
        self.state = "joined"
        if not self.joined.done():
            self.joined.set_result(None)

    def _notice(self) -> None:
        """Someone joined or left: the same tally as the tracker's ``*`` lines."""
        if self.counted and not self.stalled:
            self.tally.notices += 1
            self.tally.last_notice_ns = time.monotonic_ns()  # a join storm ends with its last notice


# --- IRC (ngIRCd) -----------------------------------------------------------------------


class IrcClient(PeerClient):
    """One member of #bench on an IRC server."""

    channel = CHANNEL  # where ``say`` speaks: #bench, or the channel last entered

    def greet(self) -> None:
        nick = self.name.encode()
        self._write(b"PASS %s\r\nNICK %s\r\nUSER %s 0 * :%s\r\n" % (self.password, nick, nick, nick))
        self.state = "registering"

    def data_received(self, data: bytes) -> None:
        if self.rest:
            data = self.rest + data
        lines = data.split(b"\r\n")
        self.rest = lines.pop()  # an unfinished line, or b""
        now = time.monotonic_ns()
        tally = self.tally
        fast = self.state == "joined" and self.counted and not self.stalled
        messages = notices = 0
        seen = tally.sampled
        receipts = tally.receipts
        for line in lines:
            if fast and line.find(PRIVMSG, 0, PREFIX_SCAN) > 0:
                messages += 1
                if receipts is not None:
                    receipts.receipt(line[-TAIL:], now)
                seen += 1
                if not seen & (SAMPLE_EVERY - 1):  # the latency of one in SAMPLE_EVERY, as loadgen does
                    self._sample(now, line[-STAMP_DIGITS:])
            elif fast and line.find(JOIN, 0, PREFIX_SCAN) > 0:
                notices += 1  # counted in the scan too: a big channel's joins are N-squared lines
            else:
                self._line(line)
                fast = self.state == "joined" and self.counted and not self.stalled
        tally.messages += messages
        tally.sampled = seen
        if notices:
            tally.notices += notices
            tally.last_notice_ns = now

    def _line(self, line: bytes) -> None:
        """Everything but a counted PRIVMSG: keepalive, registration, joins and leaves."""
        if line.startswith(b"PING "):
            self._write(b"PONG " + line[5:] + b"\r\n")
            return
        if line.startswith(b"ERROR "):
            self._fail(line.decode("utf-8", "replace"))
            return
        words = line.split(b" ", 3)
        command = words[1] if line.startswith(b":") and len(words) > 1 else words[0]
        state = self.state
        if state == "joined":
            if command == b"PRIVMSG":
                if self.stalled:
                    self.stalled_messages += 1
            elif command in (b"JOIN", b"PART", b"QUIT"):
                self._notice()
        elif state == "registering" and command == b"001":  # RPL_WELCOME: registered
            self.state = "joining"
            self._write(b"JOIN " + CHANNEL + b"\r\n")
        elif state == "joining" and command == b"366":  # RPL_ENDOFNAMES: the JOIN is complete
            self._joined()
        elif state == "entering" and command == b"366":
            self._entered(None)
        elif state == "entering" and command in (b"403", b"405", b"471", b"473", b"474", b"475", b"476"):
            self._entered(line.decode("utf-8", "replace"))  # no such channel, too many, full, closed
        elif command in (b"432", b"433", b"464", b"465", b"471", b"473", b"474", b"475"):
            self._fail(line.decode("utf-8", "replace"))  # nick refused, bad password, banned, channel closed

    def say(self, payload: bytes) -> None:
        self._write(b"PRIVMSG " + self.channel + b" :" + payload + b"\r\n")

    def enter(self, room: str) -> asyncio.Future[None]:
        """JOIN ``room`` besides #bench; what this member says goes there from then on."""
        self.entered = asyncio.get_running_loop().create_future()
        self.state = "entering"
        self.channel = room.encode()
        self._write(b"JOIN " + self.channel + b"\r\n")
        return self.entered


# --- RESP (Redis pub/sub) ---------------------------------------------------------------


def resp_command(*parts: bytes) -> bytes:
    """One command as a RESP array of bulk strings."""
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(part), part) for part in parts)


def parse_resp(data: bytes, pos: int) -> tuple[Resp, int] | None:
    """One RESP value at ``pos`` and the position after it; None when it is incomplete.

    Simple strings, errors and integers come back whole with their type byte
    (``b"+OK"``, ``b"-ERR ..."``, ``b":1"``), so a caller tells them apart.
    """
    end = data.find(b"\r\n", pos)
    if end < 0:
        return None
    kind, head = data[pos : pos + 1], data[pos + 1 : end]
    if kind == b"$":
        length = int(head)
        if length < 0:
            return None, end + 2
        stop = end + 2 + length
        return (data[end + 2 : stop], stop + 2) if stop + 2 <= len(data) else None
    if kind == b"*":
        items: list[Resp] = []
        cursor = end + 2
        for _ in range(max(0, int(head))):
            parsed = parse_resp(data, cursor)
            if parsed is None:
                return None
            items.append(parsed[0])
            cursor = parsed[1]
        return items, cursor
    return data[pos:end], end + 2


class RespClient(PeerClient):
    """One subscriber of channel ``bench`` on Redis, with a publish connection when it speaks."""

    def __init__(self, name: str, password: str, request: bytes, tally: Tally) -> None:
        super().__init__(name, password, request, tally)
        self.publisher: RespPublisher | None = None
        self.address: tuple[str, int] | None = None

    def greet(self) -> None:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("peername")[:2]
        self.address = (host, port)
        # Pipelined: Redis answers in order, +OK then the subscription.
        self._write(resp_command(b"AUTH", self.password) + resp_command(b"SUBSCRIBE", RESP_CHANNEL))
        self.state = "auth"

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.publisher is not None:  # the member is gone: its publish connection too
            self.publisher.close()

    def data_received(self, data: bytes) -> None:
        if self.rest:
            data = self.rest + data
        self.rest = self._pushes(data)

    def _pushes(self, data: bytes) -> bytes:
        """Handle every whole value in ``data``; return the unfinished tail."""
        now = time.monotonic_ns()
        tally = self.tally
        fast = self.state == "joined" and self.counted and not self.stalled
        size, pos, messages, skip = len(data), 0, 0, len(RESP_MESSAGE)
        seen = tally.sampled
        receipts = tally.receipts
        while pos < size:
            if fast and data.startswith(RESP_MESSAGE, pos):
                head = pos + skip
                end = data.find(b"\r\n", head)
                if end < 0:
                    break
                stop = end + 2 + int(data[head:end])
                if stop + 2 > size:
                    break
                messages += 1
                if receipts is not None:
                    receipts.receipt(data[stop - TAIL : stop], now)
                seen += 1
                if not seen & (SAMPLE_EVERY - 1):
                    self._sample(now, data[stop - STAMP_DIGITS : stop])
                pos = stop + 2
                continue
            parsed = parse_resp(data, pos)
            if parsed is None:
                break
            self._value(parsed[0])
            pos = parsed[1]
            fast = self.state == "joined" and self.counted and not self.stalled
        tally.messages += messages
        tally.sampled = seen
        return data[pos:]

    def _value(self, value: Resp) -> None:
        """A reply or push the fast path did not take: AUTH's, SUBSCRIBE's, or an uncounted message."""
        if isinstance(value, bytes) and value.startswith(b"-"):
            self._fail(value.decode("utf-8", "replace"))
            if self.state == "joined":
                self.tally.errors += 1
        elif self.state == "auth" and value == b"+OK":
            self.state = "subscribing"
        elif self.state == "subscribing" and isinstance(value, list) and value[:1] == [b"subscribe"]:
            self._joined()
        elif self.stalled and isinstance(value, list) and value[:1] == [b"message"]:
            self.stalled_messages += 1

    def say(self, payload: bytes) -> None:
        if self.publisher is None:
            self.publisher = RespPublisher(self.password, self.tally)
            if self.address is not None:
                self.publisher.open(self.address)
        self.publisher.publish(payload)


class RespPublisher(asyncio.Protocol):
    """A member's second connection, which only PUBLISHes; what it says waits until it is open."""

    def __init__(self, password: bytes, tally: Tally) -> None:
        self.password = password
        self.tally = tally
        self.transport: asyncio.Transport | None = None
        self.pending: list[bytes] = []
        self.closed = False
        self.task: asyncio.Task[tuple[asyncio.BaseTransport, asyncio.BaseProtocol]] | None = None

    def open(self, address: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        self.task = loop.create_task(loop.create_connection(lambda: self, *address))
        self.task.add_done_callback(self._opened)

    def _opened(self, task: asyncio.Task[tuple[asyncio.BaseTransport, asyncio.BaseProtocol]]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.tally.errors += len(self.pending) or 1
            self.pending.clear()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)
        if self.closed:
            self.transport.abort()
            return
        # AUTH first, pipelined with whatever was said while connecting: Redis runs them in order.
        self.transport.write(resp_command(b"AUTH", self.password) + b"".join(self.pending))
        self.pending.clear()

    def data_received(self, data: bytes) -> None:
        # Replies are "+OK" once and then ":<subscribers>" per PUBLISH: only errors matter.
        if b"-" in data:
            self.tally.errors += data.count(b"\r\n-") + data.startswith(b"-")

    def publish(self, payload: bytes) -> None:
        command = resp_command(b"PUBLISH", RESP_CHANNEL, payload)
        if self.transport is None:
            self.pending.append(command)
        elif not self.transport.is_closing():
            self.transport.write(command)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


PEER_CLIENTS: dict[str, type[Client]] = {"irc": IrcClient, "resp": RespClient}
