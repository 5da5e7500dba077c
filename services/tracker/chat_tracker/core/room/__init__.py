"""The room: who is in, under which name, and delivery of the journal's events to them.

Pure logic over injected parts (the journal, the member policy, the clocks): no
sockets and no FastAPI, so it is tested directly. A request (join, say, leave) is
checked here and appended to the journal; the room acts on the event only when the
journal hands it back durable, in seq order. So a member receives exactly the events
from its own join to its own leave, in chat.log order, and nothing that is not
already in chat.log.

A member's life is one state from one table (``states.py``): JOINING from the claim of
its name until its join event is delivered, JOINED, LEAVING from the moment it leaves
(its name is free at once) until its leave event is delivered - it still receives
everything before its leave - and GONE once its outbox is closed; AWAY and RESUMING
while its connection is lost and comes back (``resumes.py``), REMOTE while another
replica serves it (``shared.py``).

The room is one class in layers, a module each, lowest first:

    base        its parts and its members' indexes
    queries     who is in, since when (nothing changes)
    requests    join, say, leave
    resumes     connections lost and resumed
    devices     several connections of one account at once
    moderating  kick, mute, ban, announce
    shared      the room shared by replicas
    delivering  durable batches to the members
    closing     stop and restart
"""

from __future__ import annotations

from chat_tracker.core.room.closing import RoomClosing
from chat_tracker.core.room.member import Member, Resuming
from chat_tracker.core.room.states import MemberState, RoomState, Step
from chat_tracker.core.room.stats import RoomStats
from chat_tracker.errors import IllegalTransition, Kicked, Refused

__all__ = [
    "IllegalTransition",
    "Kicked",
    "Member",
    "MemberState",
    "Refused",
    "Resuming",
    "Room",
    "RoomState",
    "RoomStats",
    "Step",
]


class Room(RoomClosing):
    """A chat room: the default one, or any other (``core/rooms.py`` keeps them by name)."""

    __slots__ = ()
