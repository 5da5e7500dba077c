"""What a registered member missed while she was offline, as her welcome tells it.

Her read position (the last seq she has seen, kept per account) comes in with her
join; when her join is delivered, the events after it and before her join are
counted from the journal's memory (``Journal.recent``, the last ``--history-size``
events) without any I/O, so the count and the plain-text catch-up go out with the
welcome itself, before any live event. Seqs older than that memory are counted (seqs
are consecutive) but not shown: a JSON client pages through everything with
``history`` requests (answered from chat.log as well), a plain-text one is told how
to read them.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from chat_tracker.core.events import JOIN, LEAVE, MEMBER_EVENTS, Event


@dataclass(frozen=True)
class CatchUp:
    """``read``: her read position; ``missed``: the events after it that memory still holds; ``untold``: the rest."""

    read: int
    missed: tuple[Event, ...]
    untold: int  # seqs after ``read`` older than the journal's memory: counted, not shown

    @property
    def unread(self) -> int:
        return len(self.missed) + self.untold


def catch_up(name: str, read: int, join_seq: int, recent: Sequence[Event]) -> CatchUp:
    """What ``name``, who had read up to ``read``, missed before her join at ``join_seq``.

    Her own comings and goings are no news to her: they are not shown (nor counted, when memory holds them).
    """
    if join_seq - 1 <= read:
        return CatchUp(read, (), 0)
    first_kept = recent[0].seq if recent else join_seq
    untold = max(0, min(first_kept, join_seq) - 1 - read)
    start = max(0, read + 1 - first_kept)  # the ring holds consecutive seqs: where ``read + 1`` sits in it
    before_join = itertools.takewhile(lambda event: event.seq < join_seq, itertools.islice(recent, start, None))
    missed = tuple(event for event in before_join if event.kind in MEMBER_EVENTS and not _own_presence(event, name))
    return CatchUp(read, missed, untold)


def _own_presence(event: Event, name: str) -> bool:
    return (event.kind is JOIN or event.kind is LEAVE) and event.name == name


def plain_lines(catch: CatchUp) -> list[str]:
    """The plain-text dialect's account of what she missed, after its welcome."""
    if catch.unread == 0:
        return []
    lines = [f"* While you were away: {catch.unread} events since seq {catch.read}."]
    if catch.untold:
        first_shown = catch.read + catch.untold
        lines.append(
            f"* The oldest {catch.untold} are not shown here: GET /log?after={catch.read} lists them"
            f" (or a JSON client's history); from seq {first_shown + 1} on:"
        )
    lines.extend(event.plain_frame() for event in catch.missed)
    lines.append("* That is everything you missed; live from here.")
    return lines
