"""A peer that vanishes without a FIN, for real: run inside ``unshare -n`` (a private network namespace).

Brings up loopback, starts a tracker with short keepalives, joins a watcher, a
talker and a victim, then has iptables drop every packet to and from the victim's
port - as if its cable were pulled. Measures how long until the tracker logs the
victim's leave, and the talker's echo latency meanwhile; checks what the members received
against chat.log (``support.checker``). Prints one JSON object.
Usage: ``unshare -n python netns_vanish.py DATA_DIR PING_INTERVAL PING_TIMEOUT``.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the support package, as for pytest

from support.checked_member import read_chat_log
from support.member_records import open_recording, verdict
from support.timing import UNIT
from support.tracker import PASSWORD, launch_tracker


async def run(data_dir: Path, interval: str, timeout: str) -> dict[str, object]:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    tracker = launch_tracker(
        data_dir, "--ping-interval", interval, "--ping-timeout", timeout, "--rate", "100", "--burst", "100"
    )
    try:
        watcher = await open_recording(tracker.url, PASSWORD, "watcher")
        talker = await open_recording(tracker.url, PASSWORD, "talker")
        victim = await open_recording(tracker.url, PASSWORD, "victim")
        port = victim.ws.transport.get_extra_info("sockname")[1]
        for rule in (["--sport", str(port)], ["--dport", str(port)]):
            subprocess.run(["iptables", "-A", "INPUT", "-p", "tcp", *rule, "-j", "DROP"], check=True)
        cut = time.monotonic()
        latencies: list[float] = []
        leaves: list[tuple[str, str, float]] = []

        async def watch() -> None:
            while True:
                message = await watcher.recv(6 * UNIT)
                if message["type"] == "left":
                    leaves.append((message["name"], message["reason"], time.monotonic() - cut))

        watching = asyncio.create_task(watch())
        deadline = cut + float(interval) + float(timeout) + 0.8 * UNIT
        index = 0
        while time.monotonic() < deadline:
            sent = time.monotonic()
            await talker.say(f"tick {index}")
            await talker.expect("message")
            latencies.append(time.monotonic() - sent)
            index += 1
            await asyncio.sleep(0.1)
        watching.cancel()
        subprocess.run(["iptables", "-F", "INPUT"], check=True)
        victim.ws.transport.abort()
        await watcher.ws.close()
        await talker.ws.close()
        tracker.stop()
        counts, violation = verdict(read_chat_log(data_dir), [bot.record() for bot in (watcher, talker, victim)])
        return {
            "checked": counts.as_figures(),
            "violation": violation,
            "leaves": leaves,
            "max_latency": max(latencies),
            "messages": len(latencies),
            "tracker_lines": [line for line in tracker.output if "victim" in line],
        }
    finally:
        tracker.kill()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(Path(sys.argv[1]), sys.argv[2], sys.argv[3]))))
