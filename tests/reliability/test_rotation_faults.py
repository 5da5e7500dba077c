"""Faults during rotation on real trackers: SIGKILL at every step of it, and a full disk."""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from chat_tracker.storage.segments import list_segments
from support.campaign import FULL, error_lines, record
from support.checked_member import CheckedMember
from support.checker import Counts, check
from support.disk import fill
from support.member_records import open_recording, run_seed, torn_lines, verdict
from support.rotation import KILL_POINTS, LOAD_FLAGS, all_entries, echo, file_lines, hooked, segment_files
from support.timing import UNIT
from support.tracker import PASSWORD, launch_tracker

pytestmark = pytest.mark.anyio

ROUNDS = 60 if FULL else 24  # 4 per kill point in the CI form
SEED = run_seed(20261201)


@dataclass
class KillRound:
    """What one round counted: the checker's counts, the watcher's messages, or -1 if it died starting."""

    counts: Counts
    received: int
    violation: str | None = None


async def _talk_until_killed(talker: CheckedMember, prefix: str) -> None:
    """Messages with ids, lengths cycling every 97, until the tracker dies (the kill point comes first)."""
    with contextlib.suppress(ConnectionClosed):
        for index in range(5000):
            await talker.say(f"{prefix} {index} " + "y" * (index % 97))


async def _members_until_killed(url: str, round_no: int) -> list[CheckedMember]:
    """A talker and a watcher on ``url`` until the tracker kills itself; the members that got in."""
    talker, watcher = CheckedMember(f"k{round_no}"), CheckedMember(f"w{round_no}")
    # The kill may come while the members join: mid-handshake, the socket closes before any
    # HTTP answer (InvalidHandshake), or before the welcome (ConnectionClosed, OSError, TimeoutError).
    with contextlib.suppress(ConnectionClosed, InvalidHandshake, OSError, TimeoutError):
        for member in (talker, watcher):
            assert (await member.join(url))["type"] == "welcome"
        await _talk_until_killed(talker, f"r{round_no}")
        assert watcher.reader is not None
        await asyncio.wait_for(watcher.reader, 4 * UNIT)  # its connection dies with the tracker
    joined = [member for member in (talker, watcher) if member.stints]
    await asyncio.gather(*(member.close() for member in joined))
    return joined


async def _kill_round(data_dir: Path, round_no: int, point: str, nth: int, compress: bool) -> KillRound:
    """One tracker that SIGKILLs itself at ``point`` of its ``nth`` rotation under load, checked against chat.log."""
    flags = ("--rotate-bytes", "2K", *LOAD_FLAGS) + (("--compress",) if compress else ())
    try:
        tracker = launch_tracker(data_dir, *flags, env=hooked({"TRACKER_TEST_KILL_AT": f"{point}:{nth}"}))
    except AssertionError as died:  # the start line itself made chat.log rotate, and the kill came then
        if "Traceback" in str(died):
            raise
        return KillRound(Counts(), -1)
    try:
        members = await _members_until_killed(tracker.url, round_no)
        status = await asyncio.to_thread(tracker.process.wait, 4 * UNIT)
    finally:
        tracker.kill()
    assert status == -9, f"round {round_no}: the tracker did not die at {point} ({status})"
    entries = all_entries(data_dir, torn_ok=True)
    starts = [index for index, entry in enumerate(entries) if entry.kind == "start"]
    entries = entries[starts[-1] :]  # this round's tracker's lines
    counts, violation = verdict(entries, [member.record() for member in members], SEED)
    watched = [seen for m in members if m.name.startswith("w") for s in m.stints for seen in s.received]
    result = KillRound(counts, sum(seen.kind == "msg" for seen in watched))
    if violation is not None:
        result.violation = f"round {round_no} ({point}:{nth}): {violation}"
    return result


