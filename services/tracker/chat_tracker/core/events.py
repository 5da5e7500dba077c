"""One logged event: plain data that can cross a process, and its renderings.

An event is what the journal hands on once it is durable: its seq, its time, its
kind, a name and a text, and the id of the member whose request made it (never the
member itself, so an event means the same in any process). ``to_bytes`` and
``from_bytes`` carry it between processes unchanged.

Its renderings - a chat.log line, a JSON frame, a plain-text line, and each as a
complete WebSocket frame - are computed at most once per event, however many
members receive it: fan-out to N members costs N socket writes, not N encodings.
The caches are not part of the event's value.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any

from chat_protocol import (
    ONLINE_TEXT,
    Announcement,
    ChatMessage,
    Joined,
    Left,
    Moderation,
    Presence,
    encode,
    escape,
    format_ts,
    sanitize_for_terminal,
)
from chat_protocol.reasons import LeaveReason
from chat_tracker.core.frames import text_frame

REPLICA_ID_SPAN = (
    1_000_000_000  # member ids of replica r are r * SPAN + n, so an event's origin means one member everywhere
)


class EventKind(enum.StrEnum):
    """The kinds of line in chat.log."""

    START = "start"
    STOP = "stop"
    JOIN = "join"
    MESSAGE = "msg"
    LEAVE = "leave"
    # Moderation (moderation.py): the text is a compact JSON object of the action's details.
    KICK = "kick"
    MUTE = "mute"
    BAN = "ban"
    UNBAN = "unban"
    ANNOUNCE = "announce"  # the text is the announcement itself


# An event kind by its value: a dict lookup, where ``EventKind(value)`` runs the enum's Python-level ``__new__``
# (every replica and the archiver decode every entry of a room's stream, and a resume reads chat.log back).
_KINDS: dict[str, EventKind] = {kind.value: kind for kind in EventKind}


def kind_of(value: object) -> EventKind:
    """``EventKind(value)``, faster. Raises ValueError for anything that is not a kind's value."""
    kind = _KINDS.get(value) if isinstance(value, str) else None
    if kind is None:
        raise ValueError(f"not an event kind: {value!r}")
    return kind


START, STOP, JOIN, MESSAGE, LEAVE = (
    EventKind.START,
    EventKind.STOP,
    EventKind.JOIN,
    EventKind.MESSAGE,
    EventKind.LEAVE,
)
KICK, MUTE, BAN, UNBAN, ANNOUNCE = (EventKind.KICK, EventKind.MUTE, EventKind.BAN, EventKind.UNBAN, EventKind.ANNOUNCE)
MODERATION_EVENTS = frozenset((KICK, MUTE, BAN, UNBAN))
MEMBER_EVENTS = frozenset((JOIN, MESSAGE, LEAVE, ANNOUNCE)) | MODERATION_EVENTS  # the kinds members receive
NO_NAME = "-"


