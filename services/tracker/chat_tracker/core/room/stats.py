"""The room's counters, read by /metrics."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class RoomStats:
    """Plain integers, so counting costs nothing on the hot path."""

    messages: int = 0
    deliveries: int = 0
    joins: int = 0
    leaves: int = 0
    refused_messages: int = 0
    slow_drops: int = 0
    flood_drops: int = 0
    resumes: int = 0
    resumes_refused: int = 0
    replayed: int = 0
    replays_stopped: int = 0  # replays that stopped reading because their session was replaced or closed
    duplicates: int = 0
    away: int = 0
