"""A ``history`` request's answer: one page of events from the journal, as the frames members receive live.

Read from the journal's memory when it still holds the range, else from chat.log and
its rotated segments (``Journal.read_after``); seqs that retention deleted are reported
as ``gone``, never skipped in silence. The tracker's own start and stop lines are
covered by a page but not shown in it, as they are never sent to members.
"""

from __future__ import annotations

import json

from chat_protocol import HistoryPage
from chat_tracker.core.errands import ReadHistory
from chat_tracker.core.events import MEMBER_EVENTS
from chat_tracker.journal.protocol import Journal


async def history_page(journal: Journal, request: ReadHistory, room: str | None = None) -> str:
    """The ``history_page`` frame for ``request``, as of the journal's newest event."""
    newest = journal.last_seq
    if request.after is not None:
        after, end = request.after, newest
    else:
        end = min(newest, max(0, (request.before or 0) - 1))
        after = max(0, end - request.limit)
    limit = min(request.limit, end - after)
    if limit <= 0:
        return _frame(after + 1, min(after, end), more=False, frames=[], gone=None, room=room)
    history = await journal.read_after(after, limit)
    events = [event for event in history.events if event.seq <= end]
    last = events[-1].seq if events else (history.gone[1] if history.gone else after)
    frames = [event.json_frame() for event in events if event.kind in MEMBER_EVENTS]
    return _frame(after + 1, last, more=last < end, frames=frames, gone=history.gone, room=room)


def _frame(first: int, last: int, more: bool, frames: list[str], gone: tuple[int, int] | None, room: str | None) -> str:
    """The page as one frame: the events' frames are joined as they are, not decoded and encoded again.

    A page of another room names it once (``room``); its events are that room's, so they do not repeat it.
    """
    head: dict[str, object] = {"type": HistoryPage.TYPE, "first": first, "last": last, "more": more}
    if gone is not None:
        head["gone"] = list(gone)
    if room is not None:
        head["room"] = room
    opening = json.dumps(head, separators=(",", ":"))[:-1]
    return f'{opening},"events":[{",".join(frames)}]}}'
