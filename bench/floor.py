"""The physical floor: what one small ``write(2)`` to a loopback TCP socket costs.

A server that fans a message out to N members over TCP cannot deliver it for less
than the cost of the writes that carry it. This measures that cost on this machine:
one process writes ``count`` times to a loopback TCP connection (TCP_NODELAY, as the
servers under test set it) whose peer, another process on another core, drains it;
the writer's own CPU time divided by the writes is the floor per write. It is
measured for writes carrying 1, 2, 4 and 16 frames of 30 bytes (about a chat line in
a WebSocket frame), so that a server's CPU us/delivery and deliveries per write can
be set against it.

With gcc (or cc) the loop is ``bench/floor.c``, compiled at run time into a temporary
directory: nothing but the syscall is then measured. Without a compiler the same loop
runs in Python (``os.write`` on the socket's descriptor), whose interpreter overhead
of a few tenths of a microsecond per call is included; the report says which it was.

    python -m bench --floor          # prints the table
    python -m bench.floor            # the same
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SOURCE = Path(__file__).with_name("floor.c")
FRAME_BYTES = 30
FRAMES = (1, 2, 4, 16)
COUNT = 100_000  # writes per measurement: a tenth of a second to half a second each
ROUNDS = 3  # measurements of each size, interleaved; the median is kept (a shared machine is noisy)
WRITER_CORE = 0  # the servers' core
Row = dict[str, Any]


def cores() -> tuple[int, int]:
    """(writer core, drain core): the server's core 0 and another one, or -1 (unpinned) on one core."""
    available = sorted(os.sched_getaffinity(0))
    if WRITER_CORE in available and len(available) > 1:
        return WRITER_CORE, next(core for core in available if core != WRITER_CORE)
    return -1, -1


def compile_c(directory: Path) -> Path | None:
    """``floor.c`` built with -O2 into ``directory``, or None without a C compiler (or on failure)."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None or not SOURCE.exists():
        return None
    binary = directory / "floor"
    built = subprocess.run(
        [compiler, "-O2", "-o", str(binary), str(SOURCE)], capture_output=True, text=True, timeout=60, check=False
    )
    return binary if built.returncode == 0 else None


def measure_c(binary: Path, frames: int, count: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of ``count`` writes of ``frames`` frames, by the C loop."""
    writer, drain = cores()
    done = subprocess.run(
        [str(binary), str(count), str(frames), str(FRAME_BYTES), str(writer), str(drain)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    writes, cpu_ns, wall_ns = (int(part) for part in done.stdout.split())
    assert writes == count
    return cpu_ns / 1e9, wall_ns / 1e9


def measure_python(frames: int, count: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of ``count`` writes of ``frames`` frames, by a Python loop."""
    writer, drain = cores()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    child = os.fork()
    if child == 0:  # the peer: drain until the writer closes
        try:
            if drain >= 0:
                os.sched_setaffinity(0, {drain})
            peer, _ = listener.accept()
            buffer = bytearray(1 << 20)
            while peer.recv_into(buffer):
                pass
        finally:
            os._exit(0)
    listener_address = listener.getsockname()
    listener.close()
    before = os.sched_getaffinity(0)
    try:
        if writer >= 0:
            os.sched_setaffinity(0, {writer})
        with socket.create_connection(listener_address) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return _python_loop(sock.fileno(), b"x" * (frames * FRAME_BYTES), count)
    finally:
        os.sched_setaffinity(0, before)
        os.waitpid(child, 0)


def _python_loop(fd: int, message: bytes, count: int) -> tuple[float, float]:
    write = os.write
    for _ in range(1000):  # warm the connection up, as the C loop does
        write(fd, message)
    cpu0, wall0 = time.process_time(), time.monotonic()
    for _ in range(count):
        write(fd, message)
    return time.process_time() - cpu0, time.monotonic() - wall0


def measure(count: int = COUNT, frames: tuple[int, ...] = FRAMES, rounds: int = ROUNDS) -> list[Row]:
    """One row per frames-per-write: us per write and per frame (the median of ``rounds``
    measurements, taken round by round over the sizes), and which loop measured it."""
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as directory:
        binary = compile_c(Path(directory))
        runs: dict[int, list[tuple[float, float]]] = {n: [] for n in frames}
        for _ in range(rounds):
            for n in frames:
                runs[n].append(measure_c(binary, n, count) if binary else measure_python(n, count))
        for n in frames:
            ranked = sorted(runs[n])
            cpu, wall = ranked[len(ranked) // 2]
            rows.append(
                {
                    "workload": "floor",
                    "server": "floor",  # every row names a server; this one is no server, the kernel's floor
                    "loop": "C" if binary else "Python",
                    "frames_per_write": n,
                    "frame_bytes": FRAME_BYTES,
                    "write_bytes": n * FRAME_BYTES,
                    "writes": count,
                    "rounds": rounds,
                    "cpu_us_per_write": cpu / count * 1e6,
                    "cpu_us_per_frame": cpu / count / n * 1e6,
                    "cpu_us_per_write_range": [ranked[0][0] / count * 1e6, ranked[-1][0] / count * 1e6],
                    "writer_cpu_share": cpu / wall if wall else 0.0,
                }
            )
    return rows


def lines(rows: list[Row]) -> list[str]:
    """The Markdown table of the floor rows."""
    if not rows:
        return []
    out = [
        "## The physical floor",
        "",
        (
            f"CPU of one `write(2)` of small {rows[0]['frame_bytes']}-byte frames to a loopback TCP socket "
            f"(TCP_NODELAY) drained by another process on another core, measured by a {rows[0]['loop']} loop "
            "(`bench/floor.py`). A server cannot deliver for less than its writes cost: compare with CPU "
            f"us/delivery x deliveries per write. Median of {rows[0].get('rounds', 1)} runs of "
            f"{rows[0]['writes']:,} writes each."
        ),
        "",
        "| frames per write | bytes per write | CPU us per write (min-max) | CPU us per frame |",
        "|---:|---:|---:|---:|",
    ]
    for r in rows:
        low, high = r.get("cpu_us_per_write_range") or (r["cpu_us_per_write"], r["cpu_us_per_write"])
        out.append(
            f"| {r['frames_per_write']} | {r['write_bytes']} | {r['cpu_us_per_write']:.2f} ({low:.2f}-{high:.2f}) "
            f"| {r['cpu_us_per_frame']:.3f} |"
        )
    return [*out, ""]


def main() -> int:
    print("\n".join(lines(measure())), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
