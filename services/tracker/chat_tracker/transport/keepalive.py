"""Keepalive pings for one ``/ws`` connection (``--ping-interval``, ``--ping-timeout``).

A ping goes out ``interval`` seconds after the connection opened, and again that long
after each answer. A pong must carry the last ping's payload (an older or unsolicited
one is ignored); none within ``timeout`` seconds and the peer is gone without a word.
Two timers at most, and no task.
"""

from __future__ import annotations

import asyncio
import random
import struct
from typing import Protocol


class Peer(Protocol):
    """The connection being kept alive (``native.NativeWebSocket``)."""

    def send_ping(self, payload: bytes) -> bool:
        """Send a ping with ``payload``; False if the connection is closing (no more pings then)."""

    def silent(self) -> None:
        """No pong came in time."""


class Keepalive:
    """The ping timer, the pong timer and the payload awaited."""

    # The peer, not two bound methods of it: one pointer per connection instead of two objects.
    __slots__ = ("_interval", "_payload", "_peer", "_ping_timer", "_pong_timer", "_timeout")

    def __init__(self, interval: float, timeout: float, peer: Peer) -> None:
        self._interval = interval
        self._timeout = timeout
        self._peer = peer
        self._ping_timer: asyncio.TimerHandle | None = None
        self._pong_timer: asyncio.TimerHandle | None = None
        self._payload: bytes | None = None

    def start(self) -> None:
        """The next ping in ``interval`` seconds (none when the interval is 0)."""
        if self._interval > 0:
            self._ping_timer = asyncio.get_running_loop().call_later(self._interval, self._ping)

    def stop(self) -> None:
        for timer in (self._ping_timer, self._pong_timer):
            if timer is not None:
                timer.cancel()
        self._ping_timer = self._pong_timer = None
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

    def _ping(self) -> None:
        self._ping_timer = None
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
