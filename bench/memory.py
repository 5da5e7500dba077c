"""``python -m bench --memory``: where an idle member's memory goes in the tracker, file by file.

Starts the tracker under ``tracemalloc`` (``TRACED``: SIGUSR1 takes a snapshot; the second is
compared with the first and written out), joins N idle members (``--members``, default 1,000)
through the generators between the two snapshots, and reports what those members hold,
grouped by the source file whose code allocated it, in bytes per member, for each of
``VARIANTS`` side by side (one column each). ``/ws`` has one adapter
(``chat_tracker/transport/native.py``); the generators offer no per-message deflate, so
``--ws-deflate`` would change nothing here. Tracing costs memory of its own, so RSS
figures come from the ``idle`` workload instead.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from .generators import Generators, generator_cores
from .workloads import Bench, Plan, running

MEMBERS = 1000
TOP = 14  # files listed; the rest are summed as "other"
VARIANTS: tuple[tuple[str, dict[str, str]], ...] = (("native (native.py)", {}),)

# The tracker's CLI, with a SIGUSR1 handler: the first signal snapshots, the second compares.
TRACED = """
import gc, os, signal, sys, tracemalloc
tracemalloc.start(1)
snaps = []
def dump(signum, frame):
    gc.collect()
    snaps.append(tracemalloc.take_snapshot())
    if len(snaps) == 1:
        open(os.environ["BENCH_TRACED_OUT"] + ".first", "w").close()
    if len(snaps) == 2:
        stats = snaps[1].compare_to(snaps[0], "filename")
        with open(os.environ["BENCH_TRACED_OUT"] + ".tmp", "w") as out:
            for stat in stats:
                out.write(f"{stat.size_diff} {stat.count_diff} {stat.traceback[0].filename}\\n")
        os.replace(os.environ["BENCH_TRACED_OUT"] + ".tmp", os.environ["BENCH_TRACED_OUT"])
signal.signal(signal.SIGUSR1, dump)
from chat_tracker.runtime.cli import main
sys.exit(main(sys.argv[1:]))
"""


def memory(plan: Plan) -> int:
    members = plan.members[0] if len(plan.members) == 1 else MEMBERS
    plan.results.mkdir(parents=True, exist_ok=True)
    gens = Generators(plan.generators, generator_cores(), plan.results / "logs")
    measured: list[tuple[str, dict[str, int]]] = []
    try:
        for label, env in VARIANTS:
            out = plan.results / f"traced-{len(measured)}.txt"
            out.unlink(missing_ok=True)
            Path(f"{out}.first").unlink(missing_ok=True)
            options: dict[str, Any] = {"head": ("-c", TRACED), "extra_env": {**env, "BENCH_TRACED_OUT": str(out)}}
            with running(plan, "tracker", f"memory{len(measured)}", **options) as server:
                bench = Bench(plan, gens, server)
                os.kill(server.pid, signal.SIGUSR1)
                _wait_for(Path(f"{out}.first"))  # the empty room's snapshot is taken
                joined = bench.join(members, plan.connect_timeout)
                bench.settle(timeout=10)
                os.kill(server.pid, signal.SIGUSR1)
                measured.append((label, _read(out, joined["joined"] or members)))
                bench.leave_all()
    finally:
        gens.close()
    text = table(measured, members)
    path = plan.results / "memory.md"
    path.write_text(text)
    print(text)
    print(f"wrote {path}")
    return 0


def _wait_for(path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the traced tracker wrote no {path.name} within {timeout:g} s")
        time.sleep(0.05)


def _read(path: Path, members: int) -> dict[str, int]:
    """Bytes per member by file, from the traced tracker's comparison (written on the second signal)."""
    _wait_for(path)
    sizes: dict[str, int] = {}
    for line in path.read_text().splitlines():
        size, _, filename = line.split(" ", 2)
        key = _short(filename)
        sizes[key] = sizes.get(key, 0) + int(size)
    return {key: round(size / members) for key, size in sizes.items()}


def _short(filename: str) -> str:
    parts = Path(filename).parts
    for root in ("chat_tracker", "chat_protocol", "uvicorn", "websockets", "asyncio"):
        if root in parts:
            return "/".join(parts[parts.index(root) :])
    return "/".join(parts[-2:])


def table(measured: list[tuple[str, dict[str, int]]], members: int) -> str:
    """Markdown: bytes per idle member by file, each variant a column, largest first."""
    totals = {label: sum(sizes.values()) for label, sizes in measured}
    keys = sorted({k for _, sizes in measured for k in sizes}, key=lambda k: -max(s.get(k, 0) for _, s in measured))
    shown, rest = keys[:TOP], keys[TOP:]
    labels = [label for label, _ in measured]
    out = [
        f"# Memory per idle member, N = {members:,} (tracemalloc, bytes per member by the file that allocated it)",
        "",
        "| file | " + " | ".join(labels) + " |",
        "|---|" + "---:|" * len(labels),
    ]
    for key in shown:
        out.append(f"| `{key}` | " + " | ".join(f"{sizes.get(key, 0):,}" for _, sizes in measured) + " |")
    out.append("| other | " + " | ".join(f"{sum(sizes.get(k, 0) for k in rest):,}" for _, sizes in measured) + " |")
    out.append("| **total** | " + " | ".join(f"**{totals[label]:,}**" for label in labels) + " |")
    return "\n".join([*out, ""])
