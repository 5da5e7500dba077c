"""The workloads: each starts a server, joins members through the generators, runs
measurement windows and returns rows for the results table.

A window: every generator resets its counters; publishers send at a fixed total
rate for a fixed time, each message stamped; then the harness waits (bounded)
until every expected delivery arrived. The server's CPU time (from /proc) over
the window divided by the deliveries the clients counted is the headline figure,
CPU us per delivery: it does not depend on how fast or busy the machine is.
Next to it, deliveries per write: the deliveries counted over the server's write
syscalls in the window (``syscw`` of /proc/PID/io), how many frames each write
carries on average, which the arrival pattern (``Plan.arrivals``) moves as much as
the server's code does.
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
from .native import NATIVE
from .servers import PASSWORD, TRACKERS, Server, ServerOptions

P99_LIMIT_MS = 100.0
# Member-name prefixes; the native ones are valid IRC nicks too (a letter, then digits).
PREFIXES = {"tracker": "t", "baseline": "b", "ceiling": "c", "typical": "y", "ngircd": "i", "redis": "r", "nodews": "n"}
MESSAGE_BYTES = 48  # text of a published message; the server prefixes "t12: "
# Server kinds whose members are told of every later join and whose clients count each such
# notice in Tally.notices (and its arrival in Tally.last_notice_ns): the join storm runs on these
# only. The value is 1 where a member is told of its own join as well (IRC's JOIN echo), else 0.
ANNOUNCES_JOINS = {"tracker": 0, "baseline": 0, "ngircd": 0}


@dataclass
class Plan:
    """What to run and how long; ``python -m bench`` fills it from its flags."""

    servers: tuple[str, ...] = ("tracker", "ceiling", "typical")
    workloads: tuple[str, ...] = ("fanout", "idle", "slow", "log")
    # Arrival patterns (bench.loadgen.ARRIVALS): the fixed-rate fan-out points run each of them;
    # everything else (the sweep, slow members, the chats, chat.log) runs the headline one.
    arrivals: tuple[str, ...] = ("poisson", "even", "lockstep")
    seed: int = 16  # seeds the Poisson arrivals: the same plan sends at the same moments
    members: tuple[int, ...] = (10, 100, 1000)
    fixed_rates: dict[int, float] = field(default_factory=lambda: {10: 1000.0, 100: 1000.0, 1000: 100.0})
    # The sweep's ladder (deliveries/s). It is searched, not walked: every other step up
    # until one fails, then the step in between; each member count starts one step below
    # the previous count's maximum for that server.
    step_deliveries: tuple[int, ...] = (20_000, 40_000, 80_000, 120_000, 160_000, 240_000, 320_000, 480_000, 640_000)
    step_seconds: float = 1.0
    step_start: int = 1  # ladder index the first member count's search starts at (40k)
    step_retries: int = 1  # a step that failed on p99 alone (nothing lost) is run again, at most this often per sweep
    fixed_seconds: float = 1.0
    repeats: int = 3
    publishers: int = 10
    idle_members: tuple[int, ...] = (1000, 5000)  # one server process grows through these sizes
    idle_seconds: float = 2.0
    connect_timeout: float = 120.0  # cap on any join, and on the tracker's joining the idle sizes
    reference_connect_cap: float = 45.0  # cap on a reference's joining the idle sizes (they cannot join 5,000)
    slow_members: int = 100
    slow_stalled: tuple[int, ...] = (1, 5)  # one server process each; the unstalled baseline runs in each first
    slow_rate: float = 500.0
    slow_message_bytes: int = 1024  # big enough to fill a stalled member's buffers within seconds
    slow_seconds: float = 12.0  # the stalled window (``--slow-seconds 60`` for the full minute)
    slow_baseline_seconds: float = 1.5  # each unstalled window before the stall
    slow_baseline_windows: int = 2
    log_rate: float = 1000.0
    log_members: int = 100
    log_repeats: int = 5
    warmup_seconds: float = 0.5  # an unmeasured window before each server's fixed-rate windows
    chat_deliveries: float = 50_000.0  # deliveries/s of the short chat among idle members
    chat_seconds: float = 1.5
    generators: int = 2
    concurrency: int = 50
    coalesce_ms: tuple[float, ...] = (0.0, 1.0, 2.0, 5.0, 10.0)  # the windows the `coalesce` workload compares
    coalesce_members: tuple[int, ...] = (100, 1000)
    join_members: tuple[int, ...] = (10_000,)  # the join storm's sizes, one server process each
    join_timeout: float = 600.0  # cap on a storm's joining, and again on its last notices arriving
    results: Path = Path("bench/results")
    # --baseline REF: the tracker of that commit, server kind "baseline", shown as baseline_label
    baseline_ref: str = ""
    baseline_commit: str = ""
    baseline_label: str = "baseline"
    baseline_tree: Path | None = None  # its extracted source tree (bench.baseline.checkout)

    @property
    def headline(self) -> str:
        """The arrival pattern of the headline figures: poisson when it is run, else the first listed."""
        return "poisson" if "poisson" in self.arrivals or not self.arrivals else self.arrivals[0]

    def label(self, kind: str) -> str:
        """How a server kind is named in the results: the baseline as ``tracker@<short sha>``."""
        return self.baseline_label if kind == "baseline" else kind


Row = dict[str, Any]


class Bench:
    """One server and the generators' members of it."""

    def __init__(self, plan: Plan, generators: Generators, server: Server, prefix: str | None = None) -> None:
        self.plan = plan
        self.gens = generators
        self.server = server
        # member names: t0, t1... on the tracker; c0... ; y0... (no prefix may start another)
        self.prefix = prefix or PREFIXES[server.kind]
        self.names: list[list[str]] = [[] for _ in range(len(generators))]
        self.stalled: set[str] = set()
        self.joined: Row = {}
        self.neighbours: list[Server] = []  # other servers running at the same time
        self.windows_run = 0  # numbers the windows, for the arrival seeds
        self.coalesce_ms: float | None = None  # the tracker's --coalesce-ms, in the coalesce workload
        self.passphrase = ""  # members join as registered accounts with it (bench.memory); "": as guests

    def name(self, index: int) -> str:
        return f"{self.prefix}{index}"

    # --- membership ----------------------------------------------------------------

    def join(self, count: int, timeout: float, small_buffers: tuple[str, ...] = (), first: int = 0) -> Row:
        """Join ``count`` members (named from index ``first``), spread round-robin over the generators;
        with ``self.passphrase``, as the registered accounts of those names (the tracker's data has them)."""
        split: list[list[str]] = [[] for _ in range(len(self.gens))]
        for index in range(first, first + count):
            split[index % len(split)].append(self.name(index))
        concurrency = self.plan.concurrency
        if self.server.listen_backlog:  # ngIRCd: more SYNs than its backlog wait 1 s each for a retry
            concurrency = min(concurrency, max(1, self.server.listen_backlog // len(split)))
        answers = self.gens.call(
            [
                {
                    "cmd": "connect",
                    "host": "127.0.0.1",
                    "port": self.server.port,
                    "path": self.server.path,
                    "password": PASSWORD,
                    "names": names,
                    "concurrency": concurrency,
                    "timeout": timeout,
                    "small_buffers": [name for name in names if name in small_buffers],
                    "protocol": self.server.protocol,
                    "passphrase": self.passphrase,
                }
                for names in split
            ],
            timeout=timeout + 30,
        )
        for mine, answer in zip(self.names, answers, strict=True):
            mine.extend(answer["members"])  # only those that joined count as recipients
        joined = sum(a["joined"] for a in answers)
        seconds = max(a["seconds"] for a in answers)
        errors: dict[str, int] = {}
        for answer in answers:
            for reason, n in answer["errors"].items():
                errors[reason] = errors.get(reason, 0) + n
        return {
            "joined": joined,
            "failed": count - joined,
            "connect_seconds": seconds,
            "connects_per_s": joined / seconds if seconds else 0.0,
            "connect_errors": errors,
        }

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
            time.sleep(0.1)
            after = sum(server.cpu_seconds() for server in servers)
            if after - before < 0.1 * idle_share:
                break
            before = after
        return time.monotonic() - started

    # --- one measurement window ------------------------------------------------------

    def window(
        self,
        rate: float,
        seconds: float,
        label: str,
        drain: float | None = None,
        size: int = MESSAGE_BYTES,
        arrivals: str | None = None,
    ) -> Row:
        """Publish ``rate`` messages/s for ``seconds`` from the first publishers; measure."""
        self.settle()
        pattern = arrivals or self.plan.headline
        publishers = [self.name(i) for i in range(min(self.plan.publishers, self.members))]
        healthy = self.members - len(self.stalled)
        self.gens.call_all({"cmd": "window_start", "prefix": self.prefix})
        cpu0, (rss0, samples) = self.server.cpu_seconds(), (self.server.rss_bytes(), [])
        writes0 = self.server.write_syscalls()
        wall0 = time.monotonic()
        start_ns = time.monotonic_ns() + 100_000_000
        commands = self._publish_commands(publishers, rate, seconds, start_ns, size, pattern)
        sent = self.gens.call(commands, timeout=seconds + 60, tick=lambda: samples.append(self.server.rss_bytes()))
        published = sum(sum(a["published"].values()) for a in sent)
        # Redis hands a PUBLISH to the publisher's own subscription too; the others to everyone else.
        expected = published * (healthy if self.server.echoes_own else healthy - 1)
        self._drain(expected, drain if drain is not None else max(1.0, seconds))
        ends = self.gens.call_all({"cmd": "window_end"})
        wall = time.monotonic() - wall0
        cpu = self.server.cpu_seconds() - cpu0
        writes1 = self.server.write_syscalls()
        samples.append(self.server.rss_bytes())
        row = self._row(label, rate, seconds, published, expected, ends, cpu, wall, rss0, samples, sent)
        row.update(arrivals=pattern, headline=pattern == self.plan.headline, **_spread(sent))
        row.update(_writes(row["received"], writes0, writes1, cpu))
        firsts = [a["first_slow_notice_ns"] for a in ends if a.get("first_slow_notice_ns")]
        row["first_drop_notice_s"] = (min(firsts) - start_ns) / 1e9 if firsts else None
        return row

    def _publish_commands(
        self, publishers: list[str], rate: float, seconds: float, start_ns: int, size: int, arrivals: str
    ) -> list[Row]:
        """One ``publish`` per generator: its publishers, its share of ``rate``, its seed and even-spacing slots."""
        self.windows_run += 1
        commands = []
        for index, mine in enumerate(self.names):
            own = [name for name in publishers if name in mine]
            commands.append(
                {
                    "cmd": "publish",
                    "names": own,
                    "rate": rate * len(own) / len(publishers) if publishers else 0.0,
                    "seconds": seconds,
                    "start_ns": start_ns,
                    "size": size,
                    "arrivals": arrivals,
                    "slots": [publishers.index(name) for name in own],
                    "period": len(publishers),
                    "seed": self.plan.seed * 1_000_003 + self.windows_run * 1009 + index,
                }
            )
        return commands

    def _drain(self, expected: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while True:
            received = int(sum(a["messages"] for a in self.gens.call_all({"cmd": "counts"})))
            if received >= expected or time.monotonic() > deadline:
                return received
            time.sleep(0.05)

    def _row(
        self,
        label: str,
        rate: float,
        seconds: float,
        published: int,
        expected: int,
        ends: list[Row],
        cpu: float,
        wall: float,
        rss0: int,
        samples: list[int],
        sent: list[Row],
    ) -> Row:
        received = sum(a["messages"] for a in ends)
        histogram: dict[int, int] = {}
        for answer in ends:
            for value, count in answer["latency_us"]:
                histogram[value] = histogram.get(value, 0) + count
        gen_shares = [a["cpu_seconds"] / a["wall_seconds"] for a in ends if a["wall_seconds"] > 0]
        gen_total = sum(gen_shares) / self.gens.core_count
        gen_cpu = sum(a["cpu_seconds"] for a in ends)
        return {
            "server": self.server.kind,
            "server_label": self.plan.label(self.server.kind),
            "label": label,
            "members": self.members,
            "stalled": len(self.stalled),
            "rate": rate,
            "seconds": seconds,
            "published": published,
            "publish_rate": published / seconds,
            "expected": expected,
            "received": received,
            "lost": max(0, expected - received),
            "extra": max(0, received - expected),  # more than was due: a duplicate, or a frame to a non-member
            "loss_share": (expected - received) / expected if expected else 0.0,
            "deliveries_per_s": received / seconds,
            "server_cpu_s": cpu,
            "server_cpu_share": cpu / wall if wall else 0.0,
            "cpu_us_per_delivery": cpu / received * 1e6 if received else None,
            **percentiles(histogram),
            "rss_start": rss0,
            "rss_end": samples[-1],
            "rss_growth": max(samples) - rss0,
            "notices": sum(a["notices"] for a in ends),
            "slow_notices": sum(a["slow_notices"] for a in ends),
            "errors": sum(a["errors"] for a in ends),
            "generator_cpu_share": gen_total,
            "generator_max_share": max(gen_shares, default=0.0),
            "generator_cpu_us_per_delivery": gen_cpu / received * 1e6 if received else None,
            "generator_limited": gen_total > BUSY_SHARE or max(gen_shares, default=0.0) > BUSY_SHARE,
        }


def _spread(sent: list[Row]) -> Row:
    """How evenly the room's messages went out: the most sent by all generators within one
    millisecond (``max_burst``; one stall of a generator, which shares its core with the other,
    sets it), the share of messages that shared their millisecond with another
    (``shared_ms_share``: the typical spread), the most by one generator in one lockstep tick
    or one millisecond (``max_process_burst``), and how late the paced patterns sent (ms)."""
    bins: dict[int, int] = {}
    for answer in sent:
        for ms, count in answer.get("bins", []):
            bins[ms] = bins.get(ms, 0) + count
    late = [answer.get("late_ns", [0, 0, 0]) for answer in sent]
    paced = sum(messages for messages, _, _ in late)
    total = sum(bins.values())
    return {
        "max_burst": max(bins.values(), default=0),
        "shared_ms_share": sum(n for n in bins.values() if n > 1) / total if total else None,
        "max_process_burst": max((a["max_burst"] for a in sent), default=0),
        "send_late_ms_mean": sum(total for _, total, _ in late) / paced / 1e6 if paced else None,
        "send_late_ms_max": max(worst for _, _, worst in late) / 1e6 if paced else None,
    }


def _writes(received: int, before: int | None, after: int | None, cpu: float) -> Row:
    """The server's write syscalls in a window and the deliveries each carried (None if unreadable)."""
    writes = after - before if before is not None and after is not None else None
    return {
        "server_writes": writes,
        "deliveries_per_write": received / writes if writes else None,
        "cpu_us_per_write": cpu / writes * 1e6 if writes else None,
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
    return row["lost"] == 0 and row["p99_ms"] is not None and row["p99_ms"] < P99_LIMIT_MS and kept_rate(row)


def kept_rate(row: Row) -> bool:
    """Whether the publishers kept up: lockstep sent at least 95 % of the asked messages; the
    paced patterns send every message due in the window (a Poisson window's count varies by
    chance, by 10 % at 100 messages), so falling behind shows as lateness instead: on average
    no more late than 5 % of the window."""
    late = row.get("send_late_ms_mean")
    if late is not None:
        return bool(late <= 0.05 * row["seconds"] * 1000)
    return bool(row["published"] >= 0.95 * row["rate"] * row["seconds"] - 2)


@contextmanager
def running(plan: Plan, kind: str, tag: str, **options: Any) -> Iterator[Server]:
    with running_all(plan, [(kind, tag, options)]) as servers:
        yield servers[0]


@contextmanager
def running_all(plan: Plan, specs: list[tuple[str, str, dict[str, Any]]]) -> Iterator[list[Server]]:
    """Start every (kind, tag, options) server at once, then wait until all are ready."""
    servers: list[Server] = []
    try:
        for kind, tag, given in specs:
            options = dict(given)
            data_dir = options.pop("data_dir", plan.results / "data" / f"{kind}-{tag}")
            if kind == "baseline":
                options.setdefault("source", plan.baseline_tree)
            shutil.rmtree(data_dir, ignore_errors=True)  # a fresh chat.log for every run
            prepare = options.pop("prepare", None)  # writes what the server finds at start (accounts)
            if prepare is not None:
                prepare(data_dir)
            servers.append(
                Server(ServerOptions(kind=kind, data_dir=data_dir, log_dir=plan.results / "logs", **options))
            )
        for server in servers:
            server.wait_ready()
        yield servers
    finally:
        for server in servers:
            server.stop()


def median_row(rows: list[Row], key: str = "cpu_us_per_delivery") -> Row:
    """The window with the median ``key`` (CPU per delivery), annotated with the spread."""
    ranked = sorted(rows, key=lambda r: r[key] if r[key] is not None else float("inf"))
    row = dict(ranked[len(ranked) // 2])
    values = [r["cpu_us_per_delivery"] for r in rows if r["cpu_us_per_delivery"]]
    row["cpu_us_spread"] = [min(values), max(values)] if values else None
    p99s = [r["p99_ms"] for r in rows if r["p99_ms"] is not None]
    row["p99_spread"] = [min(p99s), max(p99s)] if p99s else None
    row["repeats"] = len(rows)
    row["cpu_us_windows"] = [r["cpu_us_per_delivery"] for r in rows]  # in the order run: pairs with a neighbour's
    return row


# --- the workloads -----------------------------------------------------------------------


def fanout(plan: Plan, gens: Generators, log: Any) -> list[Row]:
    """Fixed-rate points and a searched sweep at each member count, the servers interleaved.

    All servers run at once (idle but for keepalives when not measured), each with its
    own members, and every measurement is taken for each server in turn: a burst of
    noise on the machine then falls on all three rather than on one.
    """
    rows: list[Row] = []
    previous: dict[str, int] = {}  # ladder index of each server's maximum at the previous N
    for n in plan.members:
        with ExitStack() as stack:
            servers = stack.enter_context(running_all(plan, [(kind, f"fanout{n}", {}) for kind in plan.servers]))
            benches = [Bench(plan, gens, server) for server in servers]
            for bench in benches:
                bench.neighbours = [other.server for other in benches if other is not bench]
                stack.callback(bench.leave_all)
                joined = bench.join(n, plan.connect_timeout)
                bench.joined = joined
                if joined["failed"]:
                    log(f"  {bench.server.kind} N={n}: {joined['failed']} failed to join: {joined['connect_errors']}")
            rows.extend(_fixed(plan, benches, n, log))
            rows.extend(_sweep(plan, benches, n, log, previous))
    return rows


def _fixed(plan: Plan, benches: list[Bench], n: int, log: Any) -> list[Row]:
    """The fixed-rate point at ``n``: for every arrival pattern, the median of ``repeats`` windows."""
    rate = plan.fixed_rates.get(n, 100_000 / max(1, n - 1))
    patterns = plan.arrivals or (plan.headline,)
    windows = _interleaved_windows(plan, benches, rate, patterns, "fixed")
    rows = []
    for arrivals in patterns:
        for index, bench in enumerate(benches):
            row = {**median_row(windows[index, arrivals]), "workload": "fanout-fixed", **bench.joined}
            rows.append(row)
            log(f"  {bench.server.kind} N={n} fixed {rate:g} msg/s {arrivals}: {describe(row)}")
    return rows


def _interleaved_windows(
    plan: Plan, benches: list[Bench], rate: float, patterns: tuple[str, ...], label: str
) -> dict[tuple[int, str], list[Row]]:
    """``repeats`` windows at ``rate`` for every (bench, pattern), keyed by (bench index, pattern).

    The windows go round the servers, and within a round round the patterns, so that noise on
    the machine falls on every (server, pattern) pair alike; every other round runs in reverse,
    so no server is always first after a settle.
    """
    windows: dict[tuple[int, str], list[Row]] = {(i, a): [] for i in range(len(benches)) for a in patterns}
    for bench in benches:  # the first traffic after joining costs more (buffers, TCP windows): not counted
        bench.window(rate, plan.warmup_seconds, "warm-up")
    order = list(enumerate(benches))
    for repeat in range(plan.repeats):
        forward = repeat % 2 == 0
        for arrivals in patterns if forward else patterns[::-1]:
            for index, bench in order if forward else order[::-1]:
                windows[index, arrivals].append(bench.window(rate, plan.fixed_seconds, label, arrivals=arrivals))
    return windows


class Search:
    """One server's search of the sweep ladder for its highest passing step.

    Up two steps at a time from ``start`` while steps pass; after the first failure
    (or a failing start), bisect between the highest pass and the lowest failure. A
    step that failed on a p99 spike alone (nothing lost, the rate kept, p50 under
    10 ms) is run once more and the second result counts: one p99 spike on a shared
    machine no longer ends a sweep. Assumes, as any sweep does, that a rate passes when a higher one does.
    """

    def __init__(self, steps: int, start: int, retries: int) -> None:
        self.steps = steps
        self.start = max(0, min(start, steps - 1))
        self.retries = retries
        self.passed = -1  # highest passing index
        self.failed = steps  # lowest failing index
        self.retry: int | None = None
        self.best: Row | None = None
        self.failure: Row | None = None

    def next(self) -> int | None:
        if self.retry is not None:
            return self.retry
        if self.passed == self.steps - 1 or self.failed - self.passed <= 1:
            return None
        if self.failed == self.steps:  # nothing failed yet: climb
            return self.start if self.passed < 0 else min(self.steps - 1, self.passed + 2)
        return (self.passed + self.failed) // 2

    def record(self, index: int, row: Row) -> None:
        retried, self.retry = self.retry is not None, None
        if passes(row):
            if index > self.passed:
                self.passed, self.best = index, row
        elif not retried and self.retries > 0 and _spike(row):
            self.retries -= 1
            self.retry = index
        elif index < self.failed:
            self.failed, self.failure = index, row


def _spike(row: Row) -> bool:
    """Failed on p99 alone while the median stayed low: a spike, not a server out of CPU
    (an overloaded server builds a backlog, and then its p50 climbs too)."""
    return row["lost"] == 0 and kept_rate(row) and row["p50_ms"] is not None and row["p50_ms"] < P99_LIMIT_MS / 10


def _sweep(plan: Plan, benches: list[Bench], n: int, log: Any, previous: dict[str, int]) -> list[Row]:
    """Search the ladder for every server, interleaved; its best passing step is its maximum."""
    rows: list[Row] = []
    ladder = sorted(plan.step_deliveries)
    searches = {
        bench.server.kind: Search(
            len(ladder),
            previous[bench.server.kind] - 1 if bench.server.kind in previous else plan.step_start,
            plan.step_retries,
        )
        for bench in benches
    }
    for _ in range(4 * len(ladder)):  # bounded; a search ends in about log2(len) + len/2 steps
        todo = [(bench, index) for bench in benches if (index := searches[bench.server.kind].next()) is not None]
        if not todo:
            break
        for bench, index in todo:
            deliveries = ladder[index]
            rate = deliveries / max(1, n - 1)
            step = {**bench.window(rate, plan.step_seconds, f"step {deliveries}"), "workload": "fanout-step"}
            rows.append(step)
            kind = bench.server.kind
            search = searches[kind]
            search.record(index, step)
            verdict = "ok" if passes(step) else ("FAIL, once more" if search.retry == index else "FAIL")
            log(f"  {kind} N={n} step {rate:.0f} msg/s: {describe(step)} {verdict}")
    for bench in benches:
        kind = bench.server.kind
        search = searches[kind]
        previous[kind] = max(0, search.passed)
        rows.append(_best_row(kind, n, search.best, search.failure, plan.label(kind)))
    return rows


def _best_row(kind: str, n: int, best: Row | None, failure: Row | None, label: str) -> Row:
    """The sweep's verdict: highest passing delivered rate, and whether the generator capped it."""
    capped = bool(failure and failure["generator_limited"])
    failed_at = None if failure is None else failure["rate"]
    if best is None:
        return {
            "workload": "fanout-max",
            "server": kind,
            "server_label": label,
            "members": n,
            "deliveries_per_s": 0.0,
            "generator_limited": capped,
            "failed_at": failed_at,
        }
    return {
        **best,
        "workload": "fanout-max",
        "generator_limited": best["generator_limited"] or capped,
        "failed_at": failed_at,
    }


def idle(plan: Plan, gens: Generators, kind: str, log: Any) -> list[Row]:
    """Connect and idle: one server grows through the sizes (1,000 then 5,000 members).

    At each size: connects/s and RSS per member (both counted from the empty server) and
    how many are still open after an idle pause; at the largest, a short chat among all
    of them (the fan-out workload already chats among 1,000).
    The whole join is capped (``reference_connect_cap`` for the references, which cannot
    join 5,000 in any reasonable time; ``connect_timeout`` for the tracker): a server
    that cannot join a size in that time is reported with the members it had.
    """
    rows: list[Row] = []
    with running(plan, kind, "idle", queue_size=max(1024, 3 * max(plan.idle_members))) as server:
        bench = Bench(plan, gens, server)
        try:
            bench.settle(timeout=2)
            rss0 = bench.server.rss_bytes()
            cap = plan.connect_timeout if kind in TRACKERS else min(plan.connect_timeout, plan.reference_connect_cap)
            total: Row = {"joined": 0, "connect_seconds": 0.0, "connect_errors": {}, "cap": cap}
            for n in sorted(plan.idle_members):
                left = cap - total["connect_seconds"]  # joining time only, not the pauses and chats
                more = n - bench.members
                if more > 0 and left > 0.5:
                    joined = bench.join(more, left, first=bench.members)
                    total["joined"] += joined["joined"]
                    total["connect_seconds"] += joined["connect_seconds"]
                    for reason, count in joined["connect_errors"].items():
                        total["connect_errors"][reason] = total["connect_errors"].get(reason, 0) + count
                elif more > 0:
                    total["connect_errors"]["not attempted in time"] = (
                        total["connect_errors"].get("not attempted in time", 0) + more
                    )
                rows.append(_idle_at(plan, bench, n, dict(total), rss0, log, chat=n == max(plan.idle_members)))
        finally:
            bench.leave_all()
    return rows


def _idle_at(plan: Plan, bench: Bench, n: int, total: Row, rss0: int, log: Any, chat: bool) -> Row:
    joined_n = total["joined"]
    seconds = total["connect_seconds"]
    settled = bench.settle(timeout=15)
    time.sleep(plan.idle_seconds)  # the idle pause itself: what is measured is what survives it
    rss1 = bench.server.rss_bytes()
    still_open = bench.open_members()
    row: Row = {
        "workload": "idle",
        "server": bench.server.kind,
        "server_label": plan.label(bench.server.kind),
        "members": n,
        "joined": joined_n,
        "failed": n - joined_n,
        "connect_seconds": seconds,
        "connects_per_s": joined_n / seconds if seconds else 0.0,
        "connect_errors": dict(total["connect_errors"]),
        "connect_cap_s": total["cap"],
        "settle_seconds": settled,
        "open_after_idle": still_open,
        "rss_before": rss0,
        "rss_after": rss1,
        "rss_per_member": (rss1 - rss0) / joined_n if joined_n else None,
    }
    if chat and joined_n > 1 and still_open == joined_n:
        rate = max(1.0, plan.chat_deliveries / (joined_n - 1))
        window = bench.window(rate, plan.chat_seconds, "chat")
        row.update(
            {
                f"chat_{k}": window[k]
                for k in ("lost", "p50_ms", "p99_ms", "deliveries_per_s", "cpu_us_per_delivery", "generator_limited")
            }
        )
    log(
        f"  {bench.server.kind} idle N={n}: joined {joined_n} in {seconds:.1f} s "
        f"({row['connects_per_s']:.0f}/s), open {still_open}, RSS/member "
        f"{_kb(row['rss_per_member'])}, chat lost {row.get('chat_lost', '-')} p99 {row.get('chat_p99_ms', '-')} ms"
    )
    return row


def slow(plan: Plan, gens: Generators, kind: str, log: Any) -> list[Row]:
    """N members, k of them stop reading: healthy members' loss and p99, server memory growth.

    One server process per k. In each, all N members join (the k that will stall with
    small receive buffers) and the unstalled baseline windows run first, every member
    reading; then the k stop reading for one long window. The unstalled row is the
    window with the median p99 over every baseline window of this server, so the p99
    ratio no longer rests on one short window from a separate process. (Loopback TCP
    still buffers about 3 MiB for a stalled socket, which takes about 6 s at 500 KiB/s,
    before a server feels anything; the tracker then drops it about 2 s later, when its
    1,024-event outbox is full: hence stalled windows of 12 s.)
    """
    if kind in NATIVE:
        # The native anchors are fan-out and idle references only: their clients have no
        # close codes or "too slow" notices to report a stalled member's fate with.
        log(f"  {kind} slow: skipped (native reference)")
        return []
    rows: list[Row] = []
    baselines: list[Row] = []
    for stalled in plan.slow_stalled:
        with running(plan, kind, f"slow{stalled}", queue_size=1024) as server:
            bench = Bench(plan, gens, server)
            n = plan.slow_members
            victims = [bench.name(i) for i in range(n - stalled, n)]
            joined = bench.join(n, plan.connect_timeout, small_buffers=tuple(victims))
            try:
                for _ in range(plan.slow_baseline_windows):
                    base = bench.window(
                        plan.slow_rate, plan.slow_baseline_seconds, "0 stalled", drain=1.0, size=plan.slow_message_bytes
                    )
                    baselines.append({**base, "workload": "slow", **joined, "stalled_fate": {}})
                if not stalled:
                    continue
                bench.stall(victims)
                row = bench.window(
                    plan.slow_rate, plan.slow_seconds, f"{stalled} stalled", drain=1.5, size=plan.slow_message_bytes
                )
                row.update({"workload": "slow", **joined, "stalled_fate": _fates(bench, victims)})
                rows.append(row)
                log(
                    f"  {kind} slow {stalled} stalled: {describe(row)} fate {row['stalled_fate']}"
                    + (
                        f", first drop notice after {row['first_drop_notice_s']:.1f} s"
                        if row.get("first_drop_notice_s") is not None
                        else ""
                    )
                )
            finally:
                bench.leave_all()
    if baselines:
        base = median_row(baselines, key="p99_ms")
        rows.insert(0, base)
        log(f"  {kind} slow 0 stalled (median p99 of {len(baselines)} windows): {describe(base)}")
    return rows


def _fates(bench: Bench, victims: list[str], timeout: float = 1.0) -> dict[str, int]:
    """Resume the stalled members and report how each connection ended (close code or state).

    Polls (bounded) until none of them is still joined; a reference that buffers for a
    stalled member keeps it joined, and is reported so after ``timeout``.
    """
    if not victims:
        return {}
    bench.gens.call([{"cmd": "resume", "names": [n for n in mine if n in victims]} for mine in bench.names])
    deadline = time.monotonic() + timeout
    while True:
        answers = bench.gens.call(
            [{"cmd": "status", "names": [n for n in mine if n in victims]} for mine in bench.names]
        )
        states = [state for answer in answers for state in answer["status"].values()]
        if "joined" not in states or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    fates: dict[str, int] = {}
    for state in states:
        fates[str(state)] = fates.get(str(state), 0) + 1
    return fates


LOG_PREFIXES = {
    "tracker": {"tmpfs": "tm", "disk": "td", "disabled": "tx"},
    "baseline": {"tmpfs": "bm", "disk": "bd", "disabled": "bx"},
}


def log_cost(plan: Plan, gens: Generators, log: Any, tmpfs: Path | None) -> list[Row]:
    """The tracker with chat.log on tmpfs, on disk, and with writing disabled, interleaved.

    Three tracker processes run at once (six with ``--baseline``: the baseline's three
    too), each with its own members, and the windows go round them in turn (as in the
    fan-out sweep), so machine noise falls on all of them.
    """
    data = plan.results / "data"
    kinds = [kind for kind in plan.servers if kind in TRACKERS]
    configs: list[tuple[str, str, dict[str, Any]]] = []
    for name in ("tmpfs", "disk", "disabled"):
        for kind in kinds:
            own = "" if kind == "tracker" else f"{kind}-"
            if name == "tmpfs" and tmpfs is not None:
                configs.append((kind, name, {"data_dir": tmpfs / kind}))
            elif name == "disk":
                configs.append((kind, name, {"data_dir": data / f"{own}log-disk"}))
            elif name == "disabled":
                configs.append((kind, name, {"data_dir": data / f"{own}log-off", "disable_log": True}))
    rows: list[Row] = []
    with ExitStack() as stack:
        benches: list[tuple[tuple[str, str], Bench, Row]] = []
        servers = stack.enter_context(
            running_all(plan, [(kind, f"log-{name}", options) for kind, name, options in configs])
        )
        for (kind, name, _), server in zip(configs, servers, strict=True):
            bench = Bench(plan, gens, server, prefix=LOG_PREFIXES[kind][name])
            stack.callback(bench.leave_all)
            benches.append(((kind, name), bench, bench.join(plan.log_members, plan.connect_timeout)))
        for _, bench, _ in benches:
            bench.neighbours = [other.server for _, other, _ in benches if other is not bench]
        windows: dict[tuple[str, str], list[Row]] = {key: [] for key, _, _ in benches}
        for _, bench, _ in benches:
            bench.window(plan.log_rate, plan.warmup_seconds, "warm-up")
        for repeat in range(plan.log_repeats):
            for key, bench, _ in benches if repeat % 2 == 0 else benches[::-1]:
                windows[key].append(bench.window(plan.log_rate, plan.fixed_seconds, key[1]))
        for key, _, joined in benches:
            row = {**median_row(windows[key]), "workload": "log", "log_mode": key[1], **joined}
            rows.append(row)
            log(f"  {key[0]} log {key[1]}: {describe(row)}")
    return rows


def extra_note(row: Row) -> str:
    """Deliveries beyond those due, said only when there are some: none is ever right."""
    return f", EXTRA {row['extra']}" if row.get("extra") else ""


def describe(row: Row) -> str:
    cpu = row.get("cpu_us_per_delivery")
    flag = " [generator-limited]" if row.get("generator_limited") else ""
    per_write = row.get("deliveries_per_write")
    cost = f"CPU {cpu:.2f} us/delivery" if cpu else "no deliveries"
    cost += f", {per_write:.2f} deliveries/write" if per_write else ""
    cost += f", burst {row['max_burst']}" if row.get("max_burst") else ""
    return (
        f"{row['deliveries_per_s']:.0f} deliveries/s, lost {row['lost']}{extra_note(row)}, "
        f"p50 {row['p50_ms']} ms p99 {row['p99_ms']} ms, {cost}, "
        f"server {row['server_cpu_share']:.0%} gen {row['generator_cpu_share']:.0%}{flag}"
    )


# --- the join storm ------------------------------------------------------------------------


def joins(plan: Plan, gens: Generators, kind: str, log: Any) -> list[Row]:
    """Join storm: N members join one after another, every join announced to all already in.

    Per size one fresh server process. Members join as fast as the generators can (at most
    ``concurrency`` handshakes in flight per generator); the k-th to join hears the joins of
    the N-k after it, N(N-1)/2 notices in all (50 million at 10,000), which the clients count
    without parsing. Reported: wall time from the first connect to the moment the last notice
    arrived, the server's CPU seconds, write syscalls and peak RSS (VmHWM), and any member the
    server dropped (the tracker's outbox is made big enough, 4 events per member, that it
    should drop none: a drop is a finding).
    """
    if kind not in ANNOUNCES_JOINS:
        log(f"  {kind} joins: skipped (its members are not told of joins)")
        return []
    rows = []
    for n in plan.join_members:
        with running(plan, kind, f"joins{n}", queue_size=max(1024, 4 * n)) as server:
            bench = Bench(plan, gens, server)
            try:
                row = _storm(plan, bench, n)
            finally:
                server.stop()  # before the members go: 10,000 leaves would each be announced too
                bench.leave_all()
        rows.append(row)
        log(
            f"  {kind} joins N={n}: {row['joined']} joined in {row['connect_seconds']:.1f} s, last notice after "
            f"{_num(row['seconds'])} s, {row['notices']:,} of {row['expected_notices']:,} notices, server CPU "
            f"{row['server_cpu_s']:.1f} s ({_num(row['cpu_us_per_delivery'])} us/notice, "
            f"{_num(row['deliveries_per_write'])} per write), peak RSS {row['peak_rss'] / 2**20:.0f} MiB, "
            f"dropped {row['dropped']}, gen {row['generator_cpu_share']:.0%}"
        )
    return rows


def _storm(plan: Plan, bench: Bench, n: int) -> Row:
    server = bench.server
    bench.settle(timeout=2)
    bench.gens.call_all({"cmd": "window_start", "prefix": bench.prefix})
    cpu0, writes0, start_ns = server.cpu_seconds(), server.write_syscalls(), time.monotonic_ns()
    joined = bench.join(n, plan.join_timeout)
    members = joined["joined"]
    expected = members * (members - 1) // 2 + ANNOUNCES_JOINS[server.kind] * members
    notices = _wait_for_notices(bench, expected, plan.join_timeout)
    cpu, writes1 = server.cpu_seconds() - cpu0, server.write_syscalls()
    ends = bench.gens.call_all({"cmd": "window_end"})
    last = max(a["last_notice_ns"] for a in ends)
    still_open = bench.open_members()
    wall = sum(a["wall_seconds"] for a in ends) / len(ends)
    gen_cpu = sum(a["cpu_seconds"] for a in ends)
    return {
        "workload": "joins",
        "server": server.kind,
        "server_label": bench.plan.label(server.kind),
        "members": n,
        **joined,
        "expected_notices": expected,
        "notices": notices,
        "lost_notices": max(0, expected - notices),
        "seconds": (last - start_ns) / 1e9 if last else None,
        "server_cpu_s": cpu,
        "cpu_us_per_delivery": cpu / notices * 1e6 if notices else None,
        **_writes(notices, writes0, writes1, cpu),
        "peak_rss": server.hwm_bytes(),
        "dropped": members - still_open,
        "slow_notices": sum(a["slow_notices"] for a in ends),
        "generator_cpu_share": gen_cpu / wall / bench.gens.core_count if wall else 0.0,
        "generator_cpu_us_per_delivery": gen_cpu / notices * 1e6 if notices else None,
        "queue_size": server.options.queue_size,
    }


def _wait_for_notices(bench: Bench, expected: int, timeout: float, stuck: float = 15.0) -> int:
    """Poll the notice count until ``expected``, ``timeout`` s, or ``stuck`` s without progress."""
    deadline = time.monotonic() + timeout
    seen, moved = -1, time.monotonic()
    while True:
        count = int(sum(a["notices"] for a in bench.gens.call_all({"cmd": "counts"})))
        now = time.monotonic()
        if count != seen:
            seen, moved = count, now
        if count >= expected or now > deadline or now - moved > stuck:
            return count
        time.sleep(0.1)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _kb(value: float | None) -> str:
    return "-" if value is None else f"{value / 1024:.1f} KiB"


# The coalescing windows' trackers run side by side, so each needs its own member names.
COALESCE_PREFIXES = ("ka", "kb", "kc", "kd", "ke", "kf", "kg", "kh")


def coalesce(plan: Plan, gens: Generators, log: Any) -> list[Row]:
    """The tracker with each ``--coalesce-ms`` window, side by side: CPU per delivery against latency.

    One tracker process per window, all running at once with their own members, measured
    window by window in turn as in ``fanout`` (the same fixed rates and arrival patterns), so
    noise on the machine falls on every window alike. Each row carries its ``coalesce_ms``.
    """
    if len(plan.coalesce_ms) > len(COALESCE_PREFIXES):
        raise ValueError(f"at most {len(COALESCE_PREFIXES)} coalescing windows at once")
    rows: list[Row] = []
    for n in plan.coalesce_members:
        specs = [
            ("tracker", f"coalesce{n}-{ms:g}", {"extra_env": {"TRACKER_COALESCE_MS": f"{ms:g}"}})
            for ms in plan.coalesce_ms
        ]
        with ExitStack() as stack:
            servers = stack.enter_context(running_all(plan, specs))
            prefixes = COALESCE_PREFIXES[: len(servers)]
            benches = [Bench(plan, gens, server, prefix) for server, prefix in zip(servers, prefixes, strict=True)]
            for bench, ms in zip(benches, plan.coalesce_ms, strict=True):
                stack.callback(bench.leave_all)
                bench.joined = bench.join(n, plan.connect_timeout)
                bench.coalesce_ms = ms
            rows.extend(_coalesce_at(plan, benches, n, log))
    return rows


def _coalesce_at(plan: Plan, benches: list[Bench], n: int, log: Any) -> list[Row]:
    rate = plan.fixed_rates.get(n, 100_000 / max(1, n - 1))
    patterns = tuple(a for a in plan.arrivals if a != "lockstep") or (plan.headline,)
    windows = _interleaved_windows(plan, benches, rate, patterns, "coalesce")
    rows = []
    for arrivals in patterns:
        for index, bench in enumerate(benches):
            ms = bench.coalesce_ms
            row = {
                **median_row(windows[index, arrivals]),
                "workload": "coalesce",
                "coalesce_ms": ms,
                "server_label": f"tracker --coalesce-ms {ms:g}",
                **bench.joined,
            }
            rows.append(row)
            log(f"  tracker --coalesce-ms {ms:g} N={n} {rate:g} msg/s {arrivals}: {describe(row)}")
    return rows
