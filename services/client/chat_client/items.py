"""What the link hands the modes: the tracker's frames, and the client's own lines about the session."""

from __future__ import annotations

from dataclasses import dataclass

from chat_protocol import Resumed

from .connection import Incoming
from .render import safe


@dataclass(frozen=True)
class Notice:
    """A line from the client itself about the connection (``connection lost; reconnecting...``)."""

    text: str


Item = Incoming | Notice


def gone_notice(gone: list[int] | None) -> str:
    """What to say about seqs the tracker no longer keeps (a resume's or a history page's ``gone``)."""
    if not gone:
        return "some events are no longer kept by the tracker and were missed"
    first, last = gone[0], gone[-1]
    if first == last:
        return f"event {first} is no longer kept by the tracker and was missed"
    return f"events {first}-{last} are no longer kept by the tracker and were missed"


def resumed_notices(resumed: Resumed) -> list[str]:
    """What to tell the user on ``resumed``: how much follows, and what can no longer be had."""
    if resumed.replayed == 0:
        # "Nothing was missed" would contradict the line about events that are gone.
        lines = ["reconnected; " + ("nothing was missed" if resumed.recovered else "nothing follows")]
    else:
        count = resumed.messages
        lines = [f"reconnected; {count} missed message{'s' if count != 1 else ''} follow{'s' if count == 1 else ''}"]
    if not resumed.recovered:
        lines.append(gone_notice(resumed.gone))
    return lines


def rejoined_notice(refusal: str | None, name: str, missed_after: int) -> str:
    """What to tell the user after a fresh join in place of a resume."""
    why = f"could not resume ({safe(refusal)})" if refusal is not None else "reconnected (this tracker cannot resume)"
    return f"{why}; joined again as {safe(name)}; what was said after seq {missed_after} until now was missed"
