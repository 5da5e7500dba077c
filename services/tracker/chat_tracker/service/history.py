"""A ``history`` request's answer: one page of events from the journal, as the frames members receive live.

Read from the journal's memory when it still holds the range, else from chat.log and
its rotated segments (``Journal.read_after``); seqs that retention deleted are reported
as ``gone``, never skipped in silence. The tracker's own start and stop lines are
covered by a page but not shown in it, as they are never sent to members.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from chat_protocol import HistoryPage
from chat_tracker.core.errands import ReadHistory
from chat_tracker.core.events import MEMBER_EVENTS, Event
from chat_tracker.journal.protocol import Journal

Render = Callable[[Event], str]  # an event as the frame a member receives live


async def history_page(
    journal: Journal, request: ReadHistory, about: dict[str, str] | None = None, render: Render = Event.json_frame
) -> str:
    """The ``history_page`` frame for ``request``, as of the journal's newest event."""
    newest = journal.last_seq
    if request.after is not None:
        after, end = request.after, newest
    else:
        end = min(newest, max(0, (request.before or 0) - 1))
        after = max(0, end - request.limit)
    limit = min(request.limit, end - after)
    if limit <= 0:
        return _frame(after + 1, min(after, end), more=False, frames=[], gone=None, about=about)
    history = await journal.read_after(after, limit)
    events = [event for event in history.events if event.seq <= end]
    last = events[-1].seq if events else (history.gone[1] if history.gone else after)
    frames = [render(event) for event in events if event.kind in MEMBER_EVENTS]
    return _frame(after + 1, last, more=last < end, frames=frames, gone=history.gone, about=about)


def history_page_of_nothing(request: ReadHistory, about: dict[str, str]) -> str:
    """The answer for a conversation that never was: an empty page."""
    after = request.after if request.after is not None else max(0, (request.before or 1) - 1)
    return _frame(after + 1, after, more=False, frames=[], gone=None, about=about)


def _frame(
    first: int, last: int, more: bool, frames: list[str], gone: tuple[int, int] | None, about: dict[str, str] | None
) -> str:
    """The page as one frame: the events' frames are joined as they are, not decoded and encoded again.

    A page of another room names it once (``about``: ``room``); its events are that room's, so they do
    not repeat it. A page of a conversation names the other member (``to``), and each message its own.
    """
    head: dict[str, object] = {"type": HistoryPage.TYPE, "first": first, "last": last, "more": more}
    if gone is not None:
        head["gone"] = list(gone)
    head.update(about or {})
    opening = json.dumps(head, separators=(",", ":"))[:-1]
    return f'{opening},"events":[{",".join(frames)}]}}'
