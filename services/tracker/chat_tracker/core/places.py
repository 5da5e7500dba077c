"""A room besides the default one, as ``core/rooms.py`` keeps it: its meta, its limits, its place."""

from __future__ import annotations

from dataclasses import dataclass, field

from chat_tracker.core.dialects import JSON, Dialect
from chat_tracker.core.room import Room
from chat_tracker.core.room_dialects import room_dialect


@dataclass(slots=True)
class RoomMeta:
    """What makes a room besides its events: its name, who made it, whether it is private, whom it lets in."""

    name: str  # "#dev", lower case, as its creator spelt it
    owner: str  # the creator's name: she invites, and removes members
    created: float
    private: bool = False
    # Name keys of those a member of a private room let in. Frozen, and replaced whole when it changes
    # (rarely): every room without one shares the one empty frozenset, where an empty set is 216 B a room.
    invited: frozenset[str] = frozenset()


@dataclass(frozen=True)
class RoomLimits:
    """The flags that bound rooms: per member, in all, creations per member per hour, and who creates them."""

    per_member: int = 50
    total: int = 10_000
    creations_per_hour: int = 10
    creation_open: bool = True  # False: --room-creation admin (only operators create rooms)


@dataclass(eq=False, slots=True)
class Place:
    """One room besides the default: its ``Room``, its meta, and the dialects its members read it in."""

    meta: RoomMeta
    room: Room
    _dialects: dict[tuple[str, bool], Dialect] = field(default_factory=dict)

    def dialect(self, base: Dialect, prefixed: bool) -> Dialect:
        """One object per kind, so the room renders each batch once per kind, not once per member."""
        kind = (base.name, prefixed and base is not JSON)
        found = self._dialects.get(kind)
        if found is None:
            found = self._dialects[kind] = room_dialect(
                base, self.meta.name, private=self.meta.private, default=False, prefixed=kind[1]
            )
        return found


__all__ = ["Place", "RoomLimits", "RoomMeta"]
