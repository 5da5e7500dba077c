"""Members that die, freeze or vanish: exactly one leave notice each, in time, nobody else delayed."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from support.bots import Bot
from support.campaign import check_log_file, record, require_root_tool
from support.checker import MemberRecord, check
from support.member_records import RecordingBot, open_recording, torn_lines, whole_entries
from support.process import Process
from support.timing import UNIT
from support.tracker import PASSWORD, RunningTracker

pytestmark = pytest.mark.anyio
HERE = Path(__file__).resolve().parent
PING = ("--ping-interval", "1", "--ping-timeout", "1")


async def _chat_while(
    talker: Bot, watcher: Bot, seconds: float, leaves: list[tuple[str, str, float]], since: float
) -> list[float]:
    """Talk for ``seconds``: the talker's echo latencies; the watcher collects leave notices meanwhile."""

    async def watch() -> None:
        while True:
            message = await watcher.recv(12 * UNIT)
            if message["type"] == "left":
                leaves.append((message["name"], message["reason"], time.monotonic() - since))

    watching = asyncio.create_task(watch())
    latencies = []
    try:
        deadline = time.monotonic() + seconds
        index = 0
        while time.monotonic() < deadline:
            sent = time.monotonic()
            await talker.say(f"tick {index} " + "x" * 1500)
            echo = await talker.recv()
            while echo["type"] != "message":
                assert echo["type"] != "error", echo
                echo = await talker.recv()
            latencies.append(time.monotonic() - sent)
            index += 1
            await asyncio.sleep(0.02)
    finally:
        watching.cancel()
    return latencies


def _records(watcher: RecordingBot, talker: RecordingBot) -> list[MemberRecord]:
    """The bystanders' records: each owed what it read (the watcher stopped reading when the chat ended)."""
    return [watcher.record(), talker.record()]


def _record(
    fault: str,
    tracker: RunningTracker,
    name: str,
    bystanders: tuple[RecordingBot, RecordingBot],
    leaves: list[tuple[str, str, float]],
    latencies: list[float],
    **extras: int,
) -> None:
    """The fault's row, counted before any assertion: leaves of ``name`` logged, when the first was seen, ..."""
    counts = check(whole_entries(tracker.log_path), _records(*bystanders), strict=False)
    record(
        "faults",
        fault=fault,
        injected=1,
        torn_left=torn_lines(tracker.log_path),
        leaves=len(_leave_lines(tracker, name)),
        dropped_after_s=round(leaves[0][2], 2) if leaves else None,
        max_bystander_latency=round(max(latencies), 3),
        **extras,
        **counts.as_figures(),
    )


def _leave_lines(tracker: RunningTracker, name: str) -> list[str]:
    return [e.text for e in whole_entries(tracker.log_path) if e.kind == "leave" and e.name == name]


async def test_sigstopped_client_is_dropped_once_others_unaffected(start_tracker: Any) -> None:
    """A real chat-client frozen with SIGSTOP is dropped within ping interval + timeout; others keep their pace."""
    tracker: RunningTracker = start_tracker(*PING, "--rate", "100", "--burst", "100")
    watcher = await open_recording(tracker.url, PASSWORD, "watcher")
    talker = await open_recording(tracker.url, PASSWORD, "talker")
    await watcher.expect("joined")  # talker
    client = subprocess.Popen(
        [sys.executable, "-m", "chat_client", "--username", "frozen", "--reconnect-for", "0", tracker.url],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "TRACKER_PASSWORD": PASSWORD},
    )
    try:
        joined = await watcher.expect("joined", 4 * UNIT)
        assert joined["name"] == "frozen"
        client.send_signal(signal.SIGSTOP)
        stopped = time.monotonic()
        leaves: list[tuple[str, str, float]] = []
        latencies = await _chat_while(talker, watcher, 5.0, leaves, stopped)
        client.send_signal(signal.SIGCONT)
        status = await asyncio.to_thread(client.wait, 4 * UNIT)
    finally:
        client.kill()
        client.wait()
    _record("sigstop_client", tracker, "frozen", (watcher, talker), leaves, latencies)
    assert [(name, reason) for name, reason, _ in leaves] == [("frozen", "lost")], leaves
    assert leaves[0][2] < 1 + 1 + 0.3 * UNIT, f"dropped after {leaves[0][2]:.1f} s"
    assert max(latencies) < UNIT / 10, f"a bystander waited {max(latencies):.2f} s"
    assert status == 3  # the client, thawed and told not to reconnect, reports the lost connection
    assert _leave_lines(tracker, "frozen") == ["lost"]
    check(check_log_file(tracker.log_path), _records(watcher, talker))


