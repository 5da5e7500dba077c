"""SIGKILL under load, round after round: nothing anyone saw is lost, nothing is torn or doubled."""

from __future__ import annotations

import asyncio
import json
import random
import signal
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from chat_tracker.storage.chatlog import parse_line
from support.bots import Bot, bots, talk
from support.campaign import FULL, check_log_file, record
from support.timing import UNIT
from support.tracker import PASSWORD, launch_tracker

pytestmark = [pytest.mark.anyio, pytest.mark.long]

ROUNDS = 100 if FULL else 20
TALKERS, LISTENERS = 3, 2
LOAD_FLAGS = ("--rate", "100000", "--burst", "100000", "--queue-size", "100000")


async def _listen(bot: Bot, seen: list[tuple[int, str]], kill_after: int | None, kill: asyncio.Event) -> None:
    """Record every chat message received until the connection dies."""
    try:
        async for frame in bot.ws:
            message = json.loads(frame)
            if message["type"] == "message":
                seen.append((message["seq"], message["text"]))
                if kill_after is not None and len(seen) >= kill_after:
                    kill.set()
    except ConnectionClosed:
        pass


def _whole_lines(path: Path) -> list[str]:
    """chat.log's complete lines; a torn tail (SIGKILL mid-write) is tolerated here and repaired at restart."""
    data = path.read_bytes()
    return data[: data.rfind(b"\n") + 1].decode("utf-8").splitlines()


async def _one_round(data_dir: Path, round_no: int, rng: random.Random) -> dict[str, int]:
    tracker = launch_tracker(data_dir, *LOAD_FLAGS)
    try:
        names = [f"t{round_no}x{i}" for i in range(TALKERS)] + [f"l{round_no}x{i}" for i in range(LISTENERS)]
        async with bots(tracker.url, PASSWORD, names) as members:
            kill = asyncio.Event()
            seen: list[list[tuple[int, str]]] = [[] for _ in members]
            kill_after = rng.randrange(1, 1500)
            listeners = [
                asyncio.create_task(_listen(m, seen[i], kill_after if i == len(members) - 1 else None, kill))
                for i, m in enumerate(members)
            ]
            talkers = [asyncio.create_task(talk(m, f"r{round_no} {m.name}", 5000)) for m in members[:TALKERS]]
            await asyncio.wait_for(kill.wait(), 6 * UNIT)
            tracker.process.send_signal(signal.SIGKILL)
            await asyncio.to_thread(tracker.process.wait, UNIT)
            sent = sum(await asyncio.gather(*talkers))
            await asyncio.wait_for(asyncio.gather(*listeners), UNIT)
    finally:
        tracker.kill()
    lines = _whole_lines(tracker.log_path)
    entries = [parse_line(line) for line in lines]
    logged = [(e.seq, e.text) for e in entries if e.kind == "msg" and e.text.startswith(f"r{round_no} ")]
    logged_set = set(logged)
    received = {pair for member_seen in seen for pair in member_seen}
    lost = received - logged_set
    assert not lost, f"round {round_no}: {len(lost)} received messages missing from chat.log, e.g. {sorted(lost)[:3]}"
    texts = [text for _, text in logged]
    assert len(texts) == len(set(texts)), f"round {round_no}: a message is in chat.log twice"
    for _seq, text in received:  # whole: exactly what a talker sent
        prefix, _, tail = text.rpartition(" ")
        index = int(prefix.split(" ")[2])
        assert tail == "x" * (index % 300) or (index % 300 == 0 and text.endswith(" ")), text
    torn = tracker.log_path.stat().st_size - sum(len(line.encode()) + 1 for line in lines)
    if round_no % 5 == 4 and torn == 0:  # now and then a crash mid-line, as a power cut would leave it
        with tracker.log_path.open("ab") as file:
            file.write(f"{entries[-1].seq + 1} 2026-01-01T00:00:00.000Z msg ghost half a li".encode())
        torn = 1
    return {
        "sent": sent,
        "received": sum(len(s) for s in seen),
        "distinct_received": len(received),
        "logged": len(logged),
        "torn_tails": int(torn > 0),
        "last_seq": entries[-1].seq,
    }


@pytest.mark.timeout((180 if FULL else 48) * UNIT)
async def test_sigkill_rounds_under_load_lose_nothing_seen(tmp_path: Path) -> None:
    """20 SIGKILLs mid-burst: every message any member received is in chat.log once and whole; restart repairs."""
    data_dir = tmp_path / "data"
    rng = random.Random(20261124)
    totals = {"rounds": 0, "sent": 0, "received": 0, "distinct_received": 0, "logged": 0, "torn_tails": 0}
    previous_last_seq = 0
    for round_no in range(ROUNDS):
        result = await _one_round(data_dir, round_no, rng)
        lines = _whole_lines(data_dir / "chat.log")
        first_of_round = next(
            parse_line(line)
            for line in lines
            if parse_line(line).kind == "start" and parse_line(line).seq > previous_last_seq
        )
        assert first_of_round.seq == previous_last_seq + 1, "restart did not continue the sequence"
        previous_last_seq = result.pop("last_seq")
        totals["rounds"] += 1
        for key, value in result.items():
            totals[key] += value
    final = launch_tracker(data_dir)  # the last round's tail is repaired too
    try:
        assert final.stop() == 0
    finally:
        final.kill()
    entries = check_log_file(data_dir / "chat.log")
    texts = [e.text for e in entries if e.kind == "msg"]
    assert len(texts) == len(set(texts)) == totals["logged"]
    assert [e.kind for e in entries].count("start") == ROUNDS + 1
    record(
        "faults",
        fault="sigkill",
        injected=totals["rounds"] + totals["torn_tails"],
        lost=0,
        torn_left=0,
        **{k: v for k, v in totals.items() if k != "rounds"},
        kills=totals["rounds"],
    )
