"""Redis restarted empty while chat.log is ahead of the replica that opens the new room: its seqs start above chat.log.

Replica B is frozen (SIGSTOP) while ann chats on replica A, so B's idea of the room's last
seq falls behind what the archiver wrote. A stops, the archiver is frozen too, Redis is wiped,
and B runs again before the archiver: B is the one to open the new room, and all it knows
itself is a seq below chat.log's last. The room must still start above chat.log (the archiver
writes its ``archived`` back as soon as it reconnects, and B waits for it): otherwise the
archiver refuses the new room's events, whose seqs chat.log already holds, and bob's
acknowledged message is lost. The independent checker holds bob and ann against chat.log.
"""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from chat_protocol import CloseCode
from chat_tracker.journal.redis_keys import Keys
from support.archiver import StartArchiver
from support.checked_member import CheckedMember, read_chat_log
from support.checker import check
from support.redis_room import archived_seq, room_seq, say_and_hear, until
from support.redis_server import RedisServer
from support.replicas import replicas
from support.timing import UNIT
from support.tracker import RunningTracker, StartTracker

pytestmark = pytest.mark.anyio

KEYS = Keys()
AHEAD = 20  # messages ann says while B is frozen: chat.log gets this far ahead of B
REPLICA_FLAGS = ("--resume-grace", "60", "--rate", "200", "--burst", "200")  # no reaping while B is frozen
SEED = int(os.environ.get("RELIABILITY_SEED", "24"))  # nothing here is random: the seed only names the run


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def chat_log_ahead_of(
    server: RedisServer, archiver: RunningTracker, a: RunningTracker, b: RunningTracker, ann: CheckedMember
) -> int:
    """B frozen, ann chats on A, A stops; once the archiver has everything, chat.log's last seq (B is behind it)."""
    os.kill(b.process.pid, signal.SIGSTOP)
    for number in range(AHEAD):
        await ann.say(f"ahead {number}")
    await say_and_hear(ann, "ahead end")
    assert a.stop() == 0
    await until(lambda: not ann.connected, "ann closed by A's stop")
    await until(lambda: archived_seq(archiver) == room_seq(server) > 0, "the archiver to catch up")
    return archived_seq(archiver)


@pytest.mark.timeout(20 * UNIT)
async def test_a_room_opened_after_a_wipe_by_a_replica_behind_chat_log_starts_above_chat_log(
    redis_server: RedisServer, start_tracker: StartTracker, start_archiver: StartArchiver
) -> None:
    """B, behind chat.log, opens the room after the wipe before the archiver is back: bob's next message still gets a
    seq above chat.log's last, is archived, and the checker finds nothing lost, missed or forged."""
    archiver = start_archiver(redis_server.url)
    a, b = replicas(start_tracker, redis_server, 2, *REPLICA_FLAGS)
    ann, bob = CheckedMember("ann"), CheckedMember("bob")
    assert (await ann.join(a.url))["type"] == "welcome"
    assert (await bob.join(b.url))["type"] == "welcome"
    before = await say_and_hear(ann, "before")
    await until(lambda: bob.last_seq >= before, "bob hears 'before'")
    held = await chat_log_ahead_of(redis_server, archiver, a, b, ann)
    assert bob.last_seq < held, "B fell behind chat.log"

    os.kill(archiver.process.pid, signal.SIGSTOP)
    try:
        redis_server.wipe()
        redis_server.start()
        os.kill(b.process.pid, signal.SIGCONT)
        await asyncio.to_thread(b.wait_for_output, r"Redis lost the room", 4 * UNIT)  # B is first to notice
    finally:
        os.kill(b.process.pid, signal.SIGCONT)
        os.kill(archiver.process.pid, signal.SIGCONT)
    await until(lambda: not bob.connected, "bob closed by the new epoch")
    assert bob.close_codes == [CloseCode.SERVICE_RESTART], bob.close_codes
    answer = await bob.resume(b.url)
    assert answer["type"] == "resumed" and answer["recovered"] is False, answer
    after = await say_and_hear(bob, "after the wipe")
    assert after > held, f"the new room gave bob's message seq {after}, which chat.log (up to {held}) already holds"
    bob.owe_until(after)
    await until(lambda: archived_seq(archiver) >= after, "the archiver to write bob's message")
    entries = read_chat_log(archiver.data_dir)
    assert [(e.seq, e.name, e.text) for e in entries if e.seq == after] == [(after, "bob", "after the wipe")]
    check(entries, [ann.record(), bob.record()], seed=SEED)  # a regression test: not a counted fault figure
    await bob.close()
