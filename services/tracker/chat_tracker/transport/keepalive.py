"""Keepalive pings for one ``/ws`` connection (``--ping-interval``, ``--ping-timeout``).

A ping goes out ``interval`` seconds after the connection opened, and again that long
after each answer (up to a sixteenth of the interval later: see ``PingSchedule``). A pong
must carry the last ping's payload (an older or unsolicited one is ignored); none within
``timeout`` seconds and the peer is gone without a word. No task; a timer of its own only
while a ping awaits its pong.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import struct
import weakref
from typing import Protocol

log = logging.getLogger("chat_tracker")

# Pings due within a sixteenth of the interval of each other share one timer: an idle connection
# holds an entry in a dict instead of an event-loop timer (about 0.5 KiB, with its context).
RESOLUTION_PER_INTERVAL = 16


class Peer(Protocol):
    """The connection being kept alive (``native.NativeWebSocket``)."""

    def send_ping(self, payload: bytes) -> bool:
        """Send a ping with ``payload``; False if the connection is closing (no more pings then)."""

    def silent(self) -> None:
        """No pong came in time."""


class PingSchedule:
    """Every connection's next ping on one event loop, gathered by when it is due: one timer per moment."""

    __slots__ = ("_due",)

    def __init__(self) -> None:
        self._due: dict[float, dict[Keepalive, None]] = {}  # loop time -> the keepalives pinging then

    def add(self, keepalive: Keepalive, delay: float) -> float:
        """``keepalive`` pings in ``delay`` seconds, rounded up to its moment; that moment, for ``remove``."""
        loop = asyncio.get_running_loop()
        resolution = delay / RESOLUTION_PER_INTERVAL
        moment = math.ceil((loop.time() + delay) / resolution) * resolution
        waiting = self._due.get(moment)
        if waiting is None:
            waiting = self._due[moment] = {}
            loop.call_at(moment, self._ping, moment)
        waiting[keepalive] = None
        return moment

    def remove(self, keepalive: Keepalive, moment: float) -> None:
        waiting = self._due.get(moment)
        if waiting is not None:
            waiting.pop(keepalive, None)

    def _ping(self, moment: float) -> None:
        for keepalive in self._due.pop(moment, {}):
            try:
                keepalive.ping()
            except Exception:  # one connection's failure must not cost the others their pings
                log.exception("A keepalive ping failed")


_SCHEDULES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PingSchedule] = weakref.WeakKeyDictionary()


def ping_schedule() -> PingSchedule:
    """The running loop's schedule (one per loop: the tests run many; it holds no reference to its loop)."""
    loop = asyncio.get_running_loop()
    schedule = _SCHEDULES.get(loop)
    if schedule is None:
        schedule = _SCHEDULES[loop] = PingSchedule()
    return schedule


class Keepalive:
    """The next ping's moment, the pong timer and the payload awaited."""

    # The peer, not two bound methods of it: one pointer per connection instead of two objects.
    __slots__ = ("_interval", "_next_ping", "_payload", "_peer", "_pong_timer", "_schedule", "_timeout")

    def __init__(self, interval: float, timeout: float, peer: Peer) -> None:
        self._interval = interval
        self._timeout = timeout
        self._peer = peer
        self._schedule: PingSchedule | None = None
        self._next_ping: float | None = None  # its moment in the schedule
        self._pong_timer: asyncio.TimerHandle | None = None
        self._payload: bytes | None = None

    def start(self) -> None:
        """The next ping in ``interval`` seconds (none when the interval is 0)."""
        if self._interval > 0:
            if self._schedule is None:
                self._schedule = ping_schedule()
            self._next_ping = self._schedule.add(self, self._interval)

    def stop(self) -> None:
        if self._next_ping is not None and self._schedule is not None:
            self._schedule.remove(self, self._next_ping)
        if self._pong_timer is not None:
            self._pong_timer.cancel()
        self._next_ping = None
        self._pong_timer = None
        self._payload = None

    def pong(self, payload: bytes) -> None:
        """A pong arrived: the one awaited resets the clock; any other is ignored."""
        if self._payload is None or payload != self._payload:
            return  # unsolicited, or an answer to an older ping
        self._payload = None
        if self._pong_timer is not None:
            self._pong_timer.cancel()
            self._pong_timer = None
            self.start()

    def ping(self) -> None:
        """Its moment came (``PingSchedule``): send the ping, and wait for its pong."""
        self._next_ping = None
        payload = struct.pack("!I", random.getrandbits(32))
        if not self._peer.send_ping(payload):
            return
        self._payload = payload
        if self._timeout > 0:
            self._pong_timer = asyncio.get_running_loop().call_later(self._timeout, self._unanswered)
        else:
            self.start()

    def _unanswered(self) -> None:
        self._pong_timer = None
        self._payload = None
        self._peer.silent()
