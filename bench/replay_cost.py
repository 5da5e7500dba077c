"""What a resume and a /log page deep in a segment cost: tracker RSS and wall time, on loopback.

``python -m bench.replay_cost [--missed 200000] [--gz-lines 300000]``

1. A member joins, the tracker stops, ``--missed`` events are appended to chat.log
   (written directly, as the tracker writes them), the tracker restarts; the member
   resumes once (then, on a fresh tracker, four times in parallel with the same token).
   Reported: the answer's ``replayed``/``gone`` and the tracker's peak RSS growth.
2. A ``--gz-lines`` segment, plain and then gzipped as ``--compress`` does, and
   ``/log?after=<near its end>&limit=1`` timed against each (median of 5).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from chat_protocol import SUBPROTOCOL, format_ts
from chat_tracker.storage.segments import compress, segment_name

PASSWORD = "bench-password"
_LISTENING = re.compile(r"Listening on http://127\.0\.0\.1:(\d+)")


class Tracker:
    def __init__(self, data_dir: Path, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKER_")}
        env.update(TRACKER_PASSWORD=PASSWORD, TRACKER_RESUME_GRACE="600", PYTHONUNBUFFERED="1")
        env.update(TRACKER_MAX_CONNECTIONS_PER_ADDRESS="1000", TRACKER_MAX_UNAUTHENTICATED_PER_ADDRESS="1000")
        command = [sys.executable, "-m", "chat_tracker", "--host", "127.0.0.1", "--port", "0"]
        self.process = subprocess.Popen(
            [*command, "--data-dir", str(data_dir), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        assert self.process.stdout is not None
        seen = []
        for line in self.process.stdout:
            seen.append(line)
            match = _LISTENING.search(line)
            if match:
                self.port = int(match.group(1))
                break
        else:
            raise RuntimeError("the tracker did not start: " + "".join(seen[-5:]))

    def rss_kib(self, field: str) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(rf"{field}:\s+(\d+)", status).group(1))  # type: ignore[union-attr]

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(30)


async def _connect(port: int) -> Any:
    return await connect(
        f"ws://127.0.0.1:{port}/ws",
        subprotocols=[Subprotocol(SUBPROTOCOL)],
        additional_headers={"Authorization": f"Bearer {PASSWORD}"},
        max_size=None,
        ping_interval=None,
    )


async def join(port: int, name: str) -> dict[str, Any]:
    ws = await _connect(port)
    await ws.recv()  # hello
    await ws.send(json.dumps({"type": "join", "name": name}))
    while True:
        frame = json.loads(await ws.recv())
        if frame["type"] == "welcome":
            ws.transport.abort()  # dropped, not left: it stays away for the grace
            return dict(frame)


async def resume(port: int, welcome: dict[str, Any]) -> dict[str, Any]:
    ws = await _connect(port)
    await ws.recv()
    request = {"type": "resume", "token": welcome["token"], "epoch": welcome["epoch"], "after": welcome["seq"]}
    await ws.send(json.dumps(request))
    try:
        answer = json.loads(await ws.recv())
        received = 0
        while received < answer.get("replayed", 0):
            await ws.recv()
            received += 1
    except ConnectionClosed as closed:  # replaced by a parallel resume with the same token: 4010
        return {"type": "closed", "code": closed.rcvd.code if closed.rcvd else None}
    await ws.close()
    return dict(answer)


def append_events(path: Path, first_seq: int, count: int, text_bytes: int = 400) -> None:
    """``count`` message lines as chat.log holds them, seqs from ``first_seq``."""
    ts = format_ts(time.time())
    text = "x" * text_bytes
    with path.open("ab") as file:
        for start in range(first_seq, first_seq + count, 10_000):
            stop = min(first_seq + count, start + 10_000)
            file.write("".join(f"{seq} {ts} msg bot{seq % 7} {text}\n" for seq in range(start, stop)).encode())


async def resume_cost(missed: int, parallel: int) -> str:
    with tempfile.TemporaryDirectory() as directory:
        data_dir = Path(directory)
        tracker = Tracker(data_dir)
        welcome = await join(tracker.port, "alpha")
        tracker.stop()
        append_events(data_dir / "chat.log", welcome["seq"] + 1, missed)
        tracker = Tracker(data_dir)
        try:
            before = tracker.rss_kib("VmRSS")
            started = time.monotonic()
            answers = await asyncio.gather(*(resume(tracker.port, welcome) for _ in range(parallel)))
            seconds = time.monotonic() - started
            peak = tracker.rss_kib("VmHWM")
        finally:
            tracker.stop()
    last = next((a for a in answers if a["type"] == "resumed"), answers[-1])
    return (
        f"{parallel} resume(s), {missed} missed: replayed={last.get('replayed')} gone={last.get('gone')} "
        f"RSS {before / 1024:.0f} -> peak {peak / 1024:.0f} MB (+{(peak - before) / 1024:.0f} MB), {seconds:.2f} s"
    )


def _time_log(port: int, after: int) -> float:
    times = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {PASSWORD}"}) as http:
        for _ in range(5):
            started = time.perf_counter()
            response = http.get("/log", params={"after": after, "limit": 1})
            times.append(time.perf_counter() - started)
            assert response.status_code == 200 and response.json()["events"][0]["seq"] == after + 1, response.text
    return statistics.median(times)


def log_page_cost(lines: int) -> str:
    results = {}
    for packed in (False, True):
        with tempfile.TemporaryDirectory() as directory:
            data_dir = Path(directory)
            segment = data_dir / segment_name(1)
            append_events(segment, 1, lines, text_bytes=60)
            if packed:
                compress(segment)
            append_events(data_dir / "chat.log", lines + 1, 10)
            # --compress only for the .gz: with it, the plain segment would be compressed under the measurement
            flags = ("--rotate-bytes", "1G", "--history-size", "5") + (("--compress",) if packed else ())
            tracker = Tracker(data_dir, *flags)
            try:
                results[packed] = _time_log(tracker.port, lines - 10)
            finally:
                tracker.stop()
    plain, gz = results[False], results[True]
    where = f"/log?after={lines - 10}&limit=1 in a {lines}-line segment"
    return f"{where}: plain {plain:.4f} s, gz {gz:.4f} s ({gz / plain:.1f}x)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--missed", type=int, default=200_000)
    parser.add_argument("--gz-lines", type=int, default=300_000)
    parser.add_argument("--only", choices=("resume", "log"))
    options = parser.parse_args()
    if options.only != "log":
        for parallel in (1, 4):
            print(asyncio.run(resume_cost(options.missed, parallel)), flush=True)
    if options.only != "resume":
        print(log_page_cost(options.gz_lines), flush=True)


if __name__ == "__main__":
    main()
