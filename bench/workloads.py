"""The workloads: each starts a server, joins members through the generators, runs
measurement windows and returns rows for the results table.

A window: every generator resets its counters; publishers send at a fixed total
rate for a fixed time, each message stamped; then the harness waits (bounded)
until every expected delivery arrived. The server's CPU time (from /proc) over
the window divided by the deliveries the clients counted is the headline figure,
CPU us per delivery: it does not depend on how fast or busy the machine is.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .generators import BUSY_SHARE, Generators
from .servers import PASSWORD, Server, ServerOptions

P99_LIMIT_MS = 100.0
PREFIXES = {"tracker": "t", "ceiling": "c", "typical": "y"}
MESSAGE_BYTES = 48  # text of a published message; the server prefixes "t12: "


@dataclass
class Plan:
    """What to run and how long; ``python -m bench`` fills it from its flags."""

    servers: tuple[str, ...] = ("tracker", "ceiling", "typical")
    workloads: tuple[str, ...] = ("fanout", "idle", "slow", "log")
    members: tuple[int, ...] = (10, 100, 1000)
    fixed_rates: dict[int, float] = field(default_factory=lambda: {10: 1000.0, 100: 1000.0, 1000: 100.0})
    step_deliveries: tuple[int, ...] = (20_000, 40_000, 80_000, 120_000, 160_000, 240_000, 320_000, 480_000, 640_000)
    step_seconds: float = 3.0
    fixed_seconds: float = 4.0
    repeats: int = 2
    publishers: int = 10
    idle_members: tuple[int, ...] = (1000, 5000)
    idle_seconds: float = 5.0
    connect_timeout: float = 120.0
    slow_members: int = 100
    slow_stalled: tuple[int, ...] = (0, 1, 5)
    slow_rate: float = 500.0
    slow_message_bytes: int = 1024  # big enough to fill a stalled member's buffers within seconds
    slow_seconds: float = 30.0
    slow_baseline_seconds: float = 10.0  # the unstalled run that p99 is compared with
    log_rate: float = 1000.0
    log_members: int = 100
    log_repeats: int = 3
    chat_deliveries: float = 50_000.0  # deliveries/s of the short chat among idle members
    chat_seconds: float = 3.0
    generators: int = 2
    concurrency: int = 50
    results: Path = Path("bench/results")


Row = dict[str, Any]


class Bench:
    """One server and the generators' members of it."""

    def __init__(self, plan: Plan, generators: Generators, server: Server) -> None:
        self.plan = plan
        self.gens = generators
        self.server = server
        self.prefix = PREFIXES[server.kind]  # member names: t0, t1... on the tracker; c0... ; y0...
        self.names: list[list[str]] = [[] for _ in range(len(generators))]
        self.stalled: set[str] = set()
        self.joined: Row = {}
        self.neighbours: list[Server] = []  # other servers running at the same time

    def name(self, index: int) -> str:
        return f"{self.prefix}{index}"

    # --- membership ----------------------------------------------------------------

    def join(self, count: int, timeout: float, small_buffers: tuple[str, ...] = ()) -> Row:
        """Join ``count`` members, spread round-robin over the generators."""
        split: list[list[str]] = [[] for _ in range(len(self.gens))]
        for index in range(count):
            split[index % len(split)].append(self.name(index))
        answers = self.gens.call(
            [
                {"cmd": "connect", "host": "127.0.0.1", "port": self.server.port, "path": self.server.path,
                 "password": PASSWORD, "names": names, "concurrency": self.plan.concurrency, "timeout": timeout,
                 "small_buffers": [name for name in names if name in small_buffers]}
                for names in split
            ],
            timeout=timeout + 30,
        )
        for mine, answer in zip(self.names, answers):
            mine.extend(answer["members"])  # only those that joined count as recipients
        joined = sum(a["joined"] for a in answers)
        seconds = max(a["seconds"] for a in answers)
        errors: dict[str, int] = {}
        for answer in answers:
            for reason, n in answer["errors"].items():
                errors[reason] = errors.get(reason, 0) + n
        return {"joined": joined, "failed": count - joined, "connect_seconds": seconds,
                "connects_per_s": joined / seconds if seconds else 0.0, "connect_errors": errors}

    @property
    def members(self) -> int:
        return sum(len(names) for names in self.names)

    def stall(self, names: list[str]) -> None:
        self.stalled.update(names)
        self.gens.call([{"cmd": "stall", "names": [n for n in mine if n in names]} for mine in self.names])

    def open_members(self) -> int:
        return sum(a["open"] for a in self.gens.call_all({"cmd": "status", "names": [], "prefix": self.prefix}))

    def leave_all(self) -> None:
        self.gens.call_all({"cmd": "close_all", "prefix": self.prefix})
        self.names = [[] for _ in range(len(self.gens))]

    def settle(self, timeout: float = 30.0, idle_share: float = 0.05) -> float:
        """Wait until the server (and the others on its core) is idle; return the seconds waited."""
        started = time.monotonic()
        servers = [self.server, *self.neighbours]
        before = sum(server.cpu_seconds() for server in servers)
        while time.monotonic() - started < timeout:
            time.sleep(0.25)
            after = sum(server.cpu_seconds() for server in servers)
            if after - before < 0.25 * idle_share:
                break
            before = after
        return time.monotonic() - started

    # --- one measurement window ------------------------------------------------------

    def window(self, rate: float, seconds: float, label: str, drain: float | None = None,
               size: int = MESSAGE_BYTES) -> Row:
        """Publish ``rate`` messages/s for ``seconds`` from the first publishers; measure."""
        self.settle()
        publishers = [self.name(i) for i in range(min(self.plan.publishers, self.members))]
        healthy = self.members - len(self.stalled)
        self.gens.call_all({"cmd": "window_start", "prefix": self.prefix})
        cpu0, (rss0, samples) = self.server.cpu_seconds(), (self.server.rss_bytes(), [])
        wall0 = time.monotonic()
        start_ns = time.monotonic_ns() + 200_000_000
        commands = []
        for mine in self.names:
            own = [name for name in publishers if name in mine]
            share = rate * len(own) / len(publishers)
            commands.append({"cmd": "publish", "names": own, "rate": share, "seconds": seconds,
                             "start_ns": start_ns, "size": size})
        sent = self.gens.call(commands, timeout=seconds + 60, tick=lambda: samples.append(self.server.rss_bytes()))
        published = sum(sum(a["published"].values()) for a in sent)
        expected = published * (healthy - 1)
        received = self._drain(expected, drain if drain is not None else max(2.0, seconds))
        ends = self.gens.call_all({"cmd": "window_end"})
        wall = time.monotonic() - wall0
        cpu = self.server.cpu_seconds() - cpu0
        samples.append(self.server.rss_bytes())
        return self._row(label, rate, seconds, published, expected, ends, cpu, wall, rss0, samples, sent)

    def _drain(self, expected: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while True:
            received = sum(a["messages"] for a in self.gens.call_all({"cmd": "counts"}))
            if received >= expected or time.monotonic() > deadline:
                return received
            time.sleep(0.05)

    def _row(self, label: str, rate: float, seconds: float, published: int, expected: int,
             ends: list[Row], cpu: float, wall: float, rss0: int, samples: list[int], sent: list[Row]) -> Row:
        received = sum(a["messages"] for a in ends)
        histogram: dict[int, int] = {}
        for answer in ends:
            for value, count in answer["latency_us"]:
                histogram[value] = histogram.get(value, 0) + count
        gen_shares = [a["cpu_seconds"] / a["wall_seconds"] for a in ends if a["wall_seconds"] > 0]
        gen_total = sum(gen_shares) / self.gens.core_count
        return {
            "server": self.server.kind, "label": label, "members": self.members,
            "stalled": len(self.stalled), "rate": rate, "seconds": seconds,
            "published": published, "publish_rate": published / seconds,
            "expected": expected, "received": received, "lost": max(0, expected - received),
            "loss_share": (expected - received) / expected if expected else 0.0,
            "deliveries_per_s": received / seconds,
            "server_cpu_s": cpu, "server_cpu_share": cpu / wall if wall else 0.0,
            "cpu_us_per_delivery": cpu / received * 1e6 if received else None,
            **percentiles(histogram),
            "rss_start": rss0, "rss_end": samples[-1], "rss_growth": max(samples) - rss0,
            "notices": sum(a["notices"] for a in ends), "slow_notices": sum(a["slow_notices"] for a in ends),
            "errors": sum(a["errors"] for a in ends),
            "generator_cpu_share": gen_total, "generator_max_share": max(gen_shares, default=0.0),
            "generator_limited": gen_total > BUSY_SHARE or max(gen_shares, default=0.0) > BUSY_SHARE,
            "max_burst": max(a["max_burst"] for a in sent),
        }


def percentiles(histogram: dict[int, int]) -> Row:
    """p50, p99 and max in milliseconds from a {microseconds: count} histogram."""
    total = sum(histogram.values())
    out: Row = {"p50_ms": None, "p99_ms": None, "max_ms": None}
    if not total:
        return out
    marks = {"p50_ms": 0.50 * total, "p99_ms": 0.99 * total}
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        for key, mark in marks.items():
            if out[key] is None and seen >= mark:
                out[key] = value / 1000
    out["max_ms"] = max(histogram) / 1000
    return out


def passes(row: Row) -> bool:
    """Zero loss, p99 under 100 ms, and the publishers kept the asked rate."""
    asked = row["rate"] * row["seconds"]
    return (row["lost"] == 0 and row["p99_ms"] is not None and row["p99_ms"] < P99_LIMIT_MS
            and row["published"] >= 0.95 * asked - 2)


@contextmanager
def running(plan: Plan, kind: str, tag: str, **options: Any) -> Iterator[Server]:
    data_dir = options.pop("data_dir", plan.results / "data" / f"{kind}-{tag}")
    shutil.rmtree(data_dir, ignore_errors=True)  # a fresh chat.log for every run
    server = Server(ServerOptions(kind=kind, data_dir=data_dir, log_dir=plan.results / "logs", **options))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def median_row(rows: list[Row]) -> Row:
    """The window with the median CPU per delivery, annotated with the spread."""
    ranked = sorted(rows, key=lambda r: r["cpu_us_per_delivery"] or float("inf"))
    row = dict(ranked[len(ranked) // 2])
    values = [r["cpu_us_per_delivery"] for r in rows if r["cpu_us_per_delivery"]]
    row["cpu_us_spread"] = [min(values), max(values)] if values else None
    row["repeats"] = len(rows)
    return row


# --- the workloads -----------------------------------------------------------------------


def fanout(plan: Plan, gens: Generators, log: Any) -> list[Row]:
    """Fixed-rate points and a stepped sweep at each member count, the servers interleaved.

    All servers run at once (idle but for keepalives when not measured), each with its
    own members, and every measurement is taken for each server in turn: a burst of
    noise on the machine then falls on all three rather than on one.
    """
    rows: list[Row] = []
    for n in plan.members:
        with ExitStack() as stack:
            benches = [Bench(plan, gens, stack.enter_context(running(plan, kind, f"fanout{n}")))
                       for kind in plan.servers]
            for bench in benches:
                bench.neighbours = [other.server for other in benches if other is not bench]
                stack.callback(bench.leave_all)
                joined = bench.join(n, plan.connect_timeout)
                bench.joined = joined
                if joined["failed"]:
                    log(f"  {bench.server.kind} N={n}: {joined['failed']} failed to join: {joined['connect_errors']}")
            rows.extend(_fixed(plan, benches, n, log))
            rows.extend(_sweep(plan, benches, n, log))
    return rows


def _fixed(plan: Plan, benches: list[Bench], n: int, log: Any) -> list[Row]:
    rate = plan.fixed_rates.get(n, 100_000 / max(1, n - 1))
    windows: dict[str, list[Row]] = {bench.server.kind: [] for bench in benches}
    for _ in range(plan.repeats):
        for bench in benches:
            windows[bench.server.kind].append(bench.window(rate, plan.fixed_seconds, "fixed"))
    rows = []
    for bench in benches:
        row = {**median_row(windows[bench.server.kind]), "workload": "fanout-fixed", **bench.joined}
        rows.append(row)
        log(f"  {bench.server.kind} N={n} fixed {rate:g} msg/s: {describe(row)}")
    return rows


def _sweep(plan: Plan, benches: list[Bench], n: int, log: Any) -> list[Row]:
    """Step the rate up for every server still passing; the best passing step is its maximum."""
    rows: list[Row] = []
    best: dict[str, Row | None] = {bench.server.kind: None for bench in benches}
    last: dict[str, Row] = {}
    going = list(benches)
    for deliveries in plan.step_deliveries:
        rate = deliveries / max(1, n - 1)
        for bench in list(going):
            step = {**bench.window(rate, plan.step_seconds, f"step {deliveries}"), "workload": "fanout-step"}
            rows.append(step)
            kind = bench.server.kind
            last[kind] = step
            ok = passes(step)
            log(f"  {kind} N={n} step {rate:.0f} msg/s: {describe(step)} {'ok' if ok else 'FAIL'}")
            if ok:
                best[kind] = step
            else:
                going.remove(bench)
    for bench in benches:
        kind = bench.server.kind
        rows.append(_best_row(kind, n, best[kind], last.get(kind)))
    return rows


def _best_row(kind: str, n: int, best: Row | None, last: Row | None) -> Row:
    """The sweep's verdict: highest passing delivered rate, and whether the generator capped it."""
    capped = bool(last and last["generator_limited"])
    failed_at = None if last is None or passes(last) else last["rate"]
    if best is None:
        return {"workload": "fanout-max", "server": kind, "members": n, "deliveries_per_s": 0.0,
                "generator_limited": capped, "failed_at": failed_at}
    return {**best, "workload": "fanout-max", "generator_limited": best["generator_limited"] or capped,
            "failed_at": failed_at}


def idle(plan: Plan, gens: Generators, kind: str, log: Any) -> list[Row]:
    """Connect and idle: connects/s, RSS per member, then a short chat among all of them."""
    rows: list[Row] = []
    for n in plan.idle_members:
        with running(plan, kind, f"idle{n}", queue_size=max(1024, 3 * n)) as server:
            bench = Bench(plan, gens, server)
            try:
                rows.append(_idle_at(plan, bench, n, log))
            finally:
                bench.leave_all()
    return rows


def _idle_at(plan: Plan, bench: Bench, n: int, log: Any) -> Row:
    bench.settle(timeout=2)
    rss0 = bench.server.rss_bytes()
    joined = bench.join(n, plan.connect_timeout)
    settled = bench.settle(timeout=60)
    time.sleep(plan.idle_seconds)
    rss1 = bench.server.rss_bytes()
    still_open = bench.open_members()
    row: Row = {"workload": "idle", "server": bench.server.kind, "members": n, **joined,
                "settle_seconds": settled, "open_after_idle": still_open,
                "rss_before": rss0, "rss_after": rss1,
                "rss_per_member": (rss1 - rss0) / joined["joined"] if joined["joined"] else None}
    if joined["joined"] > 1 and still_open == joined["joined"]:
        rate = max(1.0, plan.chat_deliveries / (joined["joined"] - 1))
        chat = bench.window(rate, plan.chat_seconds, "chat")
        row.update({f"chat_{k}": chat[k] for k in ("lost", "p50_ms", "p99_ms", "deliveries_per_s",
                                                    "cpu_us_per_delivery", "generator_limited")})
    log(f"  {bench.server.kind} idle N={n}: joined {joined['joined']} in {joined['connect_seconds']:.1f} s "
        f"({joined['connects_per_s']:.0f}/s), open {still_open}, RSS/member "
        f"{_kb(row['rss_per_member'])}, chat lost {row.get('chat_lost', '-')} p99 {row.get('chat_p99_ms', '-')} ms")
    return row


def slow(plan: Plan, gens: Generators, kind: str, log: Any) -> list[Row]:
    """N members, k of them stop reading: healthy members' loss and p99, server memory growth."""
    rows: list[Row] = []
    for stalled in plan.slow_stalled:
        with running(plan, kind, f"slow{stalled}", queue_size=1024) as server:
            bench = Bench(plan, gens, server)
            n = plan.slow_members
            victims = [bench.name(i) for i in range(n - stalled, n)]
            joined = bench.join(n, plan.connect_timeout, small_buffers=tuple(victims))
            try:
                if victims:
                    bench.stall(victims)
                seconds = plan.slow_seconds if stalled else min(plan.slow_seconds, plan.slow_baseline_seconds)
                row = bench.window(plan.slow_rate, seconds, f"{stalled} stalled", drain=max(3.0, seconds / 10),
                                   size=plan.slow_message_bytes)
                row.update({"workload": "slow", **joined, "stalled_fate": _fates(bench, victims)})
                rows.append(row)
                log(f"  {kind} slow {stalled} stalled: {describe(row)} fate {row['stalled_fate']}")
            finally:
                bench.leave_all()
    return rows


def _fates(bench: Bench, victims: list[str]) -> dict[str, int]:
    """Resume the stalled members and report how each connection ended (close code or state)."""
    if not victims:
        return {}
    bench.gens.call([{"cmd": "resume", "names": [n for n in mine if n in victims]} for mine in bench.names])
    time.sleep(2.0)
    answers = bench.gens.call([{"cmd": "status", "names": [n for n in mine if n in victims]}
                               for mine in bench.names])
    fates: dict[str, int] = {}
    for answer in answers:
        for state in answer["status"].values():
            fates[str(state)] = fates.get(str(state), 0) + 1
    return fates


def log_cost(plan: Plan, gens: Generators, log: Any, tmpfs: Path | None) -> list[Row]:
    """The tracker with chat.log on tmpfs, on disk, and with writing disabled."""
    disk = plan.results / "data" / "log-disk"
    configs: list[tuple[str, dict[str, Any]]] = [("disk", {"data_dir": disk}),
                                                 ("disabled", {"data_dir": disk / "off", "disable_log": True})]
    if tmpfs is not None:
        configs.insert(0, ("tmpfs", {"data_dir": tmpfs}))
    rows: list[Row] = []
    for name, options in configs:
        with running(plan, "tracker", f"log-{name}", **options) as server:
            bench = Bench(plan, gens, server)
            joined = bench.join(plan.log_members, plan.connect_timeout)
            try:
                windows = [bench.window(plan.log_rate, plan.fixed_seconds, name)
                           for _ in range(plan.log_repeats)]
            finally:
                bench.leave_all()
        row = {**median_row(windows), "workload": "log", "log_mode": name, **joined}
        rows.append(row)
        log(f"  tracker log {name}: {describe(row)}")
    return rows


def describe(row: Row) -> str:
    cpu = row.get("cpu_us_per_delivery")
    flag = " [generator-limited]" if row.get("generator_limited") else ""
    cost = f"CPU {cpu:.2f} us/delivery" if cpu else "no deliveries"
    return (f"{row['deliveries_per_s']:.0f} deliveries/s, lost {row['lost']}, "
            f"p50 {row['p50_ms']} ms p99 {row['p99_ms']} ms, {cost}, "
            f"server {row['server_cpu_share']:.0%} gen {row['generator_cpu_share']:.0%}{flag}")


def _kb(value: float | None) -> str:
    return "-" if value is None else f"{value / 1024:.1f} KiB"
