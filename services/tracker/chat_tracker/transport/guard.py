"""Every open socket, HTTP or WebSocket, counted by address and bounded by the descriptor limit.

uvicorn accepts any number of connections and keeps one that never finishes its
headers forever: each holds a file descriptor, unseen by the app. The socket guard
counts each accepted socket under its address key (``core/addresses.py``'s ``address_key``) from
the moment it is accepted, so one address cannot hold more than
``--max-connections-per-address`` sockets, however slowly it talks. The total stays
below the process's descriptor limit: at that ceiling a newcomer takes the place of
the oldest socket still sending its headers (a stranger by definition), never of
an established WebSocket.

A socket from a trusted proxy is not counted under the proxy's address (all its
clients share it); each request is counted under the client address the proxy
names, once its headers are in. Pure bookkeeping: ``http_guard.py`` does the I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from chat_tracker.core.addresses import TrustedProxies, address_key
from chat_tracker.core.ratelimit import WarnLimiter


class SocketRefusal(enum.Enum):
    ADDRESS = "address"  # the address already holds its share of sockets: HTTP 429
    FULL = "full"  # at the descriptor ceiling with nothing to drop: closed at once


class Ticket:
    """One accepted socket's place in the guard, until ``release``."""

    __slots__ = ("_guard", "drop", "key", "peer", "released", "trusted_peer")

    def __init__(self, guard: SocketGuard, peer: str, trusted_peer: bool, drop: Callable[[], None]) -> None:
        self._guard = guard
        self.peer = peer
        self.trusted_peer = trusted_peer
        self.drop = drop  # closes the socket at once (when it is dropped at the ceiling)
        self.key: str | None = None  # the address key it is counted under; None from a proxy until named
        self.released = False

    def awaiting_headers(self) -> None:
        """A request may begin: until its headers are in, this socket may be dropped at the ceiling."""
        if not self.released:
            self._guard.waiting[self] = None

    def headers_done(self) -> None:
        self._guard.waiting.pop(self, None)

    def attribute(self, client: str) -> bool:
        """Count this socket under ``client`` (named by a trusted proxy); False if that address is full."""
        key = address_key(client)
        if key == self.key or self.released:
            return True
        self._guard.uncount(self)
        if not self._guard.has_room(key):
            return False
        self._guard.count(self, key)
        return True

    def release(self) -> None:
        """The socket is closed (idempotent: the HTTP and the WebSocket protocol both call it)."""
        if not self.released:
            self.released = True
            self._guard.remove(self)


class SocketGuard:
    """The open sockets: how many per address key, and which are still sending headers."""

    def __init__(
        self, per_address: int, ceiling: int, proxies: TrustedProxies, warnings: WarnLimiter | None = None
    ) -> None:
        self.per_address = per_address
        self.ceiling = ceiling
        self.proxies = proxies
        self.open = 0
        self.lingering = 0  # refused sockets still being answered (see ``linger``)
        self.by_key: dict[str, int] = {}
        self.waiting: dict[Ticket, None] = {}  # sockets sending their headers, oldest first
        self.refused = dict.fromkeys(SocketRefusal, 0)
        self.dropped = 0  # sockets still sending headers, closed at the ceiling to make room
        self.timed_out = 0  # sockets closed by the header deadline
        self.warnings = warnings or WarnLimiter()  # the tracker's one limiter of refusal warnings

    def admit(self, peer: str, drop: Callable[[], None]) -> Ticket | SocketRefusal:
        """A socket from ``peer`` was accepted: its ticket, or why it must be refused now."""
        if self.open + self.lingering >= self.ceiling and not self._drop_oldest_waiting():
            return self._refuse(SocketRefusal.FULL)
        ticket = Ticket(self, peer, self.proxies.trusts(peer), drop)
        if not ticket.trusted_peer:
            key = address_key(peer)
            if not self.has_room(key):
                return self._refuse(SocketRefusal.ADDRESS)
            self.count(ticket, key)
        self.open += 1
        ticket.awaiting_headers()
        return ticket

    def has_room(self, key: str) -> bool:
        return self.by_key.get(key, 0) < self.per_address

    def count(self, ticket: Ticket, key: str) -> None:
        ticket.key = key
        self.by_key[key] = self.by_key.get(key, 0) + 1

    def uncount(self, ticket: Ticket) -> None:
        key, ticket.key = ticket.key, None
        if key is None:
            return
        left = self.by_key[key] - 1
        if left:
            self.by_key[key] = left
        else:
            del self.by_key[key]

    def remove(self, ticket: Ticket) -> None:
        self.uncount(ticket)
        self.waiting.pop(ticket, None)
        self.open -= 1

    def note_refused(self, refusal: SocketRefusal) -> None:
        self.refused[refusal] += 1

    def should_warn(self, address: str, now: float) -> bool:
        """Whether a refusal of ``address`` should be logged now (at most once a minute per address)."""
        return self.warnings.should_warn("sockets", address_key(address), now)

    def linger(self) -> bool:
        """A refused socket may stay open briefly for its answer to be read; False at the ceiling."""
        if self.open + self.lingering >= self.ceiling:
            return False
        self.lingering += 1
        return True

    def lingered(self) -> None:
        self.lingering -= 1

    def _refuse(self, refusal: SocketRefusal) -> SocketRefusal:
        self.note_refused(refusal)
        return refusal

    def _drop_oldest_waiting(self) -> bool:
        for ticket in self.waiting:
            ticket.release()
            ticket.drop()
            self.dropped += 1
            return True
        return False
