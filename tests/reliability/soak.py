"""Load held: many members on loopback, steady chat, everything counted.

``python tests/reliability/soak.py --members 1000 --rate 20 --seconds 600`` runs the full
soak and prints one JSON object; ``test_soak.py`` runs a short form in CI. It checks
messages accepted (the tracker's chat_messages_total) = msg lines in chat.log = what
every member that kept up received, and reports the tracker's peak RSS, the echo
latency seen by an observer, and any ERROR line in the tracker's own log.

Memory: the tracker's RSS is sampled every second while the members chat. The tracker keeps
its last ``--history-size`` events in memory, so its RSS rightly grows until that history is
full; the soak sets the history to a quarter of the messages it will send, so the history
fills in the first quarter of the chat and the rest is steady state. Over those steady
samples it reports the least-squares slope (MiB per minute) and the growth (the mean of their
second half minus the mean of their first half): a leak shows as both.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import resource
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the support package, as for pytest

import httpx
from websockets.exceptions import ConnectionClosed

from support.bots import Bot, open_bot
from support.campaign import check_log_file, error_lines
from support.process import rss_kib
from support.timing import UNIT
from support.tracker import PASSWORD, launch_tracker


def raise_fd_limit(needed: int) -> None:
    """Members and the tracker each need a descriptor per connection; CI machines often allow 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(needed, soft)), hard))


class Counter:
    """One member's reader: counts chat messages and errors without parsing most frames."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self.messages = 0
        self.errors = 0
        self.closed_early = False

    async def run(self, latencies: list[float] | None, sent_at: dict[str, float]) -> None:
        try:
            async for frame in self.bot.ws:
                if '"type":"message"' in frame:
                    self.messages += 1
                    if latencies is not None:
                        text = json.loads(frame)["text"]
                        if text in sent_at:
                            latencies.append(time.monotonic() - sent_at[text])
                elif '"type":"error"' in frame:
                    self.errors += 1
                elif '"type":"bye"' in frame:
                    break
        except ConnectionClosed:
            self.closed_early = True


async def metric(tracker_url: str, name: str) -> float:
    async with httpx.AsyncClient(trust_env=False, timeout=2 * UNIT) as client:
        text = (await client.get(f"{tracker_url}/metrics")).text
    match = re.search(rf"^{name} ([0-9.e+]+)$", text, re.MULTILINE)
    assert match is not None, f"{name} not in /metrics"
    return float(match.group(1))


class RssSampler:
    """The tracker's resident set, sampled every second: (seconds since the start, MiB)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[float, float]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        started = time.monotonic()
        while True:
            self.samples.append((time.monotonic() - started, rss_kib(self.pid) / 1024))
            await asyncio.sleep(1.0)  # the sampling period, not a wait for an event


def slope_mib_per_min(samples: list[tuple[float, float]]) -> float:
    """The least-squares slope of RSS over time, in MiB per minute."""
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_m = sum(m for _, m in samples) / n
    spread = sum((t - mean_t) ** 2 for t, _ in samples)
    return 60 * sum((t - mean_t) * (m - mean_m) for t, m in samples) / spread


def growth_mib(samples: list[tuple[float, float]]) -> float:
    """The mean RSS of the samples' second half minus that of their first half, in MiB."""
    half = len(samples) // 2
    first, second = samples[:half], samples[half:]
    return sum(m for _, m in second) / len(second) - sum(m for _, m in first) / len(first)


def memory_figures(samples: list[tuple[float, float]], history_full_after: float) -> dict[str, Any]:
    steady = [(t, m) for t, m in samples if t >= history_full_after]
    assert len(steady) >= 10, f"only {len(steady)} RSS samples after the history filled"
    return {
        "rss_samples": len(samples),
        "rss_steady_samples": len(steady),
        "rss_steady_from_s": round(history_full_after, 1),
        "rss_slope_mib_per_min": round(slope_mib_per_min(steady), 3),
        "rss_growth_mib": round(growth_mib(steady), 2),
        "rss_first_mib": round(samples[0][1], 1),
        "rss_steady_start_mib": round(steady[0][1], 1),
        "rss_last_mib": round(samples[-1][1], 1),
    }


