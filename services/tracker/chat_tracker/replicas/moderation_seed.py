"""The archiver's copy of the mutes and bans in force, given back to a room that Redis lost.

Redis restarted empty loses the ``moderation`` list, and with it every mute and ban
a replica starting later would apply. The archiver writes every event to chat.log,
so it keeps the moderation in force as it archives: folded at start from
``moderation.json`` and the chat.log after it (``storage/checkpoint.fold``, the
single tracker's own rebuild), then each batch's mutes, bans and unbans applied.
chat.log's ban line leaves an address ban's address out (members read chat.log), so
``moderation.json`` (0600) keeps the addresses; it is written before a batch holding
a mute, ban or unban is appended, so no restart of the archiver finds a ban in
chat.log whose address it does not know.

When the archiver finds a room in Redis without ``seeded`` (a new epoch), it gives it
that moderation (``SEED``): ahead of the room's own list, and as a control entry the
running replicas apply. Anything the new room already overrode (an unban of that
ban, a mute of that name) is left out, so a later unban wins.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis

from chat_protocol import format_ts, name_key
from chat_tracker.core.events import BAN, MUTE, UNBAN, Event
from chat_tracker.core.moderation import Ban, Moderation, details
from chat_tracker.errors import LogWriteError
from chat_tracker.journal.redis_keys import Keys
from chat_tracker.journal.redis_scripts import SEED
from chat_tracker.records import LogEntry
from chat_tracker.storage.checkpoint import Checkpoint, fold
from chat_tracker.storage.private_files import make_path_private
from chat_tracker.storage.segments import replace_atomically

log = logging.getLogger("chat_tracker")

MODERATION_FILE = "moderation.json"
SEED_KINDS = (MUTE, BAN, UNBAN)


@dataclass
class ArchivedModeration:
    """The mutes and bans in force as of ``seq``, the last event the archiver applied."""

    path: Path
    moderation: Moderation
    seq: int

    @classmethod
    def load(
        cls, data_dir: Path, read_after: Callable[[int, int], list[LogEntry]], last_seq: int
    ) -> ArchivedModeration:
        """``moderation.json`` brought up to chat.log's ``last_seq`` (and written again if that moved it)."""
        path = data_dir / MODERATION_FILE
        start = _read(path)
        folded = fold(start, read_after, last_seq)
        moderation = Moderation()
        moderation.restore(folded.moderation)
        kept = cls(path, moderation, folded.seq)
        if folded.seq != start.seq:
            kept.save()
        return kept

    def before_append(self, events: list[Event]) -> None:
        """Apply a batch's mutes, bans and unbans; if it holds any, save before chat.log gets them (LogWriteError)."""
        changes = [event for event in events if event.kind in SEED_KINDS]
        for event in changes:
            self.moderation.apply(event.kind.value, event.name, event.details())
        if changes:
            self.seq = max(self.seq, events[-1].seq)
            self.save()

    def save(self) -> None:
        body = {"seq": self.seq, "moderation": self.moderation.snapshot()}
        try:
            replace_atomically(self.path, json.dumps(body, separators=(",", ":")).encode("utf-8"))
        except OSError as error:
            raise LogWriteError(error.errno, f"cannot write {self.path}: {error.strerror}") from error

    def seed(self, listed: list[str]) -> list[dict[str, str]]:
        """The mutes and bans in force as event bodies, less those the room's ``listed`` entries override."""
        overridden_bans, overridden_mutes = _overridden(listed)
        now = time.time()
        items = [
            _ban_body(ban) for ban in self.moderation.active() if ban.id not in overridden_bans and not ban.expired(now)
        ]
        for key, until in self.moderation.mutes.items():
            if until > now and key not in overridden_mutes:
                until_ts = format_ts(until)
                items.append({"k": MUTE.value, "n": key, "x": details(until=until_ts, until_epoch=until)})
        return items


async def seed_room(client: aioredis.Redis, keys: Keys, epoch: str, kept: ArchivedModeration) -> bool:
    """Give the room of ``epoch`` the mutes and bans in force, once. True when it has them (now or before)."""
    for _ in range(3):  # the list changed between the read and the script: read it again
        listed = [_text(raw) for raw in await client.lrange(keys.moderation, 0, -1)]
        items = kept.seed(listed)
        control = json.dumps({"c": "moderation", "m": items}, separators=(",", ":"))
        entries = [json.dumps({"seq": 0, "t": f"{time.time():.6f}", "e": _compact(item)}) for item in items]
        done = int(
            await client.eval(SEED, 3, keys.room, keys.moderation, keys.events, epoch, len(listed), control, *entries)
        )
        if done == 1 and items:
            log.warning("Gave the room in Redis (epoch %s) the %d mute(s) and ban(s) in force", epoch, len(items))
        if done >= 0:
            return True
        if done == -1:
            return False  # another epoch already: the next read of the room sees it
    return False


def _read(path: Path) -> Checkpoint:
    """``moderation.json`` as a checkpoint to fold chat.log into (none, or unreadable: from the start)."""
    try:
        make_path_private(path)
        body = json.loads(path.read_text(encoding="utf-8"))
        moderation = body.get("moderation")
        return Checkpoint("", int(body["seq"]), (), moderation if isinstance(moderation, dict) else {})
    except FileNotFoundError:
        return Checkpoint("", 0)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        log.warning("Ignoring %s (%s); the mutes and bans are folded from chat.log instead", path, error)
        return Checkpoint("", 0)


def _overridden(listed: list[str]) -> tuple[set[str], set[str]]:
    """The ban ids banned or lifted, and the name keys muted or unmuted, by the room's own list entries."""
    bans: set[str] = set()
    mutes: set[str] = set()
    for raw in listed:
        try:
            body = json.loads(json.loads(raw)["e"])
            kind, name = body["k"], str(body["n"])
            found = json.loads(body.get("x") or "{}")
        except (ValueError, KeyError, TypeError):
            continue
        if kind == MUTE.value:
            mutes.add(name_key(name))
        elif isinstance(found, dict) and isinstance(found.get("id"), str):
            bans.add(found["id"])
    return bans, mutes


def _ban_body(ban: Ban) -> dict[str, str]:
    until = ban.until
    text = details(
        id=ban.id,
        address=ban.address,
        until=format_ts(until) if until is not None else None,
        until_epoch=until,
        reason=ban.reason or None,
    )
    return {"k": BAN.value, "n": ban.name or "-", "x": text}


def _compact(item: dict[str, str]) -> str:
    return json.dumps(item, separators=(",", ":"))


def _text(raw: object) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)
