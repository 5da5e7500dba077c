"""What a room keeps in memory once events are delivered: a small room's ring, and presence events' fields alone."""

from __future__ import annotations

from collections import deque
from pathlib import Path

from chat_protocol import Welcome
from chat_tracker.core.dialects import JSON, PLAIN
from chat_tracker.core.events import JOIN, LEAVE, MESSAGE, Event
from chat_tracker.core.outbox import Outbox
from chat_tracker.core.signin import AccountChecked, Verdict
from chat_tracker.journal.recent import RecentEvents
from support.roomkit import Inbox, RoomKit


def _events(first: int, count: int) -> list[Event]:
    return [Event(seq, 1_795_485_040.0 + seq, MESSAGE, "alpha", f"m{seq}") for seq in range(first, first + count)]


def _kept(recent: RecentEvents) -> tuple[type, list[int]]:
    return type(recent.events), [event.seq for event in recent.events]


def test_recent_events_are_a_list_until_full_then_keep_the_newest() -> None:
    recent = RecentEvents(4)
    recent.extend(_events(1, 3))
    assert _kept(recent) == (list, [1, 2, 3])
    recent.extend(_events(4, 3))
    assert _kept(recent) == (deque, [3, 4, 5, 6])
    recent.extend(_events(7, 1))
    assert _kept(recent) == (deque, [4, 5, 6, 7])
    recent.clear()
    assert _kept(recent) == (list, [])
    recent.extend(_events(8, 2))
    assert _kept(recent) == (list, [8, 9])


def test_recent_events_of_size_zero_keep_nothing() -> None:
    recent = RecentEvents(0)
    recent.extend(_events(1, 2))
    assert list(recent.events) == []


def test_a_small_rooms_ring_is_a_short_list(tmp_path: Path) -> None:
    """Five joins in a room that may keep 10,000 events: a list of five, not a 64-slot deque block."""
    kit = RoomKit.create(tmp_path)
    for name in ("a1", "a2", "a3", "a4", "a5"):
        kit.join(name)
    kit.flush()
    assert type(kit.journal.recent) is list and len(kit.journal.recent) == 5


def test_delivered_joins_and_leaves_keep_their_fields_and_render_again_alike(tmp_path: Path) -> None:
    """Once delivered, a join holds no member list and no frames; a message keeps its frames for replays."""
    kit = RoomKit.create(tmp_path)
    alpha = kit.join("alpha")
    watcher = kit.join("watcher", PLAIN)
    kit.flush()
    beta = kit.join("beta")
    kit.room.say(alpha, "hello")
    kit.room.leave(beta, "exit")
    kit.flush()
    join, message, leave = list(kit.journal.recent)[-3:]
    assert (join.kind, message.kind, leave.kind) == (JOIN, MESSAGE, LEAVE)
    for presence in (join, leave):
        assert presence.members == ()
        assert (presence._ts, presence._json, presence._plain, presence._json_wire, presence._plain_wire) == (
            None,
            None,
            None,
            None,
            None,
        )
    assert message._json is not None  # a replay to many resuming members shares it
    # What the members received then is what the same events render to now.
    events = (join, message, leave)
    assert kit.inbox(alpha).frames[-3:] == [JSON.shared(event) for event in events]
    assert kit.inbox(watcher).frames[-3:] == [PLAIN.shared(event) for event in events]


def test_a_welcomes_own_fields_are_let_go_once_it_is_out(tmp_path: Path) -> None:
    """A registered member's catch-up point and device token reach her welcome, then the member keeps neither.

    A guest never holds them at all: a member of three rooms would otherwise keep five empty slots in each.
    """
    kit = RoomKit.create(tmp_path)
    guest = kit.join("guest")
    kit.flush()
    kit.room.say(guest, "before she comes back")
    kit.flush()
    signed_in = AccountChecked(Verdict.SIGNED_IN, "alpha", read=1, device="d1", device_token="next-token")
    alpha = kit.room.join("alpha", JSON, Outbox(100), "127.0.0.1", None, signed_in)
    kit.inboxes["alpha"] = Inbox()
    assert alpha.welcoming is not None and alpha.catch_up_after == 1 and alpha.device_token == "next-token"
    kit.flush()
    (welcome,) = [m for m in kit.received(alpha) if isinstance(m, Welcome)]
    assert (welcome.registered, welcome.read, welcome.unread) == (True, 1, 1)  # the one message she missed
    assert (welcome.device, welcome.device_token) == ("d1", "next-token")
    assert alpha.welcoming is None and alpha.catch_up_after is None and alpha.device_token is None
    assert alpha.device_id == "d1" and alpha.registered  # what the connection goes on using stays
    assert guest.welcoming is None
    beta = kit.room.join("beta", JSON, Outbox(100), "127.0.0.1", None, AccountChecked(Verdict.SIGNED_IN, "beta"))
    assert beta.registered and beta.welcoming is None  # nothing to catch up on, no device: nothing kept