@dataclass(slots=True)
class Event:
    """Something that happened in the room, in chat.log order."""

    seq: int
    time: float  # seconds since the epoch
    kind: EventKind
    name: str = NO_NAME
    text: str = ""  # the message, the leave reason, or the tracker's note
    origin: int | None = None  # the id of the member whose request made it; None for the tracker
    members: tuple[str, ...] = ()  # for a join: who was in the room, the joiner included (its welcome)
    msg_id: str | None = None  # for a message: the id its sender chose (not in chat.log; echoed to the sender)
    _ts: str | None = field(default=None, repr=False, compare=False)
    _json: str | None = field(default=None, repr=False, compare=False)
    _plain: str | None = field(default=None, repr=False, compare=False)
    _json_wire: bytes | None = field(default=None, repr=False, compare=False)
    _plain_wire: bytes | None = field(default=None, repr=False, compare=False)

    # --- across processes ----------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The event's value as compact JSON (ASCII: lone surrogates survive as escapes)."""
        body: dict[str, Any] = {"seq": self.seq, "time": self.time, "kind": self.kind.value, "name": self.name}
        if self.text:
            body["text"] = self.text
        if self.origin is not None:
            body["origin"] = self.origin
        if self.members:
            body["members"] = list(self.members)
        if self.msg_id is not None:
            body["id"] = self.msg_id
        return json.dumps(body, separators=(",", ":")).encode("ascii")

    @classmethod
    def from_bytes(cls, data: bytes) -> Event:
        """The event ``to_bytes`` made. Raises ValueError (or KeyError/TypeError) on anything else."""
        body = json.loads(data)
        return cls(
            seq=int(body["seq"]),
            time=float(body["time"]),
            kind=kind_of(body["kind"]),
            name=str(body["name"]),
            text=str(body.get("text", "")),
            origin=None if body.get("origin") is None else int(body["origin"]),
            members=tuple(str(name) for name in body.get("members", ())),
            msg_id=None if body.get("id") is None else str(body["id"]),
        )

    # --- renderings ------------------------------------------------------------------

    def forget_renderings(self) -> None:
        """Drop what was built to deliver it: a join's member list (only its welcome reads it) and its frames.

        For a join or a leave once delivered. Kept, the journal's ring of recent events would hold a
        list of the whole room per join (at 10,000 members, some 400 MB) and each presence notice's
        timestamp and frames (about 200 B each, three joins per member in three rooms); a replay or a
        history page renders it again. A message keeps its frames: replays share them.
        """
        self.members = ()
        self._ts = self._json = self._plain = None
        self._json_wire = self._plain_wire = None

    @property
    def ts(self) -> str:
        if self._ts is None:
            self._ts = format_ts(self.time)
        return self._ts

    def log_line(self) -> bytes:
        """The event as one chat.log line, newline included."""
        head = f"{self.seq} {self.ts} {self.kind.value} {self.name}"
        text = self.logged_text()
        line = f"{head} {escape(text)}\n" if text else head + "\n"
        return line.encode("utf-8")

    def logged_text(self) -> str:
        """The text as chat.log has it: an address ban's details without the address.

        Members read chat.log through ``/log``; the address stays in the event itself (the
        journal, a replica's Redis stream) and in room.json, for the tracker and ``/admin/bans``.
        """
        if self.kind is not BAN or '"address"' not in self.text:
            return self.text
        body = self.details()
        if body.pop("address", None) is None:
            return self.text
        return json.dumps(body, separators=(",", ":"))

    def json_frame(self) -> str:
        """The structured-protocol frame every JSON member receives (not used for the joiner)."""
        if self._json is None:
            self._json = encode(self._as_message())
        return self._json

    def own_json_frame(self) -> str:
        """The frame that goes back to a message's own sender: the shared one, plus the sender's id."""
        if self.msg_id is None or self.kind is not MESSAGE:
            return self.json_frame()
        return encode(ChatMessage(seq=self.seq, ts=self.ts, name=self.name, text=self.text, id=self.msg_id))

    def details(self) -> dict[str, Any]:
        """A moderation event's details (reason, seconds, until, id, address); {} for anything else."""
        if self.kind not in MODERATION_EVENTS or not self.text.startswith("{"):
            return {}
        try:
            body = json.loads(self.text)
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    @property
    def presence(self) -> bool | None:
        """A registered member's coming online (True) or going offline (False); None for a join or leave proper."""
        if self.kind is JOIN and self.text == ONLINE_TEXT:
            return True
        if self.kind is LEAVE and self.text == LeaveReason.OFFLINE:
            return False
        return None

    def _as_message(self) -> ChatMessage | Joined | Left | Moderation | Announcement | Presence:
        if self.kind is MESSAGE:
            return ChatMessage(seq=self.seq, ts=self.ts, name=self.name, text=self.text)
        online = self.presence
        if online is not None:
            return Presence(seq=self.seq, ts=self.ts, name=self.name, online=online)
        if self.kind is JOIN:
            return Joined(seq=self.seq, ts=self.ts, name=self.name)
        if self.kind is LEAVE:
            return Left(seq=self.seq, ts=self.ts, name=self.name, reason=self.text)
        if self.kind is ANNOUNCE:
            return Announcement(seq=self.seq, ts=self.ts, text=self.text)
        if self.kind in MODERATION_EVENTS:
            details = self.details()
            seconds = details.get("seconds")
            return Moderation(
                seq=self.seq,
                ts=self.ts,
                action=self.kind.value,
                name="" if self.name == NO_NAME else self.name,
                reason=str(details.get("reason", "")),
                seconds=float(seconds) if isinstance(seconds, (int, float)) else None,
                until=details.get("until") if isinstance(details.get("until"), str) else None,
                id=details.get("id") if isinstance(details.get("id"), str) else None,
            )
        raise ValueError(f"{self.kind} events are not sent to members")

    def plain_frame(self) -> str:
        """The line every plain-text member receives: ``name: text`` or a ``* `` notice."""
        if self._plain is None:
            self._plain = self._as_plain_line()
        return self._plain

    def json_wire(self) -> bytes:
        """``json_frame`` as a complete WebSocket frame, built once for every recipient."""
        if self._json_wire is None:
            self._json_wire = text_frame(self.json_frame())
        return self._json_wire

    def plain_wire(self) -> bytes:
        """``plain_frame`` as a complete WebSocket frame, built once for every recipient."""
        if self._plain_wire is None:
            self._plain_wire = text_frame(self.plain_frame())
        return self._plain_wire

    def _as_plain_line(self) -> str:
        if self.kind is MESSAGE:
            return f"{self.name}: {sanitize_for_terminal(self.text)}"
        online = self.presence
        if online is not None:
            return f"* {self.name} is {'online' if online else 'offline'}"
        if self.kind is JOIN:
            return f"* {self.name} joined the chat"
        if self.kind is LEAVE:
            return f"* {self.name} left the chat{_plain_suffix(self.text)}"
        if self.kind is ANNOUNCE:
            return f"* Announcement: {sanitize_for_terminal(self.text)}"
        if self.kind in MODERATION_EVENTS:
            return _plain_moderation(self)
        raise ValueError(f"{self.kind} events are not sent to members")


def _plain_moderation(event: Event) -> str:
    details = event.details()
    reason = sanitize_for_terminal(str(details.get("reason", "")))
    because = f": {reason}" if reason else ""
    seconds = details.get("seconds")
    target = event.name if event.name != NO_NAME else "an address"  # never which one: members need not know it
    if event.kind is KICK:
        return f"* {target} was removed by a moderator{because}"
    if event.kind is MUTE:
        if not seconds:
            return f"* {target} may speak again"
        return f"* {target} is muted for {seconds:g} s (until {details.get('until', '?')}){because}"
    if event.kind is BAN:
        how_long = "for good" if seconds is None else f"for {seconds:g} s"
        return f"* {target} is banned {how_long} (ban {details.get('id', '?')}){because}"
    return f"* ban {details.get('id', '?')} was lifted"


def _plain_suffix(reason: str) -> str:
    try:
        return LeaveReason(reason).info.plain_suffix
    except ValueError:
        return ""
