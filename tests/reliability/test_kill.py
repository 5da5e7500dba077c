"""SIGKILL under load, round after round: nothing anyone saw is lost, nothing is torn or doubled.

The kill points are random: RELIABILITY_SEED=N replays the rounds of a failed run (its seed is
printed, and named by the checker).
"""

from __future__ import annotations

import asyncio
import random
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from chat_tracker.storage.chatlog import parse_line
from support.campaign import FULL, check_log_file, record
from support.checked_member import CheckedMember
from support.checker import Counts
from support.member_records import run_seed, torn_lines, verdict
from support.timing import UNIT
from support.tracker import launch_tracker

pytestmark = [pytest.mark.anyio, pytest.mark.long]

ROUNDS = 100 if FULL else 20
TALKERS, LISTENERS = 3, 2
LOAD_FLAGS = ("--rate", "100000", "--burst", "100000", "--queue-size", "100000")
SEED = run_seed(20261124)
TORN_EVERY = 5  # now and then a crash mid-line, as a power cut would leave it


@dataclass
class KillSwitch(CheckedMember):
    """The listener whose ``kill_after``-th message received sets ``kill``: the kill point."""

    kill_after: int = 0
    kill: asyncio.Event = field(default_factory=asyncio.Event)
    messages: int = 0

    def note(self, message: dict[str, Any]) -> None:
        super().note(message)
        if message["type"] == "message":
            self.messages += 1
            if self.messages >= self.kill_after > 0:
                self.kill.set()


@dataclass
class Round:
    """What one round counted, and the checker's verdict on it (None: no violation)."""

    counts: Counts
    sent: int
    received: int
    distinct_received: int
    logged: int
    torn_found: int
    torn_added: int
    last_seq: int
    violation: str | None


async def _talk(member: CheckedMember, prefix: str, count: int) -> int:
    """Numbered messages of varying length (with ids), as fast as the socket takes them, until it dies."""
    sent = 0
    try:
        for index in range(count):
            await member.say(f"{prefix} {index} " + "x" * (index % 300))
            sent += 1
    except ConnectionClosed:
        pass
    return sent


def _whole_lines(path: Path) -> list[str]:
    """chat.log's complete lines; a torn tail (SIGKILL mid-write) is tolerated here and repaired at restart."""
    data = path.read_bytes()
    return data[: data.rfind(b"\n") + 1].decode("utf-8").splitlines()


async def _killed_under_load(data_dir: Path, round_no: int, kill_after: int) -> tuple[list[CheckedMember], int]:
    """One tracker SIGKILLed once the last listener got ``kill_after`` messages: its members, and how many were sent."""
    tracker = launch_tracker(data_dir, *LOAD_FLAGS)
    names = [f"t{round_no}x{i}" for i in range(TALKERS)] + [f"l{round_no}x{i}" for i in range(LISTENERS - 1)]
    switch = KillSwitch(f"l{round_no}x{LISTENERS - 1}", kill_after=kill_after)
    members = [*(CheckedMember(name) for name in names), switch]
    try:
        for member in members:
            assert (await member.join(tracker.url))["type"] == "welcome"
        talkers = [asyncio.create_task(_talk(m, f"r{round_no} {m.name}", 5000)) for m in members[:TALKERS]]
        await asyncio.wait_for(switch.kill.wait(), 6 * UNIT)
        tracker.process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(tracker.process.wait, UNIT)
        sent = sum(await asyncio.gather(*talkers))
        await asyncio.gather(*(member.close() for member in members))
    finally:
        tracker.kill()
    return members, sent


async def _one_round(data_dir: Path, round_no: int, rng: random.Random) -> Round:
    members, sent = await _killed_under_load(data_dir, round_no, rng.randrange(1, 1500))
    log_path = data_dir / "chat.log"
    lines = _whole_lines(log_path)
    entries = [parse_line(line) for line in lines]
    starts = [index for index, entry in enumerate(entries) if entry.kind == "start"]
    counts, violation = verdict(entries[starts[-1] :], [m.record() for m in members], SEED)  # this round's lines
    received = [seen for m in members for stint in m.stints for seen in stint.received if seen.kind == "msg"]
    sent_texts = {text for m in members for text in m.sent.values()}
    whole = [seen for seen in received if seen.text in sent_texts]  # exactly what a talker sent, not a piece
    assert len(whole) == len(received), f"round {round_no} (seed {SEED}): a message arrived changed"
    logged = [e for e in entries if e.kind == "msg" and e.text.startswith(f"r{round_no} ")]
    torn_found = int(log_path.stat().st_size > sum(len(line.encode()) + 1 for line in lines))
    torn_added = int(round_no % TORN_EVERY == TORN_EVERY - 1 and not torn_found)
    if torn_added:
        with log_path.open("ab") as file:
            file.write(f"{entries[-1].seq + 1} 2026-01-01T00:00:00.000Z msg ghost half a li".encode())
    distinct = {(seen.seq, seen.text) for seen in received}
    return Round(
        counts, sent, len(received), len(distinct), len(logged), torn_found, torn_added, entries[-1].seq, violation
    )


@pytest.mark.timeout((180 if FULL else 48) * UNIT)
async def test_sigkill_rounds_under_load_lose_nothing_seen(tmp_path: Path) -> None:
    """20 SIGKILLs mid-burst: every message any member received is in chat.log once and whole; restart repairs."""
    print(f"RELIABILITY_SEED={SEED} replays these rounds")  # pytest shows it when the test fails
    data_dir = tmp_path / "data"
    rng = random.Random(SEED)
    rounds: list[Round] = []
    for round_no in range(ROUNDS):
        result = await _one_round(data_dir, round_no, rng)
        previous_last_seq = rounds[-1].last_seq if rounds else 0
        lines = _whole_lines(data_dir / "chat.log")
        first_of_round = next(
            entry for entry in map(parse_line, lines) if entry.kind == "start" and entry.seq > previous_last_seq
        )
        assert first_of_round.seq == previous_last_seq + 1, f"round {round_no} (seed {SEED}): the sequence broke"
        rounds.append(result)
    final = launch_tracker(data_dir)  # the last round's tail is repaired too
    try:
        assert final.stop() == 0
    finally:
        final.kill()
    counts = Counts()
    for result in rounds:
        counts = counts.add(result.counts)
    kills, torn_added = len(rounds), sum(r.torn_added for r in rounds)
    record(
        "faults",
        fault="sigkill",
        seed=SEED,
        injected=kills + torn_added,
        kills=kills,
        torn_found=sum(r.torn_found for r in rounds),
        torn_added=torn_added,
        torn_tails=sum(r.torn_found + r.torn_added for r in rounds),
        torn_left=torn_lines(data_dir / "chat.log"),
        sent=sum(r.sent for r in rounds),
        received=sum(r.received for r in rounds),
        distinct_received=sum(r.distinct_received for r in rounds),
        logged=sum(r.logged for r in rounds),
        **counts.as_figures(),
    )
    violations = [f"round {n}: {r.violation}" for n, r in enumerate(rounds) if r.violation is not None]
    assert not violations, f"{len(violations)} rounds differ from chat.log; the first: {violations[0]}"
    entries = check_log_file(data_dir / "chat.log")
    texts = [e.text for e in entries if e.kind == "msg"]
    assert len(texts) == len(set(texts)) == sum(r.logged for r in rounds)
    assert [e.kind for e in entries].count("start") == ROUNDS + 1
