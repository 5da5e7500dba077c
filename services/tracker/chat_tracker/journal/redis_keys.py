"""Where the room lives in Redis, and how one stream entry becomes an event: shared by replicas and the archiver.

The journal is one Redis Stream (``events``). A room event has the stream ID
``<seq>-0``: its seq *is* the ID, so IDs are contiguous and Redis itself refuses
an entry that does not come after the last one. A control entry (``<seq>-N``,
N >= 1) tells the replicas something that is not a chat.log line (a member moved
to another replica, or went away); the archiver skips it. Every entry has the
fields ``t`` (the time, from Redis's clock, so it never goes back) and ``e`` (the
event's body as JSON: kind, name, text, origin, the sender's message id).

The other keys (all under one prefix, ``groupchat:`` unless told otherwise):

- ``room`` (hash): ``epoch`` (new whenever the stream is new), ``seq`` (the last
  seq given), ``key`` (the resume-token key, hex), ``created`` (epoch seconds),
  ``seeded`` (present once the archiver gave the room the mutes and bans in force);
- ``names`` (hash): a name's lookalike key (``chat_protocol.name_key``) ->
  ``<member id>:<replica>``, the member holding it and the replica serving it;
- ``roster`` (hash): member id -> JSON ``{"name", "since", "joined", "resumes"}``: who
  is in the room (and how many times each resumed: only its latest token resumes it),
  so a replica that starts late knows without reading the whole stream;
- ``moderation`` (list): every mute, ban and unban entry's ``e`` body with its
  seq and time, so a late replica applies the bans in force; in a room Redis
  started empty, led by the archiver's mutes and bans in force (seq 0, ``SEED``);
- ``replicas`` (hash): replica number -> JSON of its address and start time;
  ``alive:<replica>`` (string with a TTL): present while that replica is alive;
  ``next-replica`` (counter): the next replica number;
- ``ids:<epoch>:<member id>`` (hash, expires an hour after the member's last message, deleted with its
  leave): the member's last message ids (``i:<id>`` -> ``<seq> <time>`` of the one logged, and a ring
  of slots ``s:<n>`` -> id, counted by ``#``), so a resend on any replica is answered, not logged again;
- ``applied`` (hash): replica number -> the number of its last batch applied, so
  a batch sent again after a lost answer is not applied twice;
- ``archived`` (string): the last seq the archiver has made durable in chat.log
  (the stream is trimmed only behind it); ``archiver`` (string with a TTL):
  present while the archiver is alive.

Rooms besides the default one, and direct conversations (``service/replica_rooms.py``): each has the
keys above under its own hash-tagged prefix, ``{room:dev}:`` for ``#dev`` (its room key without the ``#``) and
``{dm:alice+bob}:`` for a conversation, so a Redis Cluster keeps each in one slot and spreads them over
shards. Of those, ``events``, ``room`` (whose ``epoch`` is the default room's when it was opened), ``names``,
``roster``, ``replicas`` (the replicas serving members there: a reaped one is fenced there too), ``applied``,
``ids:*`` and ``archived`` are used; and ``invited`` (set): the name keys a private room lets in. Besides:

- ``rooms`` (hash): room key -> JSON ``{"name", "owner", "created", "private"}``, every room besides the
  default (the archiver writes each one's ``room-info.json`` and gives the hash back to a Redis started empty);
- ``conversations`` (set): every conversation's name (``@alice+bob``), for the archiver;
- ``rooms-of:<replica>`` (set): the prefixes of the rooms and conversations a replica registered in, so
  whoever reaps it reaps its members there too;
- ``nudge:<replica>`` (stream, capped): a replica's wake-ups: ``{"c": "read", "p": prefix}`` asks it to read
  a conversation one of its members is in (a direct message to her from another replica).

Accounts (``redis_accounts.py``), when the tracker runs with ``--redis-url``: every key of
one account carries its name key as a hash tag (``{alpha}``), so a Redis Cluster keeps
them in one slot (one script may touch them all) and spreads the accounts over shards:

- ``account:{key}`` (hash): ``name``, ``created``, ``passphrase_hash``;
- ``account:{key}:devices`` (hash): device id -> JSON ``{"label", "created", "token_hash"}``;
  ``account:{key}:seen`` (hash): device id -> when it was last seen;
- ``account:{key}:read`` (hash): room -> the last seq the account has seen there;
- ``accounts`` (set): every account's key, for listing;
- ``device-token:<sha256>`` (string): ``<account key> <device id>`` of the device with that token.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chat_protocol import NameRefused, check_name, room_key
from chat_protocol.names import MAX_NAME_LENGTH
from chat_tracker.core.events import NO_NAME, Event, kind_of

DEFAULT_PREFIX = "groupchat:"
ALIVE_TTL_MS = 5_000  # a replica (or the archiver) whose key is this old is dead
HEARTBEAT_SECONDS = 1.0
MAX_TIME = 253_402_300_800.0  # 10000-01-01: chat.log's timestamps have four digits of year
# Every event a replica appends is a body: ``json.dumps`` with separators would make a new encoder each time (9 us
# a body against 4 on the bench VM); this one has the same settings, so the same output.
_COMPACT = json.JSONEncoder(separators=(",", ":"))


@dataclass(frozen=True)
class Keys:
    """Every Redis key of one room."""

    prefix: str = DEFAULT_PREFIX

    @property
    def events(self) -> str:
        return self.prefix + "events"

    @property
    def room(self) -> str:
        return self.prefix + "room"

    @property
    def names(self) -> str:
        return self.prefix + "names"

    @property
    def roster(self) -> str:
        return self.prefix + "roster"

    @property
    def moderation(self) -> str:
        return self.prefix + "moderation"

    @property
    def replicas(self) -> str:
        return self.prefix + "replicas"

    def alive(self, replica: int) -> str:
        return f"{self.prefix}alive:{replica}"

    @property
    def next_replica(self) -> str:
        return self.prefix + "next-replica"

    @property
    def applied(self) -> str:
        return self.prefix + "applied"

    def message_ids(self, epoch: str) -> str:
        """The prefix of the members' message-id hashes in ``epoch`` (the member id follows)."""
        return f"{self.prefix}ids:{epoch}:"

    @property
    def archived(self) -> str:
        return self.prefix + "archived"

    @property
    def room_lost(self) -> str:
        """Set for a few seconds by replicas waiting for ``archived`` after a lost room: one starting waits too."""
        return self.prefix + "room-lost"

    @property
    def archiver(self) -> str:
        return self.prefix + "archiver"

    @property
    def accounts(self) -> str:
        return self.prefix + "accounts"

    def account(self, key: str) -> str:
        return f"{self.prefix}account:{{{key}}}"

    def account_devices(self, key: str) -> str:
        return self.account(key) + ":devices"

    def account_seen(self, key: str) -> str:
        return self.account(key) + ":seen"

    def account_read(self, key: str) -> str:
        return self.account(key) + ":read"

    def account_rooms(self, key: str) -> str:
        """The rooms the account is a member of: room -> "since last_seen"."""
        return self.account(key) + ":rooms"

    def room_members(self, room: str) -> str:
        """The account keys that are members of ``room`` (maybe a few stale: its membership is the truth)."""
        return f"{self.prefix}room-members:{room}"

    def device_token(self, token_hash: str) -> str:
        return f"{self.prefix}device-token:{token_hash}"

    @property
    def rooms(self) -> str:
        return self.prefix + "rooms"

    @property
    def conversations(self) -> str:
        return self.prefix + "conversations"

    @property
    def invited(self) -> str:
        return self.prefix + "invited"

    def rooms_of(self, replica: int) -> str:
        return f"{self.prefix}rooms-of:{replica}"

    def nudge(self, replica: int) -> str:
        return f"{self.prefix}nudge:{replica}"

    def of_room(self, room: str) -> Keys:
        """The keys of room ``room`` (``#dev``) besides the default: ``{room:dev}:`` after this prefix."""
        return Keys(f"{self.prefix}{{room:{room_key(room).removeprefix('#')}}}:")

    def of_conversation(self, conversation: str) -> Keys:
        """The keys of a direct conversation (``@alice+bob``): ``{dm:alice+bob}:`` after this prefix."""
        return Keys(f"{self.prefix}{{dm:{conversation.removeprefix('@')}}}:")


