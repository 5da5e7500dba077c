"""The load-generator side of the capacity workload (``bench.capacity``): closed-loop broadcasts.

A broadcaster sends one message, waits until every other member of the room got it (or
``give_up`` seconds passed), records how long that took, and sends the next: the round-2 method
of websocket-shootout, except that "got it" is measured at the receivers, not assumed when the
server has answered the sender (none of our servers answers a sender).

Members live in several generator processes, so "every member got it" is known in pieces:

- every broadcast has an id, ``owner * ID_SPAN + k``, ``owner`` the index of the process whose
  broadcaster sent it; the message is ``padding + id (10 digits) + send stamp (19 digits)``,
  so a receiver reads the id at a fixed place from the end, whatever the server prefixed;
- every process counts, per id, how many of its own members received it and when the last did
  (``Receipts.receipt``, called from the clients' receive paths);
- once all of a process's members that should get it did, the process tells the owner, by one
  UDP datagram on loopback (``id last_ns``) when the owner is another process;
- the owner's broadcaster completes when every process with members to reach has told it; the
  broadcast's time is the latest receipt anywhere minus its send time (CLOCK_MONOTONIC is one
  clock for every process on Linux).

A member receives every broadcast but its own (the servers do not echo a sender's line), or
every one when ``echoes_own`` (Redis hands a PUBLISH to the publisher's own subscription too).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from .loadgen import Client

ID_DIGITS = 10
STAMP_DIGITS = 19
TAIL = ID_DIGITS + STAMP_DIGITS  # id and stamp end every broadcast
ID_SPAN = 10**8  # broadcasts one process may send in one run; the owner's index is above it


@dataclass
class Pending:
    """One broadcast in flight at its owner: the processes that have not reported yet."""

    sent_ns: int
    waiting: set[int]
    last_ns: int = 0
    done: asyncio.Future[int] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class Receipts(asyncio.DatagramProtocol):
    """This process's view of the run: what its members received, and its own broadcasts' progress."""

    def __init__(self) -> None:
        self.me = 0
        self.counts: list[int] = []  # members (of the measured server) in each process
        self.echoes_own = False
        self.peers: list[int] = []  # each process's UDP port on 127.0.0.1
        self.seen: dict[int, list[int]] = {}  # id -> [members here that received it, ns of the last]
        self.pending: dict[int, Pending] = {}
        self.transport: asyncio.DatagramTransport | None = None
        self.errors = 0
        self.sequence = 0

    def configure(self, me: int, counts: Sequence[int], echoes_own: bool, peers: Sequence[int]) -> None:
        """This process is number ``me`` of ``len(counts)``; forget the previous step's broadcasts."""
        self.me, self.counts, self.echoes_own, self.peers = me, list(counts), echoes_own, list(peers)
        self.seen.clear()
        self.pending.clear()
        self.errors = 0

    def take(self) -> int:
        """A fresh broadcast id of this process: never reused within a run, so that a late receipt of a
        broadcast given up on in one step is never taken for one of the next."""
        self.sequence += 1
        return self.me * ID_SPAN + self.sequence

    # --- receivers ------------------------------------------------------------------------

    def expected(self, process: int, owner: int) -> int:
        """How many members of ``process`` should receive a broadcast sent from process ``owner``."""
        sender_here = owner == process and not self.echoes_own
        return self.counts[process] - (1 if sender_here else 0)

    def receipt(self, tail: bytes, now: int) -> None:
        """A member here received the broadcast whose ``tail`` (id + stamp) is given, at ``now``."""
        try:
            ident = int(tail[:ID_DIGITS])
        except ValueError:
            self.errors += 1
            return
        entry = self.seen.get(ident)
        if entry is None:
            entry = self.seen[ident] = [0, 0]
        entry[0] += 1
        entry[1] = now
        owner = ident // ID_SPAN
        if entry[0] == self.expected(self.me, owner):
            if owner == self.me:
                self.report(ident, self.me, now)
            elif self.transport is not None and 0 <= owner < len(self.peers):
                self.transport.sendto(b"%d %d" % (ident, now), ("127.0.0.1", self.peers[owner]))

    # --- owner ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.DatagramTransport", transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        try:
            ident, last = (int(part) for part in data.split())
        except ValueError:
            self.errors += 1
            return
        self.report(ident, self._sender_of(addr), last)

    def _sender_of(self, addr: tuple[str | Any, int]) -> int:
        """The process a datagram came from: each sends from the port it told the others."""
        return self.peers.index(addr[1]) if addr[1] in self.peers else -1

    def report(self, ident: int, process: int, last: int) -> None:
        """Every member of ``process`` that should have ``ident`` has it, the last at ``last``."""
        pending = self.pending.get(ident)
        if pending is None:
            return  # given up on already
        pending.waiting.discard(process)
        pending.last_ns = max(pending.last_ns, last)
        if not pending.waiting and not pending.done.done():
            pending.done.set_result(pending.last_ns)

    def start(self, ident: int) -> Pending:
        """Register broadcast ``ident`` before it is sent: which processes must report on it."""
        waiting = {p for p in range(len(self.counts)) if self.expected(p, self.me) > 0}
        pending = Pending(sent_ns=time.monotonic_ns(), waiting=waiting)
        self.pending[ident] = pending
        if not waiting:
            pending.done.set_result(pending.sent_ns)
        return pending


def message(ident: int, sent_ns: int, size: int) -> bytes:
    """A broadcast of ``size`` bytes: padding, then the id and the send stamp, fixed-width."""
    pad = (b"shootout " * (size // 9 + 1))[: max(0, size - TAIL)]
    return pad + b"%0*d%0*d" % (ID_DIGITS, ident, STAMP_DIGITS, sent_ns)


async def broadcast_loop(receipts: Receipts, sender: Client, count: int, size: int, give_up: float) -> list[int | None]:
    """Send ``count`` broadcasts from ``sender`` one after another, each once the previous reached
    everyone (or ``give_up`` s passed); each one's time in ns, None when it did not reach everyone."""
    times: list[int | None] = []
    for _ in range(count):
        ident = receipts.take()
        pending = receipts.start(ident)
        sender.say(message(ident, pending.sent_ns, size))
        try:
            last = await asyncio.wait_for(asyncio.shield(pending.done), give_up)
        except TimeoutError:
            times.append(None)
        else:
            times.append(last - pending.sent_ns)
        receipts.pending.pop(ident, None)
    return times