async def soak(members: int, rate: float, seconds: float, data_dir: Path) -> dict[str, Any]:
    """Hold ``members`` members for ``seconds`` while ``rate`` messages/s (in total) are sent."""
    raise_fd_limit(2 * members + 256)
    history = max(1, int(rate * seconds / 4))  # full after the first quarter of the chat (see the docstring)
    tracker = launch_tracker(data_dir, "--log-level", "info", "--history-size", str(history))
    started = time.monotonic()
    bots: list[Bot] = []
    sampler = RssSampler(tracker.process.pid)
    try:
        for start in range(0, members, 50):
            bots += await asyncio.gather(
                *(open_bot(tracker.url, PASSWORD, f"m{i}") for i in range(start, min(members, start + 50)))
            )
        joined_seconds = time.monotonic() - started
        # Drain the join notices before counting: each member saw the later joins.
        await asyncio.sleep(1.0)
        for bot in bots:
            while True:
                try:
                    await asyncio.wait_for(bot.ws.recv(), 0.001 if bot is not bots[0] else 0.2)
                except TimeoutError:
                    break
        counters = [Counter(bot) for bot in bots]
        sent_at: dict[str, float] = {}
        latencies: list[float] = []
        readers = [asyncio.create_task(c.run(latencies if i == 0 else None, sent_at)) for i, c in enumerate(counters)]
        rng = random.Random(1)
        sent = 0
        sampler.start()
        chat_start = time.monotonic()
        peak_during = 0
        while (elapsed := time.monotonic() - chat_start) < seconds:
            due = int(elapsed * rate) + 1
            while sent < due:
                sender = bots[rng.randrange(1, len(bots))]  # bots[0] only observes
                text = f"soak {sent} from {sender.name}"
                sent_at[text] = time.monotonic()
                await sender.say(text)
                sent += 1
            if sent % max(1, int(rate)) == 0:
                peak_during = max(peak_during, rss_kib(tracker.process.pid, "VmHWM"))
            await asyncio.sleep(min(0.05, 1 / rate))
        chat_seconds = time.monotonic() - chat_start
        await sampler.stop()
        drain_deadline = time.monotonic() + 6 * UNIT
        while time.monotonic() < drain_deadline and any(c.messages < sent and not c.closed_early for c in counters):
            await asyncio.sleep(0.1)
        accepted = int(await metric(tracker.http_url, "chat_messages_total"))
        slow = int(await metric(tracker.http_url, "chat_slow_member_drops_total"))
        rss_now, rss_peak = rss_kib(tracker.process.pid), rss_kib(tracker.process.pid, "VmHWM")
        signalled = time.monotonic()
        tracker.process.send_signal(signal.SIGINT)
        status = await asyncio.to_thread(tracker.process.wait, 6 * UNIT)
        exit_seconds = time.monotonic() - signalled
        await asyncio.wait_for(asyncio.gather(*readers, return_exceptions=True), 6 * UNIT)
    finally:
        await sampler.stop()
        tracker.kill()
        await asyncio.gather(*(b.ws.close() for b in bots), return_exceptions=True)
    entries = check_log_file(tracker.log_path)
    logged = sum(1 for e in entries if e.kind == "msg")
    kept_up = [c for c in counters if not c.closed_early]
    latencies.sort()
    return {
        "members": members,
        "rate_per_s": rate,
        "chat_seconds": round(chat_seconds, 1),
        "join_seconds": round(joined_seconds, 1),
        "sent": sent,
        "accepted": accepted,
        "logged": logged,
        "refused": sum(c.errors for c in counters),
        "kept_up": len(kept_up),
        "slow_drops": slow,
        "deliveries": sum(c.messages for c in kept_up),
        "expected_deliveries": accepted * len(kept_up),
        "lost": accepted * len(kept_up) - sum(c.messages for c in kept_up),
        "rss_peak_mib": round(max(rss_peak, peak_during) / 1024, 1),
        "rss_end_mib": round(rss_now / 1024, 1),
        "history_size": history,
        **memory_figures(sampler.samples, history / rate),
        "latency_p50_ms": round(1000 * latencies[len(latencies) // 2], 1) if latencies else None,
        "latency_p99_ms": round(1000 * latencies[int(len(latencies) * 0.99)], 1) if latencies else None,
        "latency_max_ms": round(1000 * latencies[-1], 1) if latencies else None,
        "tracker_errors": error_lines(tracker.output),
        "exit_status": status,
        "exit_seconds": round(exit_seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=20.0, help="messages per second, all members together")
    parser.add_argument("--seconds", type=float, default=600.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        print(json.dumps(asyncio.run(soak(args.members, args.rate, args.seconds, Path(directory))), indent=1))


if __name__ == "__main__":
    main()