def seq_of(entry_id: str | bytes) -> tuple[int, int]:
    """``(seq, sub)`` of a stream ID: sub 0 is a room event, anything else a control entry."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    seq, _, sub = text.partition("-")
    return int(seq), int(sub or 0)


def entries_of(entries: Sequence[Any]) -> list[tuple[int, int, Any]]:
    """``(seq, sub, fields)`` of each stream entry ``(id, fields)`` as redis-py returns them."""
    return [(*seq_of(entry_id), fields) for entry_id, fields in entries]


def body_of(event: Event) -> str:
    """An event's ``e`` field: everything but its seq and time (Redis gives those)."""
    body: dict[str, Any] = {"k": event.kind.value, "n": event.name}
    if event.text:
        body["x"] = event.text
    if event.origin is not None:
        body["o"] = event.origin
    if event.msg_id is not None:
        body["i"] = event.msg_id
    return _COMPACT.encode(body)


def _field(fields: dict[Any, Any], key: bytes) -> object:
    """A stream entry's field: bytes from redis-py and the lean reader, str where a test or a script built it."""
    value = fields.get(key)
    return fields.get(key.decode()) if value is None else value


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, str):
        return value
    raise ValueError(f"not a stream field: {value!r}")


def event_of(seq: int, fields: dict[Any, Any]) -> Event:
    """The room event stored as a stream entry ``<seq>-0``. Raises ValueError/KeyError on a foreign entry."""
    body = json.loads(_text(_field(fields, b"e")))
    origin = body.get("o")
    msg_id = body.get("i")
    return Event(
        seq=seq,
        time=float(_text(_field(fields, b"t"))),
        kind=kind_of(body["k"]),
        name=str(body["n"]),
        text=str(body.get("x", "")),
        origin=None if origin is None else int(origin),
        msg_id=None if msg_id is None else str(msg_id),
    )


