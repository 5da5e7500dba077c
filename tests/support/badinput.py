"""The bad-input figures, counted: every number of a ``bad_inputs`` row is what the test saw, never written down.

A test opens a ``BadInputs`` tally for its area and tells it what happened, case by case:
``sent`` for every input that went out, ``answered`` for every HTTP status or close code
that came back (5xx and 1011 are server errors), ``got_in`` for every connection that was
welcomed or authenticated, ``check_tracker`` after cases (a tracker found dead, or with a
new ERROR or traceback line, is a crash), ``compare_log`` once at the end (chat.log lines
that no accepted input explains are forged). Leaving the ``with`` block records the row,
even when the test failed on the way, and only then asserts that each figure is zero:
the figures file says what was counted, whatever the outcome.

Row: ``{"figure": "bad_inputs", "area", "tried", "crashes", "server_errors", "forged_lines",
"admitted", "tracker_checks", ...extra}``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from chat_tracker.core.dialects import PASSWORD_OK
from chat_tracker.records import LogEntry
from support.campaign import error_lines, record
from support.tracker import RunningTracker

INTERNAL_ERROR_CLOSE = 1011  # the tracker's "internal error" close code (a bug, as 5xx is over HTTP)
LIFECYCLE_KINDS = ("start", "stop")  # chat.log lines the tracker writes on its own, from no input
ANY_TEXT = None  # in an allowed line: any text (a leave's reason)

Allowed = tuple[str, str, str | None]  # (kind, name, text or ANY_TEXT)


def forged_lines(entries: Iterable[LogEntry], allowed: Iterable[Allowed]) -> int:
    """How many chat.log lines no allowed line explains: each allowed (kind, name, text) explains one line."""
    exact = Counter((kind, name, text) for kind, name, text in allowed if text is not ANY_TEXT)
    loose = Counter((kind, name) for kind, name, text in allowed if text is ANY_TEXT)
    forged = 0
    for entry in entries:
        if entry.kind in LIFECYCLE_KINDS and entry.name == "-":
            continue
        if exact[(entry.kind, entry.name, entry.text)] > 0:
            exact[(entry.kind, entry.name, entry.text)] -= 1
        elif loose[(entry.kind, entry.name)] > 0:
            loose[(entry.kind, entry.name)] -= 1
        else:
            forged += 1
    return forged


def admits(frame: str | bytes) -> bool:
    """Whether a frame tells its connection it got in: the plain password OK or welcome, a JSON
    ``authenticated``, ``welcome`` or ``hello`` with ``authenticated: true``."""
    text = frame.decode("utf-8", "replace") if isinstance(frame, bytes) else frame
    if text == PASSWORD_OK or text.startswith("Hi "):
        return True
    try:
        body = json.loads(text)
    except ValueError:
        return False
    if not isinstance(body, dict):
        return False
    return body.get("type") in ("authenticated", "welcome") or (
        body.get("type") == "hello" and body.get("authenticated") is True
    )


def members_lines(names: Iterable[str]) -> list[Allowed]:
    """One join and one leave (any reason) for each of ``names``: what members that came and went may log."""
    return [(kind, name, ANY_TEXT if kind == "leave" else "") for name in names for kind in ("join", "leave")]


@dataclass
class BadInputs:
    """One test's bad-input tally (see the module docstring); ``extra`` goes into the row as it is."""

    area: str
    tracker: RunningTracker | None = None
    tried: int = 0
    crashes: int = 0
    server_errors: int = 0
    forged_lines: int = 0
    admitted: int = 0
    tracker_checks: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    _errors_seen: int = 0

    def sent(self, count: int = 1) -> None:
        self.tried += count

    def answered(self, *, status: int | None = None, close_code: int | None = None) -> None:
        """An HTTP status or a close code came back: a 5xx or a 1011 is a server error."""
        if (status is not None and status >= 500) or close_code == INTERNAL_ERROR_CLOSE:
            self.server_errors += 1

    def got_in(self, admitted: bool) -> None:
        """A connection that should have been refused: ``admitted`` if it was welcomed or authenticated."""
        self.admitted += admitted

    def check_tracker(self) -> None:
        """After a case: a tracker that exited, or printed a new ERROR or traceback line, counts one crash."""
        if self.tracker is None:
            return
        self.tracker_checks += 1
        errors = len(error_lines(self.tracker.output))
        if self.tracker.process.poll() is not None or errors > self._errors_seen:
            self.crashes += 1
        self._errors_seen = errors

    def compare_log(self, entries: Iterable[LogEntry], allowed: Iterable[Allowed]) -> None:
        self.forged_lines += forged_lines(entries, allowed)

    def figures(self) -> dict[str, Any]:
        return {
            "area": self.area,
            "tried": self.tried,
            "crashes": self.crashes,
            "server_errors": self.server_errors,
            "forged_lines": self.forged_lines,
            "admitted": self.admitted,
            "tracker_checks": self.tracker_checks,
            **self.extra,
        }

    def record_then_check(self) -> None:
        """Write the row, then fail if any counted figure is not zero."""
        record("bad_inputs", **self.figures())
        bad = {k: v for k, v in self.figures().items() if k in ("crashes", "server_errors", "forged_lines", "admitted")}
        assert not any(bad.values()), f"{self.area}: {bad}"
        assert self.tried > 0, f"{self.area}: no input was sent"

    def __enter__(self) -> BadInputs:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if kind is None:
            self.record_then_check()
        else:  # the test already failed: the row still says what was counted up to there
            record("bad_inputs", **self.figures(), completed=False)
