"""Faults during rotation on real trackers: SIGKILL at every step of it, and a full disk."""

from __future__ import annotations

import asyncio
import contextlib
import random
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from chat_tracker.storage.segments import list_segments
from support.bots import bots, open_bot
from support.campaign import FULL, error_lines, record
from support.disk import fill
from support.rotation import KILL_POINTS, LOAD_FLAGS, all_entries, collect, echo, file_lines, hooked, talk
from support.timing import UNIT
from support.tracker import PASSWORD, launch_tracker

pytestmark = pytest.mark.anyio

ROUNDS = 60 if FULL else 24  # 4 per kill point in the CI form


async def _kill_round(data_dir: Path, round_no: int, point: str, nth: int, compress: bool) -> int:
    """One tracker that SIGKILLs itself at ``point`` of its ``nth`` rotation under load; the messages seen.

    -1: it died before listening (its start line made chat.log rotate).
    """
    flags = ("--rotate-bytes", "2K", *LOAD_FLAGS) + (("--compress",) if compress else ())
    try:
        tracker = launch_tracker(data_dir, *flags, env=hooked({"TRACKER_TEST_KILL_AT": f"{point}:{nth}"}))
    except AssertionError as died:  # the start line itself made chat.log rotate, and the kill came then
        if "Traceback" in str(died):
            raise
        return -1
    seen: list[tuple[int, str]] = []
    try:
        # The kill may come while the members join: mid-handshake, the socket closes before any
        # HTTP answer (InvalidHandshake), or before the welcome (ConnectionClosed, OSError).
        with contextlib.suppress(ConnectionClosed, InvalidHandshake, OSError):
            async with bots(tracker.url, PASSWORD, [f"k{round_no}", f"w{round_no}"]) as (talker, watcher):
                listener = asyncio.create_task(collect(watcher, seen))
                await talk(talker, f"r{round_no}", 5000)  # until the tracker dies
                await asyncio.wait_for(listener, 4 * UNIT)
        status = await asyncio.to_thread(tracker.process.wait, 4 * UNIT)
    finally:
        tracker.kill()
    assert status == -9, f"round {round_no}: the tracker did not die at {point} ({status})"
    logged = {(e.seq, e.text) for e in all_entries(data_dir, torn_ok=True) if e.kind == "msg"}
    lost = set(seen) - logged
    assert not lost, f"round {round_no} ({point}:{nth}): {len(lost)} messages seen but not logged: {sorted(lost)[:3]}"
    return len(seen)


@pytest.mark.timeout((80 if FULL else 30) * UNIT)
async def test_sigkill_at_every_step_of_a_rotation_loses_nothing(tmp_path: Path) -> None:
    """SIGKILL between fsync and rename, rename and reopen, after reopen, mid-write, mid- and after compression."""
    data_dir = tmp_path / "data"
    rng = random.Random(20261201)
    seen, died_starting = 0, 0
    last_seq = 0
    for round_no in range(ROUNDS):
        point = KILL_POINTS[round_no % len(KILL_POINTS)]
        compress = "compress" in point or rng.random() < 0.3
        received = await _kill_round(data_dir, round_no, point, rng.randint(1, 3), compress)
        seen += max(received, 0)
        died_starting += received < 0
        entries = all_entries(data_dir, torn_ok=True)  # seq +1 per line over every file, this round included
        start = next((e for e in entries if e.kind == "start" and e.seq > last_seq), None)
        assert start is None or start.seq == last_seq + 1, f"round {round_no}: the restart did not continue"
        last_seq = entries[-1].seq
    final = launch_tracker(data_dir)  # the last round's crash is repaired too
    assert final.stop() == 0
    entries = all_entries(data_dir)  # strict: whole lines only, seq +1 over every file
    texts = [e.text for e in entries if e.kind == "msg"]
    assert len(texts) == len(set(texts)), "a message is logged twice"
    assert ROUNDS // 2 < [e.kind for e in entries].count("start") <= ROUNDS + 1  # some died starting
    assert not list(data_dir.glob("*.tmp"))
    record(
        "faults",
        fault="sigkill_during_rotation",
        injected=ROUNDS,
        lost=0,
        torn_left=0,
        received=seen,
        died_starting=died_starting,
        logged=len(texts),
        segments=len(list_segments(data_dir)),
    )


async def test_disk_full_during_rotation(small_disk: Path) -> None:
    """The first write into a fresh chat.log hits ENOSPC: refused, no torn line, written once space returns."""
    # 4096 bytes is one tmpfs page: a segment never needs a second page, so the disk fills up
    # exactly when a rotation opens a fresh chat.log and writes its first line.
    tracker = launch_tracker(small_disk, "--rotate-bytes", "4096", "--compress", *LOAD_FLAGS)
    try:
        alpha = await open_bot(tracker.url, PASSWORD, "alpha")
        beta = await open_bot(tracker.url, PASSWORD, "beta")
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
        await echo(alpha, "after recovery")
        await alpha.ws.close()
        await beta.ws.close()
        assert tracker.stop() == 0
    finally:
        tracker.kill()
    entries = all_entries(small_disk)
    texts = [e.text for e in entries if e.kind == "msg"]
    assert texts == [*delivered, pending, "after recovery"]
    assert not [line for line in error_lines(tracker.output) if "Cannot write chat.log" not in line]
    record("faults", fault="disk_full_during_rotation", injected=1, lost=0, torn_left=0)
