"""The nemesis on one tracker: random schedules of SIGKILLs, SIGSTOPs and a full disk under chat.log, under load.

The single-tracker form of tests/redis/test_nemesis.py, with the same schedules (``support.nemesis``,
kinds ``SINGLE_KINDS``), load and checker: the tracker (``--resume-grace 5``, its data directory a
tmpfs of its own) is SIGKILLed and started again on the same data directory, SIGSTOPped and
continued, or has its disk filled to the last byte under chat.log and freed, while six members chat
with message ids and resume after every drop. A tracker restarted replays from chat.log, where ids
are not kept: a member takes its own messages in that replay as their acknowledgements
(docs/protocol.md, "Resending is harmless"). At the end: every member connected, every message
acknowledged, a fence received by all; chat.log is checked against what every member saw.

CI runs ``support.nemesis.SINGLE_CI_SEEDS``; RELIABILITY_FULL=1 runs 100 schedules; ``NEMESIS_SEED=N`` replays seed N.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from support.campaign import record
from support.checked_member import read_chat_log
from support.checker import check
from support.disk import fill
from support.environment import require
from support.nemesis import (
    DISK_FULL,
    FREEZE_TRACKER,
    KILL_TRACKER,
    SINGLE_CI_SEEDS,
    SINGLE_KINDS,
    Fault,
    draw,
    replay_command,
    seeds,
)
from support.nemesis_cluster import healthz, wait_until
from support.nemesis_load import Load, NemesisMember, fence, play, post_mortem, reconnect_all, settle
from support.timing import UNIT
from support.tracker import RunningTracker, launch_tracker

pytestmark = pytest.mark.anyio

MEMBERS = 6
FLAGS = ("--resume-grace", "5", "--rate", "200", "--burst", "200")
DISK = "64m"  # a whole run's chat.log with room to spare, until it is filled
THIS_FILE = "tests/reliability/test_nemesis_single.py"


@dataclass
class Single:
    """One tracker over a data directory on its own tmpfs, and the injectors."""

    data_dir: Path
    tracker: RunningTracker | None = None
    frozen: bool = False
    filler: Path | None = None
    started: list[RunningTracker] = field(default_factory=list)

    @classmethod
    def create(cls, root: Path) -> Single:
        require(os.geteuid() == 0, "mounting a tmpfs needs root")
        single = cls(root / "data")
        single.data_dir.mkdir()
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(single.data_dir)],
            capture_output=True,
            text=True,
            check=False,
        )
        require(mounted.returncode == 0, f"cannot mount a tmpfs: {mounted.stderr.strip()}")
        try:
            single.start()
        except BaseException:
            single.close()
            raise
        return single

    def start(self) -> None:
        self.tracker = launch_tracker(self.data_dir, *FLAGS)
        self.started.append(self.tracker)

    def urls(self) -> list[str]:
        """The tracker's, while it runs and is not frozen (a balancer's health check would drop a frozen one)."""
        return [self.tracker.url] if self.tracker is not None and not self.frozen else []

    def inject(self, fault: Fault) -> None:
        if fault.kind == KILL_TRACKER and self.tracker is not None:
            self.tracker.kill()
            self.tracker = None
        elif fault.kind == FREEZE_TRACKER and self.tracker is not None:
            os.kill(self.tracker.process.pid, signal.SIGSTOP)
            self.frozen = True
        elif fault.kind == DISK_FULL:
            self.filler = fill(self.data_dir)

    def heal(self, fault: Fault) -> None:
        if fault.kind == KILL_TRACKER and self.tracker is None:
            self.start()
        elif fault.kind == FREEZE_TRACKER and self.tracker is not None:
            os.kill(self.tracker.process.pid, signal.SIGCONT)
            self.frozen = False
        elif fault.kind == DISK_FULL and self.filler is not None:
            self.filler.unlink()
            self.filler = None

    def healthy(self) -> bool:
        return self.tracker is not None and healthz(self.tracker.http_url).get("log_writable") is True

    def close(self) -> None:
        """End every tracker started, keep what they printed and chat.log beside the data dir, unmount."""
        evidence = self.data_dir.parent / "evidence"
        evidence.mkdir(exist_ok=True)
        for number, tracker in enumerate(self.started):
            with contextlib.suppress(ProcessLookupError):
                os.kill(tracker.process.pid, signal.SIGCONT)
            tracker.kill()
            (evidence / f"{number:02d}-tracker.out").write_text("\n".join(tracker.output) + "\n")
        with contextlib.suppress(OSError):
            shutil.copytree(self.data_dir, evidence / "data", ignore=shutil.ignore_patterns("filler"))
        subprocess.run(["umount", "-l", str(self.data_dir)], capture_output=True, check=False)


async def one_schedule(seed: int, single: Single, members: list[NemesisMember]) -> dict[str, int]:
    """Play seed's schedule under the load, heal, settle and fence; the load's own figures."""
    schedule = draw(seed, SINGLE_KINDS)
    load = Load(members, single.urls, random.Random(seed))
    for member in members:
        welcome = await member.join(single.urls()[0])
        assert welcome["type"] == "welcome", welcome
    load.start()

    async def inject(fault: Fault) -> None:
        await asyncio.to_thread(single.inject, fault)

    async def heal(fault: Fault) -> None:
        await asyncio.to_thread(single.heal, fault)

    try:
        await play(schedule, inject, heal, load)
    finally:
        await load.finish()
    await asyncio.to_thread(wait_until, single.healthy, "the tracker writable", 6 * UNIT)
    await reconnect_all(load, 6 * UNIT)
    stuck = await settle(load, 3 * UNIT)
    fence_seq = await fence(members, f"fence of seed {seed}", 4 * UNIT)
    return {
        "fence_seq": fence_seq,
        "resumes": sum(m.resumes for m in members),
        "resends": sum(m.resends for m in members),
        "echoes_again": sum(m.echoes_again for m in members),
        "stints": sum(len(m.stints) for m in members),
        "comebacks_refused": sum(load.refused.values()),
        "never_acknowledged": sum(len(ids) for ids in stuck.values()),
    }


@pytest.mark.timeout(30 * UNIT)
@pytest.mark.parametrize("seed", seeds(SINGLE_CI_SEEDS))
async def test_a_random_fault_schedule_on_one_tracker_loses_nothing_acknowledged(seed: int, tmp_path: Path) -> None:
    """One seeded schedule of tracker SIGKILLs, SIGSTOPs and a full disk under load: every acknowledged message in
    chat.log once; every member received chat.log's events from its join to the fence, in order, or was told."""
    schedule = draw(seed, SINGLE_KINDS)
    print(schedule.describe())
    started = time.monotonic()
    single = await asyncio.to_thread(Single.create, tmp_path)
    members = [NemesisMember(f"s{index}") for index in range(MEMBERS)]
    replay = replay_command(seed, THIS_FILE)
    try:
        try:
            extras = await one_schedule(seed, single, members)
        except AssertionError as error:
            raise AssertionError(f"seed {seed}: {error}\n{schedule.describe()}\nreplay: {replay}") from error
        entries = read_chat_log(single.data_dir)
        records = [member.record() for member in members]
        counts = check(entries, records, seed=seed, strict=False)
        elapsed = round(time.monotonic() - started, 1)
        figures = {**counts.as_figures(), **extras, "seconds": elapsed}
        record("nemesis", setting="single", seed=seed, injected=len(schedule.faults), kinds=schedule.kinds(), **figures)
        print(f"seed {seed}: {counts} {extras} in {elapsed} s")
        try:
            check(entries, records, seed=seed)
            assert not extras["never_acknowledged"], f"seed {seed}: messages never acknowledged: {extras}"
        except AssertionError as error:
            raise AssertionError(f"{error}\n{schedule.describe()}\nreplay: {replay}") from None
    finally:
        (tmp_path / "members.json").write_text(post_mortem(members))
        for member in members:
            if member.connected:
                await member.close()
        await asyncio.to_thread(single.close)
