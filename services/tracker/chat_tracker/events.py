"""One logged event and its three renderings: a chat.log line, a JSON frame, a plain-text line.

Each rendering is computed at most once per event, however many members receive
it, and so is its WebSocket frame: fan-out to N members costs N socket writes,
not N encodings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from chat_protocol import ChatMessage, Joined, Left, encode, escape, format_ts, sanitize_for_terminal

from .wire import text_frame

if TYPE_CHECKING:
    from .room import Member

# The kinds of line in chat.log.
START, STOP, JOIN, MESSAGE, LEAVE = "start", "stop", "join", "msg", "leave"
NO_NAME = "-"

_PLAIN_LEAVE_SUFFIX = {
    "lost": " (connection lost)",
    "flooding": " (removed for flooding)",
    "slow": " (removed: too slow to keep up)",
}


@dataclass(eq=False, slots=True)
class Event:
    """Something that happened in the room, in chat.log order."""

    seq: int
    time: float  # seconds since the epoch
    kind: str
    name: str = NO_NAME
    text: str = ""
    origin: Member | None = field(default=None, repr=False)
    members_at_join: tuple[str, ...] = ()  # for the joiner's welcome
    _ts: str | None = field(default=None, repr=False)
    _json: str | None = field(default=None, repr=False)
    _plain: str | None = field(default=None, repr=False)
    _json_wire: bytes | None = field(default=None, repr=False)
    _plain_wire: bytes | None = field(default=None, repr=False)

    @property
    def ts(self) -> str:
        if self._ts is None:
            self._ts = format_ts(self.time)
        return self._ts

    def log_line(self) -> bytes:
        """The event as one chat.log line, newline included."""
        head = f"{self.seq} {self.ts} {self.kind} {self.name}"
        line = f"{head} {escape(self.text)}\n" if self.text else head + "\n"
        return line.encode("utf-8")

    def json_frame(self) -> str:
        """The structured-protocol frame every JSON member receives (not used for the joiner)."""
        if self._json is None:
            self._json = encode(self._as_message())
        return self._json

    def _as_message(self) -> ChatMessage | Joined | Left:
        if self.kind == MESSAGE:
            return ChatMessage(seq=self.seq, ts=self.ts, name=self.name, text=self.text)
        if self.kind == JOIN:
            return Joined(seq=self.seq, ts=self.ts, name=self.name)
        if self.kind == LEAVE:
            return Left(seq=self.seq, ts=self.ts, name=self.name, reason=self.text)
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
        if self.kind == MESSAGE:
            return f"{self.name}: {sanitize_for_terminal(self.text)}"
        if self.kind == JOIN:
            return f"* {self.name} joined the chat"
        if self.kind == LEAVE:
            return f"* {self.name} left the chat{_PLAIN_LEAVE_SUFFIX.get(self.text, '')}"
        raise ValueError(f"{self.kind} events are not sent to members")
