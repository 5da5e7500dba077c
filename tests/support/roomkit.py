"""A room on a real chat.log in a temporary directory, with fake clocks and no event loop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from chat_protocol import Limits, ServerMessage, decode_server
from chat_tracker.core.dialects import JSON, Dialect
from chat_tracker.core.outbox import CloseRequest, Outbox
from chat_tracker.core.policy import MemberPolicy
from chat_tracker.core.room import Member, Room
from chat_tracker.core.tokens import ResumeTokens
from chat_tracker.journal.local import LocalJournal
from chat_tracker.records import LogEntry
from chat_tracker.service.settings import Settings
from chat_tracker.storage.chatlog import ChatLog, parse_line
from support.fakes import FakeClock, FakeWire, drain

DEFAULTS = Settings(password="unused")


@dataclass
class Inbox:
    """Everything one member's outbox has received so far."""

    frames: list[str] = field(default_factory=list)
    close: CloseRequest | None = None


class FakeTimer:
    """A grace timer that fires only when the test says so."""

    def __init__(self, delay: float, callback: Callable[[], None]) -> None:
        self.delay, self.callback, self.cancelled = delay, callback, False

    def cancel(self) -> None:
        self.cancelled = True

    def fire(self) -> None:
        if not self.cancelled:
            self.callback()


@dataclass
class RoomKit:
    room: Room
    journal: LocalJournal
    log: ChatLog
    path: Path
    wall: FakeClock
    mono: FakeClock
    inboxes: dict[str, Inbox] = field(default_factory=dict)
    timers: list[FakeTimer] = field(default_factory=list)

    @classmethod
    def create(
        cls,
        data_dir: Path,
        limits: Limits = Limits(),
        flood_tolerance: int = DEFAULTS.flood_tolerance,
        history_size: int = DEFAULTS.history_size,
        grace: float = 0.0,
        room_class: type[Room] = Room,
    ) -> RoomKit:
        log, report = ChatLog.open(data_dir)
        wall, mono = FakeClock(1_795_485_040.0), FakeClock(100.0)
        journal = LocalJournal(
            log, last_seq=report.last_seq, history_size=history_size, epoch="e1", clock=wall, auto_flush=False
        )
        policy = MemberPolicy(limits, flood_tolerance, DEFAULTS.flood_forgiveness, monotonic=mono)
        timers: list[FakeTimer] = []

        def call_later(delay: float, callback: Callable[[], None]) -> FakeTimer:
            timers.append(FakeTimer(delay, callback))
            return timers[-1]

        tokens = ResumeTokens(b"k" * 32, "e1")
        room = room_class(
            journal, policy, clock=wall, monotonic=mono, tokens=tokens, grace=grace, call_later=call_later
        )
        return cls(room, journal, log, data_dir / "chat.log", wall, mono, timers=timers)

    def flush(self) -> None:
        """Make every pending event durable and deliver it (the event loop does this in the tracker)."""
        self.journal.commit()

    def shutdown(self, note: str, bye: Callable[[Member], tuple[str, ...]]) -> int:
        """The tracker's shutdown order: deliver what is pending, then the leaves and the stop."""
        self.flush()
        told = self.room.shutdown(note, bye)
        self.flush()
        return told

    def join(
        self, name: str, dialect: Dialect = JSON, queue_size: int = 10_000, wire: FakeWire | None = None
    ) -> Member:
        member = self.room.join(name, dialect, Outbox(queue_size, wire=wire), "127.0.0.1")
        self.inboxes[name] = Inbox()
        return member

    def entries(self) -> list[LogEntry]:
        return [parse_line(line) for line in self.path.read_text(encoding="utf-8").splitlines()]

    def inbox(self, member: Member) -> Inbox:
        """Collect what ``member``'s outbox holds now into its inbox, and return the inbox."""
        box = self.inboxes.setdefault(member.name, Inbox())
        frames, close = drain(member.outbox)
        box.frames.extend(frames)
        box.close = close or box.close
        return box

    def received(self, member: Member) -> list[ServerMessage]:
        """The JSON messages ``member`` has received so far."""
        return [decode_server(frame) for frame in self.inbox(member).frames]
