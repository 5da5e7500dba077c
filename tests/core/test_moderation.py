"""Mutes and bans as plain data: matching, expiry, and rebuilding from chat.log's events (no sockets)."""

from __future__ import annotations

from chat_tracker.core.moderation import Ban, Moderation, details
from chat_tracker.records import LogEntry
from chat_tracker.storage.checkpoint import Checkpoint, fold
from support.fakes import FakeClock


def test_a_name_ban_covers_every_lookalike_and_an_address_ban_its_network() -> None:
    by_name, by_network = Ban("b1", name="alpha"), Ban("b2", address="10.1.0.0/16")
    assert all(by_name.matches_name(n) for n in ("alpha", "ALPHA", "a1pha", "alp.ha"))
    assert not by_name.matches_name("alphas")
    assert by_network.matches_address("10.1.200.3") and not by_network.matches_address("10.2.0.1")
    assert Ban("b3", address="2001:db8:1:2::/64").matches_address("2001:db8:1:2:abcd::1")
    assert not by_network.matches_address("unknown")


def test_mutes_and_bans_expire_on_the_clock() -> None:
    clock = FakeClock(1000.0)
    state = Moderation(clock)
    state.apply("mute", "alpha", {"until_epoch": 1060.0})
    state.apply("ban", "beta", {"id": "b1", "until_epoch": 1030.0})
    assert state.muted_until("ALPHA") == 1060.0 and state.ban_of_name("beta") is not None
    clock.now = 1030.0
    assert state.ban_of_name("beta") is None and state.active() == []
    clock.now = 1060.0
    assert state.muted_until("alpha") is None


def test_an_unmute_and_an_unban_lift_them() -> None:
    state = Moderation(FakeClock(0.0))
    state.apply("mute", "alpha", {"until_epoch": 100.0})
    state.apply("mute", "alpha", {"seconds": 0})
    state.apply("ban", "-", {"id": "b1", "address": "10.0.0.1"})
    state.apply("unban", "-", {"id": "b1"})
    assert state.muted_until("alpha") is None and state.ban_of_address("10.0.0.1") is None


def test_the_checkpoint_fold_rebuilds_mutes_and_bans_from_the_log() -> None:
    """What a restarted tracker enforces: room.json's state, then the events logged after it, in order."""
    start = Checkpoint("e1", 1, moderation=Moderation(FakeClock(0.0)).snapshot())
    entries = [
        LogEntry(2, "2026-12-02T00:00:00.000Z", "ban", "alpha", details(id="b1", reason="trolling")),
        LogEntry(3, "2026-12-02T00:00:00.000Z", "ban", "-", details(id="b2", address="10.0.0.0/8")),
        LogEntry(4, "2026-12-02T00:00:00.000Z", "unban", "-", details(id="b2")),
        LogEntry(5, "2026-12-02T00:00:00.000Z", "mute", "gamma", details(seconds=60, until_epoch=4e9)),
    ]
    folded = fold(start, lambda seq, limit: [e for e in entries if e.seq > seq][:limit], 5)
    state = Moderation(FakeClock(0.0))
    state.restore(folded.moderation)
    assert [(b.id, b.name, b.reason) for b in state.active()] == [("b1", "alpha", "trolling")]
    assert state.muted_until("gamma") == 4e9 and folded.seq == 5
