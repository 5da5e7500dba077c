"""Frames for members: the shared rendering of a batch, and a member's own view of it.

Most members of a batch receive the same bytes, built once per dialect and handed
over as one piece (``SharedFrames``). The members a batch concerns - its senders,
joiners and leavers - get frames assembled for them alone (``frames_for``): the
joiner its welcome instead of its own join, a JSON sender the echo that acknowledges
its message, a leaver nothing after its own leave.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from chat_protocol import Limits
from chat_tracker.core.dialects import Dialect, ResumeOffer
from chat_tracker.core.events import JOIN, MESSAGE, Event
from chat_tracker.core.frames import text_frame
from chat_tracker.core.outbox import Outbox


class Recipient(Protocol):
    """What delivery needs of a member (``room.Member``), so this module does not import the room."""

    @property
    def id(self) -> int: ...
    @property
    def dialect(self) -> Dialect: ...
    @property
    def outbox(self) -> Outbox: ...
    @property
    def since_seq(self) -> int | None: ...
    @property
    def leave_seq(self) -> int | None: ...
    @property
    def recover_after(self) -> int | None: ...


class Welcomes(Protocol):
    """What a joiner's welcome needs besides its join event (``room.Room``)."""

    @property
    def limits(self) -> Limits: ...

    def offer(self, event: Event) -> ResumeOffer | None: ...

    def recovered_frame(self, member: Any, event: Event) -> str: ...


class SharedFrames:
    """A batch's frames as most members receive them, built once per dialect (and per wiring)."""

    __slots__ = ("_texts", "_wire", "batch")

    def __init__(self, batch: Sequence[Event]) -> None:
        self.batch = batch
        self._wire: dict[Dialect, bytes] = {}  # WebSocket frames, joined: for wired outboxes
        self._texts: dict[Dialect, list[str]] = {}  # texts: for ASGI sends

    def push_to(self, member: Recipient) -> int:
        """Queue the batch for ``member``; the number of frames queued."""
        outbox = member.outbox
        dialect = member.dialect
        if outbox.wire is not None:  # nearly every member: one dict lookup, no key built
            joined = self._wire.get(dialect)
            if joined is None:
                joined = self._wire[dialect] = b"".join([dialect.shared_wire(event) for event in self.batch])
            count = len(self.batch)
            outbox.push_wire(joined, count)
            return count
        texts = self._texts.get(dialect)
        if texts is None:
            texts = self._texts[dialect] = [dialect.shared(event) for event in self.batch]
        outbox.push_texts(texts)
        return len(texts)


def frames_for(member: Recipient, batch: Sequence[Event], welcomes: Welcomes) -> int:
    """Queue ``member``'s own view of ``batch`` (from its join to its leave); the number of frames."""
    since = member.since_seq
    assert since is not None, "a member receives nothing before its join is delivered"
    outbox, dialect = member.outbox, member.dialect
    wired = outbox.wired
    until = member.leave_seq if member.leave_seq is not None else batch[-1].seq
    wire_frames: list[bytes] = []
    texts: list[str] = []
    for event in batch:
        if event.seq < since or event.seq > until:
            continue  # from before it joined, or after it left (later in this batch)
        if event.origin == member.id:
            own = own_texts(dialect, event, welcomes, member)
            if wired:
                wire_frames.extend([text_frame(text) for text in own])
            else:
                texts.extend(own)
        elif wired:
            wire_frames.append(dialect.shared_wire(event))
        else:
            texts.append(dialect.shared(event))
    if wired:
        if wire_frames:
            outbox.push_wire(b"".join(wire_frames), len(wire_frames))
        return len(wire_frames)
    outbox.push_texts(texts)
    return len(texts)


def own_texts(dialect: Dialect, event: Event, welcomes: Welcomes, member: Recipient) -> list[str]:
    """What a member receives for an event it caused itself."""
    if event.kind is MESSAGE:
        return [dialect.own_message(event)] if dialect.echo_own_messages else []
    if event.kind is JOIN and member.recover_after is not None:
        return [welcomes.recovered_frame(member, event)]  # back from a lost epoch: resumed, not recovered
    if event.kind is JOIN:
        return dialect.welcome(event, welcomes.limits, welcomes.offer(event))
    return []  # your own leave: you get a bye instead
