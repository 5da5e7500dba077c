"""A piped ``chat-client`` whose network is cut for 10 s, for real: run inside ``unshare -n``.

Brings up loopback, starts a tracker with short keepalives (so it notices the cut
at once and keeps the member as away), joins a talker, starts the real
``chat-client`` as ``alpha``, then has iptables drop every packet of alpha's
connection for ``CUT_SECONDS`` while the talker keeps talking and a line is typed
into alpha's stdin. Then the network comes back: the client must notice, reconnect,
resume, show every missed message once, and send the typed line once. Prints one
JSON object. Usage: ``unshare -n python netns_cut_client.py DATA_DIR``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the support package, as for pytest

from support.environment import program
from support.process import Process
from support.resume import join
from support.timing import UNIT
from support.tracker import PASSWORD, launch_tracker

CUT_SECONDS = 10.0
TYPED = "typed while the network was down"


def client_port(tracker_port: int, other_ports: set[int]) -> int:
    """The local port of the one connection to the tracker that is not one of ``other_ports``."""
    listing = subprocess.run(
        ["ss", "-Htn", "state", "established", f"( dport = :{tracker_port} )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    ports = {int(line.split()[2].rsplit(":", 1)[1]) for line in listing.splitlines() if line.strip()}
    (port,) = ports - other_ports
    return port


def iptables(action: str, port: int) -> None:
    for rule in (["--sport", str(port)], ["--dport", str(port)]):
        subprocess.run(["iptables", action, "INPUT", "-p", "tcp", *rule, "-j", "DROP"], check=True)


async def run(data_dir: Path) -> dict[str, object]:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    tracker = launch_tracker(
        data_dir, "--ping-interval", "1", "--ping-timeout", "1", "--rate", "100", "--burst", "100", resume_grace=60
    )
    env = {**os.environ, "TRACKER_PASSWORD": PASSWORD}
    command = [program("chat-client"), "--json", "--username", "alpha", tracker.url]
    client = Process(command, stdin=True, env=env)
    seen: list[dict[str, object]] = []

    def wait_line(predicate: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            line = client.out.next_line(deadline)
            if line is None:
                raise AssertionError("the client exited")
            event: dict[str, Any] = json.loads(line)
            seen.append(event)
            if predicate(event):
                return event

    try:
        await asyncio.to_thread(wait_line, lambda e: e["type"] == "welcome", 4 * UNIT)
        talker = await join(tracker.url, "talker")
        port = client_port(tracker.port, {talker.ws.transport.get_extra_info("sockname")[1]})
        await talker.say("before the cut")
        await asyncio.to_thread(wait_line, lambda e: e.get("text") == "before the cut", 4 * UNIT)
        iptables("-A", port)
        cut = time.monotonic()
        await asyncio.to_thread(tracker.wait_for_output, "alpha is away", 4 * UNIT)
        client.send(TYPED)
        sent = 0
        while time.monotonic() - cut < CUT_SECONDS:  # the fault lasts this long; the talker talks meanwhile
            await talker.say(f"while cut {sent}")
            await talker.wait_for(lambda m, i=sent: m.get("text") == f"while cut {i}")
            sent += 1
            await asyncio.sleep(0.5)
        iptables("-D", port)
        restored = time.monotonic()
        await talker.wait_for(lambda m: m.get("text") == TYPED, timeout=12 * UNIT)
        back_after = time.monotonic() - restored
        await talker.say("after the cut")
        await asyncio.to_thread(wait_line, lambda e: e.get("text") == "after the cut", 4 * UNIT)
        client.close_stdin()
        status = await asyncio.to_thread(client.wait, 4 * UNIT)
        seen.extend(json.loads(line) for line in client.out.rest(UNIT)[len(seen) :])
    finally:
        client.end()
        tracker.stop()
    return {
        "status": status,
        "stderr": client.err.text(UNIT),
        "seen": seen,
        "sent_while_cut": sent,
        "back_after": back_after,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(Path(sys.argv[1])))))
