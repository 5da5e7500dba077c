"""``room.json``: who was in the room at a seq, so a restarted tracker brings its members back.

chat.log says who joined and who left; folding it from the first line would tell
who is in the room, but a log that runs for years is too long to read at every
start. So the tracker writes a checkpoint - the epoch, a seq, and the members in
the room at that seq - at start, every minute while the room changes, and at
shutdown, and at the next start folds only chat.log's events after that seq into
it. The checkpoint is written atomically (temporary file, fsync, rename), and a
stale one is harmless: the fold catches up from whatever seq it names.

Members who were in the room when the tracker stopped for a restart (SIGTERM) or
was killed come back as ``away``: their names stay theirs, and their clients
resume as if nothing happened, for the resume grace.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from chat_protocol import name_key, parse_ts
from chat_tracker.core.moderation import Moderation
from chat_tracker.records import LogEntry, Present
from chat_tracker.storage.private_files import make_path_private
from chat_tracker.storage.segments import replace_atomically

log = logging.getLogger("chat_tracker")

CHECKPOINT_FILE = "room.json"
FOLD_PAGE = 10_000


@dataclass(frozen=True)
class Checkpoint:
    epoch: str
    seq: int
    members: tuple[Present, ...] = ()
    moderation: dict[str, Any] = field(default_factory=dict)  # mutes and bans in force (core/moderation.py)


def read_checkpoint(data_dir: Path) -> Checkpoint | None:
    """The checkpoint in ``data_dir``, or None if there is none (or it cannot be read: then chat.log is folded)."""
    path = data_dir / CHECKPOINT_FILE
    try:
        make_path_private(path)  # it lists members and banned addresses: an older 0644 one is made 0600
        body = json.loads(path.read_text(encoding="utf-8"))
        members = tuple(
            Present(str(m["name"]), int(m["since_seq"]), float(m["joined_at"])) for m in body.get("members", ())
        )
        moderation = body.get("moderation", {})
        return Checkpoint(
            str(body["epoch"]), int(body["seq"]), members, moderation if isinstance(moderation, dict) else {}
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as error:
        log.warning("Ignoring %s (%s); chat.log is read instead", path, error)
        return None


def write_checkpoint(data_dir: Path, checkpoint: Checkpoint) -> None:
    """Replace ``room.json`` atomically; a crash leaves the old one or the new one, never half of either."""
    body = {
        "epoch": checkpoint.epoch,
        "seq": checkpoint.seq,
        "members": [asdict(m) for m in checkpoint.members],
        "moderation": checkpoint.moderation,
    }
    replace_atomically(data_dir / CHECKPOINT_FILE, json.dumps(body, separators=(",", ":")).encode("utf-8"))


def fold(start: Checkpoint, read_after: Callable[[int, int], list[LogEntry]], last_seq: int) -> Checkpoint:
    """``start`` brought up to ``last_seq`` with chat.log's joins, leaves, mutes and bans after its seq."""
    present = {name_key(m.name): m for m in start.members}
    moderation = Moderation()
    moderation.restore(start.moderation)
    seq = start.seq
    while seq < last_seq:
        entries = read_after(seq, FOLD_PAGE)
        if not entries:
            break  # the rest is gone (retention): what is known is all there is
        for entry in entries:
            if entry.kind == "join":
                present[name_key(entry.name)] = Present(entry.name, entry.seq, parse_ts(entry.ts).timestamp())
            elif entry.kind == "leave":
                present.pop(name_key(entry.name), None)
            elif entry.kind in ("mute", "ban", "unban"):
                moderation.apply(entry.kind, entry.name, _details(entry.text))
        seq = entries[-1].seq
    members = tuple(sorted(present.values(), key=lambda m: m.since_seq))
    return Checkpoint(start.epoch, max(seq, last_seq), members, moderation.snapshot())


def _details(text: str) -> dict[str, Any]:
    try:
        body = json.loads(text)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
