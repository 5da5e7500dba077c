"""Members before strangers: who may hold one of the tracker's WebSocket slots.

A connection is a *stranger* until its password is accepted, then a *member*. An
attacker without the password can only ever hold strangers, so strangers get their
own budget, overall and per address, and when the tracker is full a newcomer takes
the place of a stranger, never of a member. The stranger dropped is the oldest one
of the address holding the most: a flood from a few addresses pays for itself, and a
member connecting from a fresh address (which holds one stranger, its own) gets in.

Pure bookkeeping, no I/O: the adapter (``transport/native.py``) closes whom it is told to.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Generic, TypeVar

C = TypeVar("C")


@dataclass(frozen=True)
class Budget:
    total: int  # --max-connections: open WebSockets, members and strangers
    strangers: int  # --max-unauthenticated: strangers at once, overall
    strangers_per_address: int  # --max-unauthenticated-per-address


class AdmissionRefusal(enum.Enum):
    FULL = "full"  # every slot is a member's: nobody can be dropped
    ADDRESS = "address"  # this address already has its share of strangers


@dataclass(frozen=True)
class Verdict(Generic[C]):
    """The answer to a newcomer: refused, or admitted (after ``dropped`` was removed to make room)."""

    refusal: AdmissionRefusal | None = None
    dropped: C | None = None


class Admission(Generic[C]):
    """The open WebSockets, members and strangers, by address key."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.members: set[C] = set()
        # Per address, its strangers oldest first (dicts keep insertion order).
        self._strangers: dict[str, dict[C, None]] = {}
        self._key_of: dict[C, str] = {}
        # _by_count[n]: the addresses holding exactly n strangers (n > 0), in the order they got there;
        # only non-empty buckets are kept, so finding the biggest holder costs one max() over a few keys.
        self._by_count: dict[int, dict[str, None]] = {}

    @property
    def strangers(self) -> int:
        return len(self._key_of)

    @property
    def total(self) -> int:
        return len(self.members) + len(self._key_of)

    def strangers_from(self, key: str) -> int:
        return len(self._strangers.get(key, ()))

    def admit(self, conn: C, key: str) -> Verdict[C]:
        """Admit ``conn`` (from address ``key``) as a stranger, dropping another stranger if full."""
        if self.strangers_from(key) >= self.budget.strangers_per_address:
            return Verdict(AdmissionRefusal.ADDRESS)
        dropped = None
        if self.total >= self.budget.total or self.strangers >= self.budget.strangers:
            dropped = self._pick_stranger()
            if dropped is None:
                return Verdict(AdmissionRefusal.FULL)
            self.remove(dropped)
        self._add_stranger(conn, key)
        return Verdict(dropped=dropped)

    def authenticated(self, conn: C) -> None:
        """``conn``'s password was accepted: it is a member now (no-op if it was dropped meanwhile)."""
        if conn in self._key_of:
            self._remove_stranger(conn)
            self.members.add(conn)

    def remove(self, conn: C) -> None:
        """``conn`` is closed (no-op if it is not here)."""
        self.members.discard(conn)
        if conn in self._key_of:
            self._remove_stranger(conn)

    def _pick_stranger(self) -> C | None:
        """The oldest stranger of the address holding the most."""
        if not self._by_count:
            return None
        key = next(iter(self._by_count[max(self._by_count)]))
        return next(iter(self._strangers[key]))

    def _add_stranger(self, conn: C, key: str) -> None:
        held = self._strangers.setdefault(key, {})
        self._move(key, len(held), len(held) + 1)
        held[conn] = None
        self._key_of[conn] = key

    def _remove_stranger(self, conn: C) -> None:
        key = self._key_of.pop(conn)
        held = self._strangers[key]
        del held[conn]
        self._move(key, len(held) + 1, len(held))
        if not held:
            del self._strangers[key]

    def _move(self, key: str, before: int, after: int) -> None:
        if before:
            bucket = self._by_count[before]
            del bucket[key]
            if not bucket:
                del self._by_count[before]
        if after:
            self._by_count.setdefault(after, {})[key] = None