async def test_client_killed_mid_frame_leaves_once(start_tracker: Any) -> None:
    """A client SIGKILLed half-way through a frame: one leave, at once; the half frame is never logged."""
    tracker: RunningTracker = start_tracker("--rate", "100", "--burst", "100")
    watcher = await open_recording(tracker.url, PASSWORD, "watcher")
    talker = await open_recording(tracker.url, PASSWORD, "talker")
    process = Process([sys.executable, str(HERE / "half_frame_member.py"), tracker.url, PASSWORD, "halfway"])
    try:
        assert await asyncio.to_thread(process.out.next_line, time.monotonic() + 4 * UNIT) == "ready"
        assert (await watcher.expect("joined"))["name"] == "talker"
        assert (await watcher.expect("joined"))["name"] == "halfway"
        process.kill()
        killed = time.monotonic()
        leaves: list[tuple[str, str, float]] = []
        latencies = await _chat_while(talker, watcher, 1.5, leaves, killed)
    finally:
        process.kill()
        process.wait()
    entries = whole_entries(tracker.log_path)
    half_frames = sum("half a message" in e.text for e in entries)
    _record(
        "killed_mid_frame", tracker, "halfway", (watcher, talker), leaves, latencies, half_frames_logged=half_frames
    )
    assert [(name, reason) for name, reason, _ in leaves] == [("halfway", "lost")], leaves
    assert leaves[0][2] < UNIT / 5
    assert max(latencies) < UNIT / 10
    assert half_frames == 0, "the half frame was logged"
    assert _leave_lines(tracker, "halfway") == ["lost"]
    check(check_log_file(tracker.log_path), _records(watcher, talker))


def test_peer_vanishing_without_fin_in_a_netns(tmp_path: Path) -> None:
    """iptables drops a member's packets (no FIN, no RST): one leave "lost" after ping interval + timeout."""
    require_root_tool("iptables")
    require_root_tool("unshare")
    result = subprocess.run(
        ["unshare", "-n", sys.executable, str(HERE / "netns_vanish.py"), str(tmp_path / "data"), "1", "1"],
        capture_output=True,
        text=True,
        timeout=12 * UNIT,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    leaves = outcome["leaves"]
    log_path = tmp_path / "data" / "chat.log"
    victim_leaves = [e.text for e in whole_entries(log_path) if e.kind == "leave" and e.name == "victim"]
    record(
        "faults",
        fault="vanished_peer_netns",
        injected=1,
        torn_left=torn_lines(log_path),
        leaves=len(victim_leaves),
        dropped_after_s=round(leaves[0][2], 2) if leaves else None,
        max_bystander_latency=round(outcome["max_latency"], 3),
        **outcome["checked"],
    )
    assert [(name, reason) for name, reason, _ in leaves] == [("victim", "lost")], leaves
    assert 1.0 <= leaves[0][2] < 1 + 1 + 0.3 * UNIT, f"dropped after {leaves[0][2]:.1f} s"
    assert outcome["max_latency"] < UNIT / 10
    assert outcome["violation"] is None, outcome["violation"]  # the checker, run in the namespace
    assert victim_leaves == ["lost"]
    check_log_file(log_path)
