"""The room commands carried out, the same way in both modes: ``/join``, ``/part #room``, ``/rooms``,
``/invite``, ``/remove``.

Each is one request on the link; its answer (``entered``, ``parted``, ``room_list``,
``invited``, or an ``error``) arrives as an event like any other. What the modes do
differently stays theirs: a line to show when a request could not go out (interactive),
or waiting until it can (scripted), and a bare ``/part`` in the default room.
"""

from __future__ import annotations

from chat_protocol import ClientMessage, Invite, Join, ListRooms, Part, Remove

from .commands import Action, Command
from .link import Link
from .render import safe

ROOM_ACTIONS = frozenset({Action.JOIN, Action.PART, Action.ROOMS, Action.INVITE, Action.REMOVE})


def request_for(link: Link, command: Command) -> ClientMessage | str:
    """The frame a room command sends, or why it sends none (the line to show)."""
    view = link.view
    if command.action is Action.JOIN:
        return Join("", room=command.room, private=command.private)
    if command.action is Action.ROOMS:
        return ListRooms()
    room = command.room or view.current
    if command.action is Action.PART:
        if room is None or view.is_default(room):
            return f"{safe(view.default)} is the default room: /part while writing there leaves for good"
        if not view.is_in(room):
            return f"you are not in {safe(room)}"
        return Part(room)
    word = command.action.value
    if room is None or view.is_default(room):
        return f"everyone is in {safe(view.default)}: /{word} NAME #room names another room"
    return Invite(room, command.name) if command.action is Action.INVITE else Remove(room, command.name)


async def carry_out(link: Link, command: Command, *, wait: bool) -> str | None:
    """Send what a room command asks (once live, with ``wait``); the line to show when nothing was sent."""
    request = request_for(link, command)
    if isinstance(request, str):
        return request
    if wait:
        await link.live()
    if isinstance(request, Join):
        link.view.joining(command.room)  # its ``entered`` makes it the room written in
    if not await link.request(request):
        if isinstance(request, Join):
            link.view.not_joining(command.room)
        return f"not connected: /{command.action.value} not sent"
    return None
