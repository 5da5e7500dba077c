"""``python -m bench --profile``: where the tracker's CPU goes per delivery.

Starts one server (the tracker unless ``--servers`` names another), joins N = 100
members (or the one size ``--members`` names), and samples it with ``py-spy record
--nonblocking`` during one fixed-rate window (the plan's fixed rate for that N, with the
headline arrival pattern, Poisson unless ``--arrivals`` says otherwise). Each function's
share of the samples times the window's CPU per delivery gives microseconds per delivery, inclusive and self, written to
``profile-<server>.md`` with the raw folded stacks beside it (``profile-<server>.txt``,
loadable in speedscope or flamegraph.pl).

With ``--workloads rooms`` it profiles the many-rooms shape instead (``bench.rooms``, sized by the
``--rooms-*`` flags): the members join the common room, enter their small rooms, and py-spy samples
one rooms window of Poisson traffic over the small rooms.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from . import rooms
from .generators import Generators, generator_cores
from .workloads import Bench, Plan, Row, describe, running

MEMBERS, SECONDS, SAMPLE_HZ = 100, 6.0, 250


def profile(plan: Plan, shape: rooms.Shape | None = None) -> int:
    """Profile ``plan.servers[0]`` in one fan-out window, or in one rooms window when ``plan.workloads`` has rooms."""
    if shutil.which("py-spy") is None:
        print("python -m bench --profile: py-spy is not installed (pip install py-spy)", file=sys.stderr)
        return 1
    kind = plan.servers[0]
    plan.results.mkdir(parents=True, exist_ok=True)
    raw = plan.results / f"profile-{kind}.txt"
    gens = Generators(plan.generators, generator_cores(), plan.results / "logs")
    try:
        if "rooms" in plan.workloads:
            row, title, error = _profile_rooms(plan, gens, kind, raw, shape or rooms.Shape())
        else:
            row, title, error = _profile_fanout(plan, gens, kind, raw)
    finally:
        gens.close()
    if not raw.exists():
        print(f"py-spy wrote nothing (needs ptrace permission): {error.strip()[-500:]}", file=sys.stderr)
        return 1
    text = summarize(raw, row["cpu_us_per_delivery"] or 0.0, title)
    out = plan.results / f"profile-{kind}.md"
    out.write_text(text)
    print(text)
    print(f"wrote {out} and {raw}")
    return 0


def _profile_fanout(plan: Plan, gens: Generators, kind: str, raw: Path) -> tuple[Row, str, str]:
    """N members in the default room, one fixed-rate window sampled: its row, a title, py-spy's errors."""
    members = plan.members[0] if len(plan.members) == 1 else MEMBERS
    rate = plan.fixed_rates.get(members, 100_000 / max(1, members - 1))
    with running(plan, kind, "profile") as server:
        bench = Bench(plan, gens, server)
        bench.join(members, plan.connect_timeout)
        bench.window(rate, 2.0, "warm-up", arrivals=plan.headline)
        spy = _spy(server.pid, SECONDS, raw)
        row = bench.window(rate, SECONDS, "profiled", arrivals=plan.headline)
        _, error = spy.communicate(timeout=60)
        bench.leave_all()
    return row, f"{kind}, N={members}, {rate:g} msg/s {plan.headline}: {describe(row)}", error


def _profile_rooms(plan: Plan, gens: Generators, kind: str, raw: Path, shape: rooms.Shape) -> tuple[Row, str, str]:
    """The many-rooms shape filled, a warm-up window, then one window of ``shape.seconds`` sampled."""
    queue = max(1024, 4 * shape.members)  # as the rooms workload: the join storm must not overflow an outbox
    with running(plan, kind, "profile", queue_size=queue) as server:
        bench = Bench(plan, gens, server)
        bench.joined = rooms.fill(bench, shape)
        rooms.window(bench, shape, min(shape.seconds, plan.warmup_seconds), "warm-up")
        spy = _spy(server.pid, shape.seconds, raw)
        row = {**rooms.window(bench, shape, shape.seconds, "profiled"), "workload": "rooms", **bench.joined}
        _, error = spy.communicate(timeout=60 + shape.drain)
        bench.leave_all()
    return row, f"{kind}, {rooms.describe(row)}", error


def _spy(pid: int, seconds: float, raw: Path) -> subprocess.Popen[str]:
    """py-spy sampling ``pid`` for ``seconds`` (and one more), folded stacks to ``raw``."""
    command = ["py-spy", "record", "--pid", str(pid), "--duration", f"{seconds + 1:g}", "--rate", str(SAMPLE_HZ)]
    command += ["--format", "raw", "--nonblocking", "--output", str(raw)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def summarize(raw: Path, us_per_delivery: float, title: str, top: int = 25) -> str:
    """Markdown tables of the hottest functions, self and inclusive, in us per delivery."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = [_function(frame) for frame in stack.split(";")]
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    lines = [
        f"# Profile: {title}",
        "",
        f"{total} samples; us/delivery = share of samples x {us_per_delivery:.2f} us (the window's CPU per delivery).",
        "",
    ]
    for heading, counter in (
        ("Self time (where the CPU is spent)", own),
        ("Inclusive time (what a call costs with its callees)", inclusive),
    ):
        lines += [f"## {heading}", "", "| share | us/delivery | function |", "|---:|---:|---|"]
        for function, samples in counter.most_common(top):
            share = samples / total if total else 0.0
            lines.append(f"| {share:.1%} | {share * us_per_delivery:.2f} | `{function}` |")
        lines.append("")
    return "\n".join(lines)


def _function(frame: str) -> str:
    """``name (path/to/file.py:123)`` -> ``name (file.py)``: lines of one function merged."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(path).parts
    short = "/".join(parts[-2:]) if len(parts) >= 2 else path
    return f"{name} ({short})"
