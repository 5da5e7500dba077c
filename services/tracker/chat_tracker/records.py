"""Plain records that storage hands to the core: a chat.log line, and a member present at a checkpoint.

They live here, not beside the files they come from, so that the core can name them
without importing the modules that read and write those files.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LogEntry:
    """One parsed chat.log line."""

    seq: int
    ts: str
    kind: str
    name: str
    text: str


@dataclass(frozen=True)
class Present:
    """A member in the room at the checkpoint's seq."""

    name: str
    since_seq: int  # the seq of its own join
    joined_at: float  # seconds since the epoch
