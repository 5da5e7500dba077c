"""``python -m bench --memory``: where an idle member's memory goes in the tracker, file by file.

Starts the tracker under ``tracemalloc`` (``TRACED``: SIGUSR1 takes a snapshot; the second is
compared with the first and written out), joins N idle members (``--members``, default 1,000)
through the generators between the two snapshots, and reports what those members hold,
grouped by the source file whose code allocated it, in bytes per member, for each of
``VARIANTS`` side by side (one column each): guests in the default room only; guests in the
default room and two others (issue 27's shape: rooms of ``ROOM_SIZE``, laid out as in
``bench.rooms``, so 2N/5 rooms); registered members (accounts signed in with their
passphrase, one Argon2id verify each) in the default room and two others. The source lines
that allocated most are written to ``memory-lines.md`` beside ``memory.md``. ``/ws`` has one adapter
(``chat_tracker/transport/native.py``); the generators offer no per-message deflate, so
``--ws-deflate`` would change nothing here. Tracing costs memory of its own, so RSS
figures come from the ``idle`` workload instead.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .generators import Generators, generator_cores
from .rooms import Shape, layout
from .workloads import Bench, Plan, running

MEMBERS = 1000
TOP = 14  # files listed; the rest are summed as "other"
TOP_LINES = 40  # source lines listed in memory-lines.md
ROOM_SIZE = 5
PASSPHRASE = "correct horse battery staple"


@dataclass(frozen=True)
class Variant:
    label: str
    rooms: int  # rooms each member enters besides the default room
    registered: bool  # members sign in to accounts with their passphrase


VARIANTS = (
    Variant("guest, default room", 0, False),
    Variant("guest, default + 2 rooms", 2, False),
    Variant("registered, default + 2 rooms", 2, True),
)

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
        with open(os.environ["BENCH_TRACED_OUT"] + ".lines", "w") as out:
            for stat in snaps[1].compare_to(snaps[0], "lineno")[:int(os.environ["BENCH_TRACED_LINES"])]:
                frame = stat.traceback[0]
                out.write(f"{stat.size_diff} {stat.count_diff} {frame.filename}:{frame.lineno}\\n")
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
    lines: list[str] = []
    try:
        for number, variant in enumerate(VARIANTS):
            out = plan.results / f"traced-{number}.txt"
            sizes, top = _traced(plan, gens, variant, members, out, f"memory{number}")
            measured.append((variant.label, sizes))
            lines += [f"## {variant.label}", "", "| bytes per member | blocks per member | line |", "|---:|---:|---|"]
            lines += [*top, ""]
    finally:
        gens.close()
    text = table(measured, members)
    path = plan.results / "memory.md"
    path.write_text(text)
    (plan.results / "memory-lines.md").write_text("\n".join(lines))
    print(text)
    print(f"wrote {path} and memory-lines.md")
    return 0


def _traced(
    plan: Plan, gens: Generators, variant: Variant, members: int, out: Path, tag: str
) -> tuple[dict[str, int], list[str]]:
    """One traced tracker: snapshot, ``members`` join (and enter their rooms), snapshot; bytes per member."""
    out.unlink(missing_ok=True)
    Path(f"{out}.first").unlink(missing_ok=True)
    env = {"BENCH_TRACED_OUT": str(out), "BENCH_TRACED_LINES": str(TOP_LINES)}
    options: dict[str, Any] = {"head": ("-c", TRACED), "extra_env": env}
    if variant.registered:
        options["prepare"] = lambda data_dir: _accounts(data_dir, [f"t{n}" for n in range(members)])
    with running(plan, "tracker", tag, **options) as server:
        bench = Bench(plan, gens, server)
        os.kill(server.pid, signal.SIGUSR1)
        _wait_for(Path(f"{out}.first"))  # the empty room's snapshot is taken
        bench.passphrase = PASSPHRASE if variant.registered else ""
        joined = bench.join(members, plan.connect_timeout)
        if variant.rooms:
            _enter(bench, members * variant.rooms // ROOM_SIZE, plan.connect_timeout)
        bench.settle(timeout=10)
        os.kill(server.pid, signal.SIGUSR1)
        count = joined["joined"] or members
        sizes = _read(out, count)
        bench.leave_all()
    return sizes, _lines(Path(f"{out}.lines"), count)


def _accounts(data_dir: Path, names: list[str]) -> None:
    """An account for each name, all with ``PASSPHRASE`` (one hash shared: hashing is the slow part)."""
    from chat_tracker.core.accounts import new_account
    from chat_tracker.core.passphrases import hash_passphrase
    from chat_tracker.storage.accounts_db import SqliteAccounts

    data_dir.mkdir(parents=True, exist_ok=True)
    store, shared = SqliteAccounts(data_dir), hash_passphrase(PASSPHRASE)
    try:
        for name in names:
            store.create(new_account(name, shared, time.time()))
    finally:
        store.close()


def _enter(bench: Bench, rooms: int, timeout: float) -> None:
    """Every joined member enters its small rooms, laid out as the rooms workload does."""
    places = layout(Shape(members=bench.members, rooms=rooms, size=ROOM_SIZE))
    prefix = len(bench.prefix)
    commands = [
        {
            "cmd": "enter",
            "rooms": {name: places[index] for name in mine if (index := int(name[prefix:])) in places},
            "concurrency": 50,
            "timeout": timeout,
        }
        for mine in bench.names
    ]
    answers = bench.gens.call(commands, timeout=timeout + 30)
    entered = sum(a["entered"] for a in answers)
    if entered != rooms * ROOM_SIZE:
        raise RuntimeError(f"{entered} of {rooms * ROOM_SIZE} room places entered: {[a['errors'] for a in answers]}")


def _lines(path: Path, members: int) -> list[str]:
    rows = []
    for line in path.read_text().splitlines():
        size, count, where = line.split(" ", 2)
        rows.append(f"| {int(size) / members:,.0f} | {int(count) / members:.2f} | `{_short(where)}` |")
    return rows


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
