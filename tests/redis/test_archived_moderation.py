"""The archiver's copy of the mutes and bans in force (``replicas/moderation_seed.py``), without Redis.

It keeps a banned address that chat.log leaves out, rebuilds the rest from chat.log, and gives a
new room only what the new room has not overridden. A shared room applies what it is given and
removes whoever a given ban matches (``core/moderation.py``'s ``seeded``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from chat_protocol import format_ts
from chat_tracker.core.events import BAN, MUTE, UNBAN, Event
from chat_tracker.core.moderation import Moderation, details
from chat_tracker.records import LogEntry
from chat_tracker.replicas.moderation_seed import MODERATION_FILE, ArchivedModeration

NOW = time.time()  # at import: the suite may reach these tests many minutes later
# Expiries a day ahead of NOW: still in the future whenever in the run a test gets to them.
LATER = NOW + 86_400


def moderation_event(seq: int, kind: str, name: str, **values: object) -> Event:
    return Event(
        seq=seq, time=NOW, kind={"ban": BAN, "mute": MUTE, "unban": UNBAN}[kind], name=name, text=details(**values)
    )


def as_line(event: Event) -> LogEntry:
    """The event as chat.log has it (an address ban's address left out)."""
    return LogEntry(event.seq, event.ts, event.kind.value, event.name, event.logged_text())


def reader(lines: list[LogEntry]) -> Callable[[int, int], list[LogEntry]]:
    """chat.log's ``read_after`` over ``lines``."""
    return lambda after, limit: [line for line in lines if line.seq > after][:limit]


def listed(seq: int, event: Event) -> str:
    """A ``moderation`` list entry of the room in Redis."""
    body = {"k": event.kind.value, "n": event.name, "x": event.text}
    return json.dumps({"seq": seq, "t": str(NOW), "e": json.dumps(body)})


def test_an_address_ban_survives_a_restart_of_the_archiver_though_chat_log_does_not_name_it(tmp_path: Path) -> None:
    kept = ArchivedModeration.load(tmp_path, reader([]), 0)
    events = [
        moderation_event(1, "ban", "-", id="b1", address="198.51.100.9"),
        moderation_event(2, "ban", "mallory", id="b2", until_epoch=LATER),
    ]
    kept.before_append(events)
    assert (tmp_path / MODERATION_FILE).stat().st_mode & 0o777 == 0o600
    # An older moderation.json that knows the address only: the bans themselves come from chat.log.
    (tmp_path / MODERATION_FILE).write_text(json.dumps({"seq": 0, "moderation": {"addresses": {"b1": "198.51.100.9"}}}))
    again = ArchivedModeration.load(tmp_path, reader([as_line(e) for e in events]), 2)
    bans = {ban.id: ban for ban in again.moderation.active()}
    assert bans["b1"].address == "198.51.100.9" and bans["b2"].until == LATER
    assert json.loads((tmp_path / MODERATION_FILE).read_text())["seq"] == 2, "saved again after the fold"


def test_chat_log_alone_rebuilds_name_bans_mutes_and_unbans(tmp_path: Path) -> None:
    events = [
        moderation_event(1, "ban", "trudy", id="b1"),
        moderation_event(2, "unban", "-", id="b1"),
        moderation_event(3, "mute", "mia", until_epoch=LATER),
    ]
    kept = ArchivedModeration.load(tmp_path, reader([as_line(e) for e in events]), 3)
    assert kept.moderation.active() == [] and kept.moderation.muted_until("mia") == LATER


def test_the_seed_leaves_out_what_the_new_room_overrode(tmp_path: Path) -> None:
    kept = ArchivedModeration.load(tmp_path, reader([]), 0)
    kept.before_append(
        [
            moderation_event(1, "ban", "mallory", id="b1"),
            moderation_event(2, "ban", "eve", id="b2"),
            moderation_event(3, "mute", "mia", until_epoch=LATER),
            moderation_event(4, "mute", "bob", until_epoch=LATER),
        ]
    )
    new_room = [
        listed(10, moderation_event(10, "unban", "-", id="b2")),
        listed(11, moderation_event(11, "mute", "BOB")),
    ]
    seed = kept.seed(new_room)
    assert [(item["k"], item["n"]) for item in seed] == [("ban", "mallory"), ("mute", "mla")]
    given = Moderation()
    assert [ban.id for ban in given.seeded(seed)] == ["b1"], "the bans given, for the room to enforce"
    assert given.ban_of_name("MALLORY") is not None and given.muted_until("mia") == LATER
    assert given.ban_of_name("eve") is None and given.muted_until("bob") is None


def test_an_expiry_is_given_as_it_was(tmp_path: Path) -> None:
    kept = ArchivedModeration.load(tmp_path, reader([]), 0)
    until = LATER
    kept.before_append([moderation_event(1, "ban", "-", id="b1", address="10.0.0.0/8", until_epoch=until)])
    given = Moderation()
    (ban,) = given.seeded(kept.seed([]))
    assert ban.until == until and ban.address == "10.0.0.0/8" and ban.public()["until"] == format_ts(until)
