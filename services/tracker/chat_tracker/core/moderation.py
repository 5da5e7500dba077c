"""Mutes and bans in force: plain data, rebuilt from the journal's moderation events.

A moderator's action is an event in chat.log (``kick``, ``mute``, ``ban``, ``unban``,
``announce``; ``events.py``) whose text holds its details as a compact JSON object.
The room applies each one when the journal hands it back durable, in seq order
(``Room._deliver``), through ``Moderation.apply`` - the same function that rebuilds
the state at start from ``room.json`` and the events after it (``storage/checkpoint.py``).
So every process that reads the journal enforces the same mutes and bans from the
same seq on, and a SIGKILL loses none of them.

Names are compared by their key (``chat_protocol.name_key``): a ban on ``alpha``
bans ``ALPHA`` and ``a1pha`` too. Addresses are compared as the tracker counts them
or networks: a ban of ``10.0.0.5`` is that address, of ``2001:db8:1:2::/64`` that network
(an IPv6 client can pick any address of its /64, so ban its /64).
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from chat_protocol import format_ts, name_key

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Ban:
    """One ban: of a name (any spelling a person could confuse with it) or of an address or network."""

    id: str
    name: str | None = None
    address: str | None = None
    until: float | None = None  # seconds since the epoch; None: for ever
    reason: str = ""

    def expired(self, now: float) -> bool:
        return self.until is not None and now >= self.until

    def matches_name(self, name: str) -> bool:
        return self.name is not None and name_key(self.name) == name_key(name)

    def matches_address(self, address: str) -> bool:
        if self.address is None:
            return False
        try:
            return ipaddress.ip_address(address) in network(self.address)
        except ValueError:  # not an IP address (a test client's "unknown"): only the same text matches
            return address == self.address

    def public(self) -> dict[str, Any]:
        """As ``GET /admin/bans`` shows it."""
        return {
            "id": self.id,
            "name": self.name,
            "address": self.address,
            "until": format_ts(self.until) if self.until is not None else None,
            "reason": self.reason,
        }


def network(text: str) -> Network:
    """An address or network as a network (``10.0.0.5`` is ``10.0.0.5/32``). Raises ValueError."""
    return ipaddress.ip_network(text, strict=False)


def new_ban_id() -> str:
    return "b" + secrets.token_hex(4)


def details(**values: Any) -> str:
    """A moderation event's text: its details as compact JSON, None values left out."""
    return json.dumps({k: v for k, v in values.items() if v is not None}, separators=(",", ":"))


def _object(text: object) -> dict[str, Any]:
    """A JSON object's text as a dict ({} for anything else)."""
    try:
        body = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


@dataclass
class Moderation:
    """The mutes (by name key) and bans in force."""

    clock: Callable[[], float] = time.time
    mutes: dict[str, float] = field(default_factory=dict)  # name key -> muted until
    bans: dict[str, Ban] = field(default_factory=dict)  # id -> ban
    # Ban id -> the banned address or network. chat.log's ban line does not name the address (members
    # read chat.log through /log), so a restart finds it here, in room.json (0600), written before the
    # ban's event is logged (``remember_address``). Entries of lifted or expired bans are dropped.
    addresses: dict[str, str] = field(default_factory=dict)

    # --- applying events ------------------------------------------------------------

    def apply(self, kind: str, name: str, body: dict[str, Any]) -> None:
        """One moderation event (``kind``, its name field, its details), as logged."""
        if kind == "mute":
            until = body.get("until_epoch")
            if isinstance(until, (int, float)) and until > 0:
                self.mutes[name_key(name)] = float(until)
            else:
                self.mutes.pop(name_key(name), None)
        elif kind == "ban" and isinstance(body.get("id"), str):
            until = body.get("until_epoch")
            address = body.get("address") if isinstance(body.get("address"), str) else self.addresses.get(body["id"])
            if address is not None:
                self.addresses[body["id"]] = address
            self.bans[body["id"]] = Ban(
                id=body["id"],
                name=None if name == "-" else name,
                address=address,
                until=float(until) if isinstance(until, (int, float)) else None,
                reason=str(body.get("reason", "")),
            )
        elif kind == "unban" and isinstance(body.get("id"), str):
            self.bans.pop(body["id"], None)
            self.addresses.pop(body["id"], None)

    def seeded(self, items: Sequence[object]) -> list[Ban]:
        """The archiver's mutes and bans in force, given back to a room Redis lost; the bans, to enforce.

        Each item is a mute or ban event's body as the stream holds it (``{"k", "n", "x"}``, ``x`` its
        details as JSON), applied like the event; the archiver left out any that the new room overrode.
        """
        bans: list[Ban] = []
        for item in items:
            if not isinstance(item, dict) or item.get("k") not in ("mute", "ban"):
                continue
            body = _object(item.get("x"))
            self.apply(str(item["k"]), str(item.get("n", "-")), body)
            ban = self.bans.get(body["id"]) if item["k"] == "ban" and isinstance(body.get("id"), str) else None
            if ban is not None:
                bans.append(ban)
        return bans

    def remember_address(self, ban_id: str, address: str) -> None:
        """Before an address ban is logged: its address, for room.json (chat.log's line will not name it)."""
        self.addresses[ban_id] = address

    # --- questions ------------------------------------------------------------------

    def muted_until(self, name: str) -> float | None:
        """When ``name``'s mute ends, if it is muted now."""
        until = self.mutes.get(name_key(name))
        if until is None:
            return None
        if self.clock() >= until:
            del self.mutes[name_key(name)]
            return None
        return until

    def ban_of_name(self, name: str) -> Ban | None:
        return self._first(lambda ban: ban.matches_name(name))

    def ban_of_address(self, address: str) -> Ban | None:
        return self._first(lambda ban: ban.matches_address(address))

    def active(self) -> list[Ban]:
        self._prune()
        return list(self.bans.values())

    def _first(self, matches: Callable[[Ban], bool]) -> Ban | None:
        if not self.bans:
            return None
        self._prune()
        return next((ban for ban in self.bans.values() if matches(ban)), None)

    def _prune(self) -> None:
        now = self.clock()
        for ban_id in [ban.id for ban in self.bans.values() if ban.expired(now)]:
            del self.bans[ban_id]
            self.addresses.pop(ban_id, None)

    # --- room.json ------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        self._prune()
        now = self.clock()
        return {
            "mutes": {key: until for key, until in self.mutes.items() if until > now},
            "bans": [asdict(ban) for ban in self.bans.values()],
            "addresses": dict(self.addresses),
        }

    def restore(self, body: dict[str, Any]) -> None:
        mutes = body.get("mutes", {})
        if isinstance(mutes, dict):
            self.mutes.update({str(k): float(v) for k, v in mutes.items()})
        addresses = body.get("addresses", {})
        if isinstance(addresses, dict):
            self.addresses.update({str(k): str(v) for k, v in addresses.items()})
        for item in body.get("bans", ()):
            self.bans[str(item["id"])] = Ban(
                id=str(item["id"]),
                name=item.get("name"),
                address=item.get("address"),
                until=None if item.get("until") is None else float(item["until"]),
                reason=str(item.get("reason", "")),
            )
