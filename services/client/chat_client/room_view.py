"""The rooms as this member sees them: which she is in, which one her lines go to, what she has not looked at.

Pure, no I/O: both modes feed it every frame they are about to show (``take``), in the
order they show them, so the prompt and the ``[#name] `` prefixes match the screen.

The default room is ``None`` here, as it is on the wire (its events carry no ``room``);
its name (``#general`` unless the operator chose another) is learnt from the first entry
of a ``room_list``, which is always the default room. The *current* room is the one the
member writes in: the default room at first, then each room an ``entered`` answers a
``/join`` for. The ``entered`` frames that follow a registered member's welcome (she is
back in her rooms) do not move her: she writes where she wrote.

The unread count of a room is the messages shown from it while it was not the current
one, since she last switched to it (those caught up after a sign-in included); switching
to a room clears its count.
"""

from __future__ import annotations

from chat_protocol import (
    DEFAULT_ROOM,
    ChatMessage,
    Entered,
    Parted,
    RoomList,
    ServerMessage,
    Welcome,
    name_key,
    room_key,
)


def event_room(message: ServerMessage) -> str | None:
    """The room an event belongs to (None: the default room, a direct message, or no room at all)."""
    if isinstance(message, ChatMessage) and message.to is not None:
        return None
    room = getattr(message, "room", None)
    return room if isinstance(room, str) else None


class RoomView:
    """The member's rooms besides the default one, the current room, and the unread counts."""

    def __init__(self) -> None:
        self.me = ""
        self.default = DEFAULT_ROOM
        self.current: str | None = None  # None: the default room
        self.rooms: dict[str, str] = {}  # room_key -> the room's name, the default room left out
        self.unread: dict[str | None, int] = {}  # room_key (None: the default room) -> messages not looked at
        self._switching: set[str] = set()  # keys of the rooms a /join asked for: their ``entered`` moves us

    # --- what the member asks --------------------------------------------------------------

    def is_default(self, room: str | None) -> bool:
        return room is None or room_key(room) == room_key(self.default)

    def joining(self, room: str) -> None:
        """A ``/join`` of ``room`` goes out: its ``entered`` makes it the current room; one we are in is so at once."""
        if self.is_default(room) or room_key(room) in self.rooms:
            self.switch(room)
        else:
            self._switching.add(room_key(room))

    def not_joining(self, room: str) -> None:
        """The ``/join`` of ``room`` did not go out: an ``entered`` for it later (a sign-in's) moves nothing."""
        self._switching.discard(room_key(room))

    def switch(self, room: str | None) -> None:
        """Write in ``room`` from now on (None or the default room's name: the default room)."""
        self.current = None if self.is_default(room) else self.rooms.get(room_key(room or ""), room)
        self.unread.pop(self._key(self.current), None)

    def is_in(self, room: str) -> bool:
        return self.is_default(room) or room_key(room) in self.rooms

    # --- what the tracker says -------------------------------------------------------------

    def take(self, message: ServerMessage) -> None:
        """Follow one frame about to be shown."""
        if isinstance(message, Welcome):
            self._welcome(message)
        elif isinstance(message, Entered):
            self._entered(message)
        elif isinstance(message, Parted):
            self._parted(message.room)
        elif isinstance(message, RoomList) and message.rooms:
            self.default = message.rooms[0].room  # the default room always comes first
        elif isinstance(message, ChatMessage):
            self._count(message)

    def _welcome(self, welcome: Welcome) -> None:
        """A (fresh) join: the rooms it lists are hers; any other (a guest's, after a lost session) is gone."""
        self.me = welcome.name
        listed = {room_key(info.room): info.room for info in welcome.rooms or [] if not self.is_default(info.room)}
        self.rooms = listed
        self.unread = {}  # what she missed is caught up (membership.py) and counted as it is shown
        if self.current is not None and room_key(self.current) not in listed:
            self.current = None

    def _entered(self, entered: Entered) -> None:
        key = room_key(entered.room)
        if not self.is_default(entered.room):
            self.rooms[key] = entered.room
        if key in self._switching:
            self._switching.discard(key)
            self.switch(entered.room)

    def _parted(self, room: str) -> None:
        self.rooms.pop(room_key(room), None)
        self.unread.pop(room_key(room), None)
        if self.current is not None and room_key(self.current) == room_key(room):
            self.current = None

    def _count(self, message: ChatMessage) -> None:
        """A message in a room that is not the current one is unread there (not her own, not a direct one)."""
        if message.to is not None or (self.me and name_key(message.name) == name_key(self.me)):
            return
        key = self._key(event_room(message))
        if key != self._key(self.current):
            self.unread[key] = self.unread.get(key, 0) + 1

    def _key(self, room: str | None) -> str | None:
        return None if self.is_default(room) else room_key(room or "")

    # --- what the screen shows -------------------------------------------------------------

    @property
    def current_name(self) -> str:
        """The name of the room the member writes in."""
        return self.current or self.default

    def is_current(self, room: str | None) -> bool:
        return self._key(room) == self._key(self.current)

    def elsewhere(self) -> list[tuple[str, int]]:
        """The rooms other than the current one with messages not looked at, the default room first."""
        counts = [(self.default, self.unread.get(None, 0))] if self.current is not None else []
        counts += [(name, self.unread.get(key, 0)) for key, name in sorted(self.rooms.items())]
        return [(name, count) for name, count in counts if count and not self.is_current(name)]

    def status(self) -> str:
        """What the prompt says after the name: the current room once she is in more than one, the unread counts."""
        room = f" {self.current_name}" if self.rooms else ""
        counts = ", ".join(f"{name} {count}" for name, count in self.elsewhere())
        return room + (f" ({counts})" if counts else "")
