"""The members connected to a room here, by id, and the ones a batch must visit.

In a saturated room nearly every member rides the room's frames (``core/ride.py``) between
two writes, and a batch has nothing to do for a rider. Visiting each of them anyway, once per
message, took about a quarter of the tracker's CPU at 1,000 members and 100 messages a second.
So the roster keeps, beside the members, the ``walk``: those not on one of the room's rides.
A member leaves the walk when it gets on a ride (``boarded``) and comes back when it gets off
(``alighted``: its window ended, something of its own was queued, it overflowed or closed);
joining, resuming and leaving keep the walk as they keep the roster. A batch then visits the
walk, plus the riders it concerns (their own message, join or leave), in ``visiting``.

A room below ``WALK_FROM`` members keeps no walk (its loop is short, and rooms of five are
many: a dict less each); it starts one the moment it grows to that size.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import TypeVar, overload

from chat_tracker.core.room.member import Member

WALK_FROM = 32  # members connected here: from this many a room keeps its walk

_T = TypeVar("_T")


class Roster(dict[int, Member]):
    """The room's connected members by id (``room._by_id``), and its walk.

    A dict, so its many readers stay plain lookups. Every write the room makes keeps the walk:
    ``roster[id] = member``, ``del roster[id]``, ``pop`` and ``clear`` (nothing uses the others).
    """

    __slots__ = ("_walk", "walk_from")

    def __init__(self, walk_from: int = WALK_FROM) -> None:
        super().__init__()
        self.walk_from = walk_from
        self._walk: dict[int, Member] | None = None  # the members on none of the room's rides (None: no walk)

    def __setitem__(self, key: int, member: Member) -> None:
        super().__setitem__(key, member)
        walk = self._walk
        if walk is not None:
            if not self._riding_here(member):
                walk[key] = member
        elif len(self) >= self.walk_from:
            self._walk = {key: each for key, each in self.items() if not self._riding_here(each)}

    def __delitem__(self, key: int) -> None:
        super().__delitem__(key)
        if self._walk is not None:
            self._walk.pop(key, None)

    @overload
    def pop(self, key: int, /) -> Member: ...
    @overload
    def pop(self, key: int, default: Member, /) -> Member: ...
    @overload
    def pop(self, key: int, default: _T, /) -> Member | _T: ...
    def pop(self, key: int, /, *default: object) -> object:
        if self._walk is not None:
            self._walk.pop(key, None)
        return super().pop(key, *default)

    def clear(self) -> None:
        super().clear()
        self._walk = None

    # --- the room's rides (core/ride.py's Seats) -------------------------------------------------------------

    def boarded(self, member: Member) -> None:
        """``member`` got on one of the room's rides: batches leave it out until it gets off."""
        walk = self._walk
        if walk is not None:
            walk.pop(member.id, None)

    def alighted(self, member: Member) -> None:
        """``member`` got off: batches visit it again, if it is still connected here."""
        walk = self._walk
        if walk is not None and self.get(member.id) is member:
            walk[member.id] = member

    def visiting(self, concerned: Collection[int | None], everyone: bool = False) -> Iterable[Member]:
        """The members a batch must visit: those on no ride here, and the riders it concerns (or ``everyone``:
        a batch of joins and leaves only, which never rides, so its riders must get off for it).

        ``concerned``: the batch's origins (its senders, joiners and leavers), who get frames of their own.
        A list when there is a walk: a member visited may get on or off a ride meanwhile.
        """
        walk = self._walk
        if walk is None or everyone:
            return self.values()
        visit = list(walk.values())
        for origin in concerned:
            if origin is not None and origin not in walk:
                member = self.get(origin)
                if member is not None:
                    visit.append(member)
        return visit

    def _riding_here(self, member: Member) -> bool:
        ride = member.outbox.ride
        return ride is not None and ride.seats is self
