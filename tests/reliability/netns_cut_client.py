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
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from chat_testing import PASSWORD, UNIT, launch_tracker, program  # noqa: E402
from resume_support import join  # noqa: E402

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
    client = subprocess.Popen(
        [program("chat-client"), "--json", "--username", "alpha", tracker.url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    seen: list[dict[str, object]] = []

    def pump() -> None:
        assert client.stdout is not None
        for line in client.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()

    def wait_line(predicate: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
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
        assert client.stdin is not None
        client.stdin.write(TYPED + "\n")
        client.stdin.flush()
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
        client.stdin.close()
        status = await asyncio.to_thread(client.wait, 4 * UNIT)
        while (line := lines.get(timeout=UNIT)) is not None:
            seen.append(json.loads(line))
    finally:
        client.kill()
        tracker.stop()
    assert client.stderr is not None
    return {
        "status": status,
        "stderr": client.stderr.read(),
        "seen": seen,
        "sent_while_cut": sent,
        "back_after": back_after,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(Path(sys.argv[1])))))