@pytest.mark.timeout((80 if FULL else 30) * UNIT)
async def test_sigkill_at_every_step_of_a_rotation_loses_nothing(tmp_path: Path) -> None:
    """SIGKILL between fsync and rename, rename and reopen, after reopen, mid-write, mid- and after compression."""
    print(f"RELIABILITY_SEED={SEED} replays these rounds")  # pytest shows it when the test fails
    data_dir = tmp_path / "data"
    rng = random.Random(SEED)
    rounds: list[KillRound] = []
    last_seq = 0
    for round_no in range(ROUNDS):
        point = KILL_POINTS[round_no % len(KILL_POINTS)]
        compress = "compress" in point or rng.random() < 0.3
        rounds.append(await _kill_round(data_dir, round_no, point, rng.randint(1, 3), compress))
        entries = all_entries(data_dir, torn_ok=True)  # seq +1 per line over every file, this round included
        start = next((e for e in entries if e.kind == "start" and e.seq > last_seq), None)
        assert start is None or start.seq == last_seq + 1, (
            f"round {round_no} (seed {SEED}): the restart did not continue"
        )
        last_seq = entries[-1].seq
    final = launch_tracker(data_dir)  # the last round's crash is repaired too
    assert final.stop() == 0
    counts = Counts()
    for result in rounds:
        counts = counts.add(result.counts)
    logged = [line for path in segment_files(data_dir) for line in file_lines(path, torn_ok=True) if " msg " in line]
    record(
        "faults",
        fault="sigkill_during_rotation",
        seed=SEED,
        injected=len(rounds),
        kills=len(rounds),
        torn_left=torn_lines(*segment_files(data_dir)),
        received=sum(max(r.received, 0) for r in rounds),
        died_starting=sum(r.received < 0 for r in rounds),
        logged=len(logged),
        segments=len(list_segments(data_dir)),
        **counts.as_figures(),
    )
    violations = [r.violation for r in rounds if r.violation is not None]
    assert not violations, f"{len(violations)} rounds differ from chat.log; the first: {violations[0]}"
    entries = all_entries(data_dir)  # strict: whole lines only, seq +1 over every file
    texts = [e.text for e in entries if e.kind == "msg"]
    assert len(texts) == len(set(texts)), "a message is logged twice"
    assert ROUNDS // 2 < [e.kind for e in entries].count("start") <= ROUNDS + 1  # some died starting
    assert not list(data_dir.glob("*.tmp"))


async def test_disk_full_during_rotation(small_disk: Path) -> None:
    """The first write into a fresh chat.log hits ENOSPC: refused, no torn line, written once space returns."""
    # 4096 bytes is one tmpfs page: a segment never needs a second page, so the disk fills up
    # exactly when a rotation opens a fresh chat.log and writes its first line.
    tracker = launch_tracker(small_disk, "--rotate-bytes", "4096", "--compress", *LOAD_FLAGS)
    try:
        alpha = await open_recording(tracker.url, PASSWORD, "alpha")
        beta = await open_recording(tracker.url, PASSWORD, "beta")
        delivered = [(await echo(alpha, f"warm-up {index} " + "w" * 300))["text"] for index in range(30)]
        await asyncio.to_thread(tracker.wait_for_output, "Compressed chat.log")
        filler = fill(small_disk)
        rotated_before = sum("Rotated chat.log" in line for line in tracker.output)
        pending = None
        for index in range(40):
            text = f"while filling {index} " + "f" * 300
            await alpha.say(text)
            try:
                while True:
                    message = await alpha.recv(0.3 * UNIT)  # no echo by then: the disk is full
                    if message["type"] == "message" and message["text"] == text:
                        delivered.append(text)
                        break
            except TimeoutError:
                pending = text
                break
        assert pending is not None, "the disk never filled"
        await asyncio.to_thread(tracker.wait_for_output, "Cannot write chat.log")
        assert sum("Rotated chat.log" in line for line in tracker.output) == rotated_before + 1
        for path in [s.path for s in list_segments(small_disk)] + [small_disk / "chat.log"]:
            file_lines(path)  # whole lines only, in every file
        await alpha.say("while full")
        assert (await alpha.expect("error"))["code"] == "log_unavailable"
        filler.unlink()
        await asyncio.to_thread(tracker.wait_for_output, "chat.log is writable again", 3 * UNIT)
        for bot in (alpha, beta):
            texts: list[str] = []
            while pending not in texts:
                message = await bot.recv(2 * UNIT)
                if message["type"] == "message":
                    texts.append(message["text"])
            assert texts.count(pending) == 1
        fence = await echo(alpha, "after recovery")
        await alpha.ws.close()
        await beta.ws.close()
        assert tracker.stop() == 0
    finally:
        tracker.kill()
    records = [alpha.record(until=fence["seq"]), beta.record()]  # beta read up to the pending message
    counts = check(all_entries(small_disk, torn_ok=True), records, strict=False)
    refused = [e for bot in (alpha, beta) for e in bot.frames.errors if e["code"] == "log_unavailable"]
    record(
        "faults",
        fault="disk_full_during_rotation",
        injected=1,
        torn_left=torn_lines(*segment_files(small_disk)),
        refused_while_full=len(refused),
        **counts.as_figures(),
    )
    entries = all_entries(small_disk)
    check(entries, records)
    texts = [e.text for e in entries if e.kind == "msg"]
    assert texts == [*delivered, pending, "after recovery"]
    assert not [line for line in error_lines(tracker.output) if "Cannot write chat.log" not in line]
