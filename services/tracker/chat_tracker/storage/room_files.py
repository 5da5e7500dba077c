"""Where the rooms besides the default one live on disk: ``<data-dir>/rooms/<name>/``.

Each room's directory holds its own ``chat.log`` (and rotated segments, as the data
dir holds the default room's) and ``room-info.json``: its name, owner, creation time,
whether it is private, and the names its members invited (member data: mode 0600).
A room is the directory: the tracker reads every ``room-info.json`` at start and opens
those rooms again.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from chat_protocol import room_name
from chat_tracker.core.places import RoomMeta
from chat_tracker.storage.segments import fsync_dir, replace_atomically

log = logging.getLogger("chat_tracker")

ROOMS_DIR = "rooms"
DIRECT_DIR = "direct"
INFO_FILE = "room-info.json"


def room_dir(data_dir: Path, name: str) -> Path:
    """A room's directory: its name without the ``#`` (names are ``a-z 0-9 _ -`` only, so this is a safe path)."""
    return data_dir / ROOMS_DIR / name.removeprefix("#")


def conversation_dir(data_dir: Path, name: str) -> Path:
    """A conversation's directory: ``direct/<key>+<key>`` (name keys are ``a-z 0-9`` only: a safe path)."""
    return data_dir / DIRECT_DIR / name.removeprefix("@")


def write_room_info(data_dir: Path, meta: RoomMeta) -> None:
    """Write ``room-info.json`` whole or not at all (its directory made, mode 0700, if new)."""
    directory = room_dir(data_dir, meta.name)
    created = not directory.exists()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    body = {
        "name": meta.name,
        "owner": meta.owner,
        "created": meta.created,
        "private": meta.private,
        "invited": sorted(meta.invited),
    }
    replace_atomically(directory / INFO_FILE, json.dumps(body, indent=1).encode())
    if created:
        fsync_dir(directory.parent)


def read_room_infos(data_dir: Path) -> list[RoomMeta]:
    """Every room kept in ``data_dir``, by name; a directory whose info is unreadable is skipped, with a warning."""
    rooms: list[RoomMeta] = []
    base = data_dir / ROOMS_DIR
    if not base.is_dir():
        return rooms
    for directory in sorted(base.iterdir()):
        path = directory / INFO_FILE
        if not path.is_file():
            continue
        try:
            rooms.append(_meta(json.loads(path.read_text())))
        except (OSError, ValueError, KeyError, TypeError) as error:
            log.warning("Skipped the room in %s: its %s is unreadable (%s)", directory, INFO_FILE, error)
    return rooms


def _meta(body: dict[str, object]) -> RoomMeta:
    invited = body.get("invited", [])
    if not isinstance(invited, list):
        raise TypeError("invited is not a list")
    return RoomMeta(
        name=room_name(str(body["name"])),  # raises ProtocolError (a ValueError) for anything but a room's name
        owner=str(body["owner"]),
        created=float(str(body["created"])),
        private=body.get("private") is True,
        invited=frozenset(str(key) for key in invited),
    )
