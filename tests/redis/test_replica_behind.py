"""A replica frozen (SIGSTOP) longer than the archiver keeps events in Redis never leaves its members a silent gap.

While replica B is stopped, members on replica A chat more than ``--keep-in-redis``
events and the archiver trims the stream past B's position. Once B runs again it
reads a stream with a hole where its members' events were: it must close them with
1012 (a code clients reconnect on), and their resume must answer ``recovered: false``
with exactly the range B skipped. Checked by the independent checker (``support.checker``)
against chat.log as the archiver wrote it: every event a member received is chat.log's
event of that seq, every acknowledged message is logged once, and every member event from
its join to the last fence was either received or announced ``gone``.
"""

from __future__ import annotations

import os
import re
import signal
from typing import Any

import pytest

from chat_protocol import CloseCode
from chat_tracker.journal.redis_keys import Keys, seq_of
from support.archiver import StartArchiver
from support.checked_member import CheckedMember, judge, read_chat_log_counting_torn
from support.checker import MEMBER_KINDS
from support.redis_room import archived_seq, room_seq, say_and_hear, until
from support.redis_server import RedisServer
from support.replicas import replicas
from support.timing import UNIT
from support.tracker import StartTracker

pytestmark = pytest.mark.anyio

KEYS = Keys()
KEEP_IN_REDIS = 10
WHILE_FROZEN = 60  # messages said on A while B is stopped: far more than the stream keeps
REPLICA_FLAGS = ("--resume-grace", "60", "--rate", "200", "--burst", "200")  # no reaping while B is stopped
SKIPPED = re.compile(r"events (\d+)-(\d+) were trimmed from the stream")
SEED = int(os.environ.get("RELIABILITY_SEED", "24"))  # nothing here is random: the seed only names the run


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def first_in_stream(server: RedisServer) -> int:
    """The seq of the oldest entry still in the stream (0 if it is empty)."""
    with server.client() as client:
        entries: Any = client.xrange(KEYS.events, min="-", max="+", count=1)
    return seq_of(entries[0][0])[0] if entries else 0


@pytest.mark.timeout(40 * UNIT)
async def test_a_replica_frozen_past_the_trimmed_stream_closes_its_members_to_resume_told_what_is_gone(
    redis_server: RedisServer, start_tracker: StartTracker, start_archiver: StartArchiver
) -> None:
    """B SIGSTOPped while A chats past --keep-in-redis; after SIGCONT B's member is closed with 1012, and its resume
    answers recovered: false with exactly the seqs B skipped; what it received plus that range is all of chat.log."""
    archiver = start_archiver(redis_server.url, "--keep-in-redis", str(KEEP_IN_REDIS))
    a, b = replicas(start_tracker, redis_server, 2, *REPLICA_FLAGS)
    ann, bob = CheckedMember("ann"), CheckedMember("bob")
    assert (await ann.join(a.url))["type"] == "welcome"
    assert (await bob.join(b.url))["type"] == "welcome"
    before = await say_and_hear(ann, "before")
    await until(lambda: bob.last_seq >= before, "bob hears 'before'")
    freezes = 0
    os.kill(b.process.pid, signal.SIGSTOP)
    freezes += 1
    try:
        await say_and_hear(ann, "frozen 0")  # alone in B's pending read: the rest comes after it
        for number in range(1, WHILE_FROZEN + 1):
            await ann.say(f"frozen {number}")
        last = await say_and_hear(ann, "frozen end")
        await until(lambda: archived_seq(archiver) >= last, "the archiver to archive what A said")
        await until(lambda: first_in_stream(redis_server) > last - KEEP_IN_REDIS - 5, "the stream trimmed past B")
    finally:
        os.kill(b.process.pid, signal.SIGCONT)
    await until(lambda: not bob.connected, "bob closed")
    assert bob.close_codes == [CloseCode.SERVICE_RESTART], bob.close_codes
    line = b.wait_for_output(SKIPPED.pattern, 2 * UNIT)
    match = SKIPPED.search(line)
    assert match is not None
    skipped = (int(match[1]), int(match[2]))
    after = bob.last_seq
    assert skipped == (after + 1, skipped[1]) and skipped[1] >= after + 1, (skipped, after)

    answer = await bob.resume(b.url)
    assert answer["type"] == "resumed", answer
    assert (answer["recovered"], answer["gone"]) == (False, list(skipped)), answer
    end = await say_and_hear(ann, "after the gap")
    await until(lambda: bob.last_seq >= end, "bob hears 'after the gap'")
    for member in (ann, bob):
        member.owe_until(end)  # both waited for it: every event up to it is owed, received or announced gone
    await until(lambda: archived_seq(archiver) >= room_seq(redis_server) >= end, "everything archived")

    entries, torn = read_chat_log_counting_torn(archiver.data_dir)
    seqs = {entry.seq for entry in entries}
    log_gaps = max(seqs) - min(seqs) + 1 - len(seqs)
    gone = skipped[1] - skipped[0] + 1
    counts = judge(
        "replica_frozen_past_trim", freezes, entries, torn, [ann, bob], seed=SEED, skipped=gone, log_gaps=log_gaps
    )
    assert log_gaps == 0 and [e.seq for e in entries] == list(range(1, entries[-1].seq + 1)), "chat.log is not seq +1"
    # Owed and not received is counted as announced; received though announced gone would not show: it must not be.
    told_gone = [e.seq for e in entries if e.kind in MEMBER_KINDS and skipped[0] <= e.seq <= skipped[1]]
    assert counts.gaps_announced == len(told_gone), (counts, told_gone)
    await ann.close()
    await bob.close()
    print(f"replica behind: skipped {skipped}, told gone {answer['gone']}, {counts}")
