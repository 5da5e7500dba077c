"""Test-only hooks for a tracker under the rotation tests: SIGKILL at a step of a rotation, and a shifted clock.

``TRACKER_TEST_KILL_AT=POINT[:N]`` (POINT one of ``KILL_POINTS``): the tracker kills
itself with SIGKILL at POINT of its Nth rotation, to prove that a crash at any step
of a rotation loses no line and repeats no seq. ``TRACKER_TEST_CLOCK_OFFSET=SECONDS``:
the tracker's clock (chat.log's timestamps, daily rotation) runs that far ahead, so
the daily-rotation test starts a tracker just before UTC midnight instead of waiting
for one.

``install`` wraps the steps ``storage/rotation.py`` names (``RotatingLog._rename_to``,
``_rotate``, ``_write``) and ``segments.compress``, in the tracker's process only
(``sitecustomize.py``); a step renamed in the tracker fails here, loudly, at start.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

KILL_POINTS = ("before-rename", "after-rename", "after-reopen", "mid-write", "mid-compress", "after-compress")


class KillSwitch:
    """SIGKILL this process at ``point`` of the ``nth`` rotation."""

    def __init__(self, point: str, nth: int) -> None:
        self.point = point
        self.nth = nth
        self._seen = 0
        self.armed = False  # by the first rotation: start-up's own maintenance never dies
        self.fresh = False  # a rotation opened a fresh chat.log, whose first batch is not written yet

    @classmethod
    def from_environ(cls, env: Mapping[str, str]) -> KillSwitch:
        point, _, nth = env.get("TRACKER_TEST_KILL_AT", "").partition(":")
        if point not in KILL_POINTS:
            raise ValueError(f"TRACKER_TEST_KILL_AT: unknown point {point!r}")
        return cls(point, int(nth or 1))

    def reached(self, point: str) -> None:
        if point != self.point or not self.armed:
            return
        self._seen += 1
        if self._seen >= self.nth:
            os.kill(os.getpid(), signal.SIGKILL)

    def write_half_then_die(self, path: Path, data: bytes) -> None:
        """The ``mid-write`` point: half of the first batch of a fresh chat.log reaches the file."""
        if self.point != "mid-write" or not self.armed:
            return
        if self._seen + 1 >= self.nth:
            with path.open("ab") as file:
                file.write(data[: max(1, len(data) // 2)])
        self.reached("mid-write")


def install(env: Mapping[str, str]) -> None:
    """The hooks ``env`` asks for, installed in this (the tracker's) process."""
    if env.get("TRACKER_TEST_KILL_AT"):
        install_kill_switch(KillSwitch.from_environ(env))
    offset = float(env.get("TRACKER_TEST_CLOCK_OFFSET", "0") or 0)
    if offset:
        shift_clock(offset)


def install_kill_switch(switch: KillSwitch) -> None:
    """Wrap each step of a rotation so that ``switch`` is told when it is reached."""
    from chat_tracker.storage import rotation, segments

    log_class = rotation.RotatingLog
    rename_to, rotate, write, compress = log_class._rename_to, log_class._rotate, log_class._write, segments.compress

    def killing_rename_to(self: Any, segment: Path) -> None:
        switch.armed = True
        switch.reached("before-rename")  # chat.log is fsynced, not renamed yet
        rename_to(self, segment)
        switch.reached("after-rename")  # renamed, no fresh chat.log yet

    def killing_rotate(self: Any, chat_log: Any) -> Any:
        fresh = rotate(self, chat_log)
        if fresh is not chat_log:  # rotated (a postponed rotation goes on with the same chat.log)
            switch.reached("after-reopen")
            switch.fresh = True
        return fresh

    def killing_write(self: Any, chat_log: Any, data: bytes) -> None:
        if switch.fresh:
            switch.fresh = False
            switch.write_half_then_die(self.path, data)
        write(self, chat_log, data)

    def killing_compress(path: Path) -> Path:
        switch.reached("mid-compress")  # before the segment's .gz is written
        packed = compress(path)
        switch.reached("after-compress")  # the .gz in place, the plain segment removed
        return packed

    # Each step replaced on the class itself (not one instance): the tracker builds its log after this runs.
    for step, hooked in {"_rename_to": killing_rename_to, "_rotate": killing_rotate, "_write": killing_write}.items():
        setattr(log_class, step, hooked)
    setattr(segments, "compress", killing_compress)  # noqa: B010 - the module's own name, replaced for the tracker


def shift_clock(offset: float) -> None:
    """The clock of chat.log's events and of its rotation runs ``offset`` seconds ahead of ``time.time``."""
    from chat_tracker.journal.local import LocalJournal
    from chat_tracker.storage.rotation import RotatingLog

    def clock() -> float:
        return time.time() + offset

    for cls in (LocalJournal, RotatingLog):
        _with_clock(cls, clock)


def _with_clock(cls: Any, clock: Callable[[], float]) -> None:
    init = cls.__init__

    def init_with_clock(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **{**kwargs, "clock": clock})

    cls.__init__ = init_with_clock