def control_of(fields: dict[Any, Any]) -> dict[str, Any]:
    """A control entry's body: ``{"c": "owner"|"away", "o": member id, "r": replica}`` (an owner's also ``g``),
    or ``{"c": "moderation", "m": [mute and ban bodies]}`` (the archiver's, for a room Redis lost)."""
    body = json.loads(_text(fields.get(b"e", fields.get("e"))))
    return body if isinstance(body, dict) else {}


def checked_event_of(seq: int, fields: dict[Any, Any]) -> tuple[Event | None, str]:
    """The stream entry's event, or None and why it is none a replica wrote (the archiver logs only those)."""
    try:
        event = event_of(seq, fields)
    except (KeyError, ValueError, TypeError) as error:  # no JSON, a field missing, an unknown kind
        return None, f"unreadable ({type(error).__name__})"
    why = refusal(event)
    return (None, why) if why is not None else (event, "")


def refusal(event: Event) -> str | None:
    """Why ``event`` cannot be one a replica wrote (None: it can). chat.log's format trusts the name and time.

    A name is ``-`` (the tracker's own lines) or one a member may hold (chat_protocol's rules: no space,
    no newline, so no forged line); the kind is one of chat.log's (``EventKind``, checked when it was
    read); the time is a real instant.
    """
    if event.name != NO_NAME and not _name_allowed(event.name):
        return f"a {event.kind.value} event with an invalid name"
    if not math.isfinite(event.time) or not 0 <= event.time < MAX_TIME:
        return f"a {event.kind.value} event with an impossible time"
    return None


def _name_allowed(name: str) -> bool:
    """``check_name``'s verdict, each name checked once: the archiver checks every entry's, and names repeat."""
    return len(name) <= MAX_NAME_LENGTH and _short_name_allowed(name)


@functools.lru_cache(maxsize=4_096)
def _short_name_allowed(name: str) -> bool:
    try:
        check_name(name)
    except NameRefused:
        return False
    return True
