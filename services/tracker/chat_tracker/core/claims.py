"""Names in use: one holder per name key, so lookalikes of an online name are taken.

A claim is checked and made with no await in between (everything runs on one event
loop), so of many connections claiming one name at once exactly one wins.
"""

from __future__ import annotations

from chat_protocol import check_name, name_key
from chat_tracker.errors import Refused


class NameClaims:
    """Which name keys are held, and by which spelling."""

    def __init__(self) -> None:
        self._holders: dict[str, str] = {}  # name key -> the name as its holder spelled it

    def __len__(self) -> int:
        return len(self._holders)

    def names(self) -> list[str]:
        """The held names, in the order they were claimed."""
        return list(self._holders.values())

    def claim(self, name: str) -> str:
        """Take ``name``; returns its key. Raises NameRefused (invalid, reserved) or Refused (taken)."""
        check_name(name)
        key = name_key(name)
        holder = self._holders.get(key)
        if holder is not None:
            raise Refused("name_taken", f"the name {name!r} is taken (or too close to {holder!r})")
        self._holders[key] = name
        return key

    def release(self, key: str) -> None:
        self._holders.pop(key, None)

    def clear(self) -> None:
        self._holders.clear()
