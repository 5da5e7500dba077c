"""``--workloads replicas``: tracker replicas on one Redis against the single process, same load, one run.

At each room size N (``--members``, default 100 and 1,000) the harness starts, all at
once and each with its own N members:

- the single process (``tracker``, no Redis), the reference;
- for each count R of ``--replica-counts`` (default 1,2,3) one *replica set*: a
  redis-server (AOF, ``appendfsync always``, its data directory a fresh temporary
  directory, loopback only), R replicas (``chat-tracker`` with ``TRACKER_REDIS_URL``)
  and one archiver (``chat-tracker archive``), every process pinned to the server
  core like the single process. The N members are spread round-robin over the R
  replicas (member i on replica i mod R), each generator connection to one replica.

Then the windows go round the configurations as in the fan-out workload
(``workloads._interleaved_windows``: the same generator, the same fixed rate
``--rate`` or ``Plan.fixed_rates``, the same arrival pattern, the headline one), and
each configuration's row is the median of ``--repeats`` windows. A replica set's CPU
is every one of its processes' CPU from /proc (replicas + redis-server + archiver),
also broken down by part; its deliveries per write are the deliveries over the
replicas' write syscalls (the processes that write to members). Latency is the
generator's stamp-to-receipt time, as for the single process.

After the windows, every configuration's chat.log is checked (the archiver's, once it
has caught up, bounded in time): sequence numbers contiguous, and as many message
lines as the generators published. A set whose process died, or whose chat.log lacks
or repeats a message, is reported in the row (``integrity``) and printed.

``lines(rows)`` is the results.md section; ``capacity(rows, cores)`` the figures it
derives for 8, 16 and 32 cores (assumptions in its docstring).
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .generators import Generators
from .servers import PASSWORD, Server, ServerOptions, free_port, memory, pinned, process_cpu_seconds, write_syscalls
from .workloads import MESSAGE_BYTES, Bench, Plan, Row, _interleaved_windows, describe, median_row

REPLICA_PREFIXES = ("ua", "ub", "uc", "ud", "ue", "uf")  # member names of the replica sets, one prefix each
SINGLE_PREFIX = "t"
AIM_RATIO = 1.3  # issue 15: total CPU per delivery with Redis within 1.3x of the single process
CAPACITY_CORES = (8, 16, 32)
CATCH_UP_SECONDS = 15.0  # cap on waiting for an archiver to have written everything to chat.log


@dataclass(frozen=True)
class ReplicaOptions:
    """What ``--workloads replicas`` runs; ``python -m bench`` fills it from its flags."""

    counts: tuple[int, ...] = (1, 2, 3)
    members: tuple[int, ...] = (100, 1000)
    rate: float | None = None  # msg/s at every N; None: Plan.fixed_rates (100000/(N-1) elsewhere)
    # Redis's fsync policy: "always" (what the replicas require) or, to see what durability costs,
    # "everysec" (the replicas then run with TRACKER_REDIS_VOLATILE=1, i.e. --redis-volatile).
    appendfsync: str = "always"

    def rate_at(self, plan: Plan, n: int) -> float:
        return self.rate if self.rate is not None else plan.fixed_rates.get(n, 100_000 / max(1, n - 1))


def available() -> str | None:
    """Why the workload cannot run here (no redis-server), else None."""
    return None if shutil.which("redis-server") else "redis-server not found (Debian: apt-get install redis-server)"


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class ReplicaSet(Server):
    """One redis-server, ``count`` replicas and one archiver, seen by ``Bench`` as one server.

    ``port`` is the first replica's; ``ReplicaBench.join`` spreads members over ``ports``.
    CPU, RSS and write syscalls are summed over the parts (the writes over the replicas only).
    Every ``cpu_seconds`` call keeps its parts in ``marks``: a window's breakdown is the
    difference of the last two (``Bench.window`` reads the CPU once before and once after,
    and nothing else reads it in between).
    """

    def __init__(
        self, count: int, tag: str, data_dir: Path, log_dir: Path, core: str | None = "0", appendfsync: str = "always"
    ) -> None:
        # No Server.__init__: there is no single process; the attributes Bench reads are set here.
        self.kind = "replicas"
        self.appendfsync = appendfsync
        self.count = count
        self.path = "/ws"
        self.protocol = "ws"
        self.echoes_own = False
        self.ready_line = "Listening on"
        self.listen_backlog = None
        self.marks: list[dict[str, float]] = []
        log_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(data_dir, ignore_errors=True)
        self.options = ServerOptions(kind="tracker", data_dir=data_dir, log_dir=log_dir, core=core)
        self.redis_dir = Path(tempfile.mkdtemp(prefix=f"bench-redis-{tag}-"))
        self.redis_port = free_port()
        self.url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.replicas: list[Server] = []
        self.archiver: subprocess.Popen[bytes] | None = None
        self.redis = subprocess.Popen(
            pinned(
                [
                    "redis-server",
                    "--port",
                    str(self.redis_port),
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    str(self.redis_dir),
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    appendfsync,
                    "--save",
                    "",
                    "--daemonize",
                    "no",
                    "--logfile",
                    str(self.redis_dir / "redis.log"),
                ],
                core,
            ),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.pid = self.redis.pid
        try:
            self._wait_redis()
            env = {"TRACKER_REDIS_URL": self.url}
            if appendfsync != "always":
                env["TRACKER_REDIS_VOLATILE"] = "1"
            self.replicas = [
                Server(
                    ServerOptions(
                        kind="tracker", data_dir=data_dir / f"replica{i}", log_dir=log_dir, core=core, extra_env=env
                    )
                )
                for i in range(count)
            ]
            self.port = self.replicas[0].port
            self.ports = [replica.port for replica in self.replicas]
            self.chat_log = data_dir / "archive" / "chat.log"
            self.archiver_output = log_dir / f"archiver-{tag}-{self.redis_port}.out"
            with self.archiver_output.open("wb") as output:
                self.archiver = subprocess.Popen(
                    pinned(
                        [
                            sys.executable,
                            "-m",
                            "chat_tracker.runtime.archive_cli",
                            "--redis-url",
                            self.url,
                            "--data-dir",
                            str(self.chat_log.parent),
                            "--host",
                            "127.0.0.1",
                            "--port",
                            "0",
                        ],
                        core,
                    ),
                    env={**os.environ, "TRACKER_PASSWORD": PASSWORD},
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
        except BaseException:
            self.stop()
            raise

    def _wait_redis(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.redis.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.redis.returncode}: {self._redis_log()}")
            if _ping(self.redis_port):
                return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer PING in {timeout} s: {self._redis_log()}")

    def _redis_log(self) -> str:
        path = self.redis_dir / "redis.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else "(no log)"

    def wait_ready(self, timeout: float = 30.0) -> None:
        for replica in self.replicas:
            replica.wait_ready(timeout)
        self.port = self.replicas[0].port  # a replica whose port was taken was started on another one
        self.ports = [replica.port for replica in self.replicas]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.archiver is not None
            if self.archiver.poll() is not None:
                raise RuntimeError(f"archiver exited with {self.archiver.returncode}: {self.archiver_text()[-2000:]}")
            if self.ready_line in self.archiver_text():
                return
            time.sleep(0.05)
        raise RuntimeError(f"archiver not ready in {timeout} s: {self.archiver_text()[-2000:]}")

    def archiver_text(self) -> str:
        try:
            return self.archiver_output.read_text(errors="replace")
        except OSError:
            return ""

    def output(self) -> str:
        return "\n".join(replica.output() for replica in self.replicas) + self.archiver_text()

    def pids(self) -> dict[str, list[int]]:
        archiver = [self.archiver.pid] if self.archiver is not None else []
        return {"replicas": [r.pid for r in self.replicas], "redis": [self.redis.pid], "archiver": archiver}

    def parts(self) -> dict[str, float]:
        """CPU seconds so far of the replicas (together), redis-server and the archiver."""
        return {part: sum(process_cpu_seconds(pid) for pid in pids) for part, pids in self.pids().items()}

    def cpu_seconds(self) -> float:
        parts = self.parts()
        self.marks = [*self.marks[-1:], parts]
        return sum(parts.values())

    def window_parts(self) -> dict[str, float]:
        """The parts' CPU seconds between the last two ``cpu_seconds`` calls (a window's)."""
        if len(self.marks) < 2:
            return {}
        before, after = self.marks
        return {part: after[part] - before[part] for part in after}

    def rss_bytes(self) -> int:
        return sum(memory(pid)[0] for pids in self.pids().values() for pid in pids)

    def hwm_bytes(self) -> int:
        return sum(memory(pid)[1] for pids in self.pids().values() for pid in pids)

    def write_syscalls(self) -> int | None:
        counts = [write_syscalls(replica.pid) for replica in self.replicas]
        return None if None in counts else sum(c for c in counts if c is not None)

    def redis_writes(self) -> int | None:
        return write_syscalls(self.redis.pid)

    def dead(self) -> list[str]:
        """The parts that have exited, with their status."""
        gone = [
            f"replica {i + 1} ({r.process.returncode})"
            for i, r in enumerate(self.replicas)
            if r.process.poll() is not None
        ]
        if self.archiver is not None and self.archiver.poll() is not None:
            gone.append(f"archiver ({self.archiver.returncode})")
        if self.redis.poll() is not None:
            gone.append(f"redis-server ({self.redis.returncode})")
        return gone

    def terminate(self) -> None:
        """SIGTERM to the replicas and the archiver without waiting (``stop`` waits): they stop in parallel."""
        processes = [replica.process for replica in self.replicas] + [self.archiver]
        for process in processes:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 10.0) -> int | None:
        """Replicas first, then the archiver (it writes what is left), then Redis; the temporary directory goes."""
        codes = [replica.stop(timeout) for replica in self.replicas]
        for process in (self.archiver, self.redis):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=timeout)
        shutil.rmtree(self.redis_dir, ignore_errors=True)
        return next((code for code in codes if code), 0)


class CountingBench(Bench):
    """A ``Bench`` that counts every message its publishers sent (warm-ups too), for the chat.log check."""

    def __init__(self, plan: Plan, generators: Generators, server: Server, prefix: str) -> None:
        super().__init__(plan, generators, server, prefix)
        self.published_total = 0
        self.chat_log = server.options.data_dir / "chat.log"
        self.replicas = 0  # 0: the single process

    def window(
        self,
        rate: float,
        seconds: float,
        label: str,
        drain: float | None = None,
        size: int = MESSAGE_BYTES,
        arrivals: str | None = None,
    ) -> Row:
        row = super().window(rate, seconds, label, drain, size, arrivals)
        self.published_total += row["published"]
        cpu, published, received = row["server_cpu_s"], row["published"], row["received"]
        row.update(
            workload="replicas",
            replicas=self.replicas,
            cpu_us_per_message=cpu / published * 1e6 if published else None,
            deliveries_per_message=received / published if published else None,
        )
        return row


class ReplicaBench(CountingBench):
    """The members of one replica set, spread round-robin over its replicas."""

    def __init__(self, plan: Plan, generators: Generators, server: ReplicaSet, prefix: str) -> None:
        super().__init__(plan, generators, server, prefix)
        self.set = server
        self.chat_log = server.chat_log
        self.replicas = server.count

    def join(self, count: int, timeout: float, small_buffers: tuple[str, ...] = (), first: int = 0) -> Row:
        """Member i joins replica i mod R through generator (i div R) mod G: one connect call per replica."""
        ports = self.set.ports
        joined, seconds, errors = 0, 0.0, dict[str, int]()
        for slot, port in enumerate(ports):
            split: list[list[str]] = [[] for _ in range(len(self.gens))]
            mine = [i for i in range(first, first + count) if i % len(ports) == slot]
            for k, index in enumerate(mine):
                split[k % len(split)].append(self.name(index))
            answers = self.gens.call(
                [
                    {
                        "cmd": "connect",
                        "host": "127.0.0.1",
                        "port": port,
                        "path": self.server.path,
                        "password": PASSWORD,
                        "names": names,
                        "concurrency": self.plan.concurrency,
                        "timeout": timeout,
                        "small_buffers": [name for name in names if name in small_buffers],
                        "protocol": self.server.protocol,
                    }
                    for names in split
                ],
                timeout=timeout + 30,
            )
            for names, answer in zip(self.names, answers, strict=True):
                names.extend(answer["members"])
            joined += sum(a["joined"] for a in answers)
            seconds += max(a["seconds"] for a in answers)
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

    def window(
        self,
        rate: float,
        seconds: float,
        label: str,
        drain: float | None = None,
        size: int = MESSAGE_BYTES,
        arrivals: str | None = None,
    ) -> Row:
        writes0 = self.set.redis_writes()
        row = super().window(rate, seconds, label, drain, size, arrivals)
        writes1 = self.set.redis_writes()
        parts = self.set.window_parts()
        published, received = row["published"], row["received"]
        for part, cpu in parts.items():
            row[f"{part}_cpu_s"] = cpu
            row[f"{part}_cpu_us_per_message"] = cpu / published * 1e6 if published else None
            row[f"{part}_cpu_us_per_delivery"] = cpu / received * 1e6 if received else None
        row["redis_writes"] = writes1 - writes0 if writes0 is not None and writes1 is not None else None
        row["dead"] = self.set.dead()
        return row


def check_log(path: Path, prefix: str, published: int, timeout: float = CATCH_UP_SECONDS) -> Row:
    """Wait (bounded) until chat.log holds ``published`` messages from ``prefix``'s members; check its seqs.

    Returns the message lines found, missing (published, not in chat.log), gaps and repeats
    in the seq column; ``ok`` when none is missing, gapped or repeated.
    """
    deadline = time.monotonic() + timeout
    while True:
        seqs: list[int] = []
        messages = 0
        try:
            with path.open(errors="replace") as log:
                for line in log:
                    fields = line.split(" ", 4)
                    if len(fields) < 4 or not fields[0].isdigit():
                        continue
                    seqs.append(int(fields[0]))
                    if fields[2] == "msg" and fields[3].startswith(prefix):
                        messages += 1
        except OSError:
            pass
        if messages >= published or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    repeats = len(seqs) - len(set(seqs))
    ordered = sorted(set(seqs))
    gaps = sum(b - a - 1 for a, b in itertools.pairwise(ordered) if b - a > 1)
    out_of_order = sum(1 for a, b in itertools.pairwise(seqs) if b <= a)
    missing = max(0, published - messages)
    return {
        "log_messages": messages,
        "log_published": published,
        "log_missing": missing,
        "log_extra": max(0, messages - published),
        "log_gaps": gaps,
        "log_repeats": repeats,
        "log_out_of_order": out_of_order,
        "ok": missing == 0 and messages == published and not gaps and not repeats and not out_of_order,
    }


@contextmanager
def _configurations(plan: Plan, counts: tuple[int, ...], n: int, appendfsync: str) -> Iterator[list[Server]]:
    """The single process and one replica set per count, all started before any is waited for."""
    data, logs = plan.results / "data", plan.results / "logs"
    with ExitStack() as stack:
        single_dir = data / f"replicas{n}-single"
        shutil.rmtree(single_dir, ignore_errors=True)
        servers: list[Server] = []
        single = Server(ServerOptions(kind="tracker", data_dir=single_dir, log_dir=logs))
        stack.callback(single.stop)
        servers.append(single)
        for count in counts:
            replica_set = ReplicaSet(
                count, f"{n}-{count}", data / f"replicas{n}-{count}", logs, appendfsync=appendfsync
            )
            stack.callback(replica_set.stop)
            servers.append(replica_set)
        stack.callback(_terminate_all, servers)  # runs first: every process stops at once, then each is waited for
        for server in servers:
            server.wait_ready()
        yield servers


def _terminate_all(servers: list[Server]) -> None:
    for server in servers:
        if isinstance(server, ReplicaSet):
            server.terminate()
        elif server.process.poll() is None:
            server.process.send_signal(signal.SIGTERM)


def measure(plan: Plan, gens: Generators, log: Any, options: ReplicaOptions) -> list[Row]:
    """The single process and each replica count at each N, interleaved window by window."""
    if len(options.counts) > len(REPLICA_PREFIXES):
        raise ValueError(f"at most {len(REPLICA_PREFIXES)} replica counts at once")
    rows: list[Row] = []
    for n in options.members:
        rate = options.rate_at(plan, n)
        with ExitStack() as stack:
            servers = stack.enter_context(_configurations(plan, options.counts, n, options.appendfsync))
            benches: list[CountingBench] = [CountingBench(plan, gens, servers[0], SINGLE_PREFIX)]
            for server, prefix in zip(servers[1:], REPLICA_PREFIXES, strict=False):
                assert isinstance(server, ReplicaSet)
                benches.append(ReplicaBench(plan, gens, server, prefix))
            for bench in benches:
                bench.neighbours = [other.server for other in benches if other is not bench]
                stack.callback(bench.leave_all)
                bench.joined = bench.join(n, plan.connect_timeout)
                if bench.joined["failed"]:
                    log(
                        f"  {_label(bench)} N={n}: {bench.joined['failed']} failed to join: "
                        f"{bench.joined['connect_errors']}"
                    )
            windows = _interleaved_windows(plan, list(benches), rate, (plan.headline,), "replicas")
            for index, bench in enumerate(benches):
                row = {**median_row(windows[index, plan.headline]), **bench.joined}
                row["server_label"] = _label(bench)
                row["windows_lost"] = sum(w["lost"] for w in windows[index, plan.headline])
                row["integrity"] = check_log(bench.chat_log, bench.prefix, bench.published_total)
                row["appendfsync"] = options.appendfsync if bench.replicas else None
                if isinstance(bench, ReplicaBench):
                    row["dead"] = bench.set.dead()
                rows.append(row)
            _relate(rows[-len(benches) :])
            for row in rows[-len(benches) :]:
                log(f"  {row['server_label']} N={n} {rate:g} msg/s {plan.headline}: {summary(row)}")
    side_us = side_cost(rows)
    for n in options.members:
        for cores in CAPACITY_CORES:
            c = capacity([r for r in rows if r["members"] == n], cores, side_us)
            if c is not None:
                log(
                    f"  capacity N={n} on {cores} cores ({c['replicas']} replicas): {_num(c['messages_per_s'], 0)} "
                    f"msg/s, {_num(c['deliveries_per_s'], 0)} deliveries/s (bound by {c['bound']}; naive "
                    f"{_num(c['naive_deliveries_per_s'], 0)}), x{_num(c['x_single'], 1)} the single process"
                )
    return rows


def _label(bench: CountingBench) -> str:
    if not bench.replicas:
        return "single process"
    label = f"{bench.replicas} replica{'s' if bench.replicas > 1 else ''} + Redis + archiver"
    assert isinstance(bench.server, ReplicaSet)
    return label if bench.server.appendfsync == "always" else f"{label} (appendfsync {bench.server.appendfsync})"


def _relate(rows: list[Row]) -> None:
    """Each row's ratios to the single process's row of the same N (the first)."""
    single = rows[0]
    for row in rows:
        row["cpu_x_single"] = _ratio(row.get("cpu_us_per_delivery"), single.get("cpu_us_per_delivery"))
        for key in ("p50_ms", "p99_ms"):
            mine, theirs = row.get(key), single.get(key)
            row[f"extra_{key}"] = mine - theirs if mine is not None and theirs is not None else None


def _ratio(value: float | None, base: float | None) -> float | None:
    return value / base if value is not None and base else None


def _num(value: Any, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def summary(row: Row) -> str:
    """One printed line: the fan-out description, then the replica figures."""
    text = describe(row) + f", CPU {_num(row.get('cpu_us_per_message'), 1)} us/message"
    if row.get("replicas"):
        text += (
            f" (replicas {_num(row.get('replicas_cpu_us_per_message'), 1)}, redis "
            f"{_num(row.get('redis_cpu_us_per_message'), 1)}, "
            f"archiver {_num(row.get('archiver_cpu_us_per_message'), 1)})"
            f", x single {_num(row.get('cpu_x_single'))}, +p50 {_num(row.get('extra_p50_ms'))} ms"
            f" +p99 {_num(row.get('extra_p99_ms'))} ms"
        )
    check = row["integrity"]
    text += ", chat.log ok" if check["ok"] else f", CHAT.LOG NOT OK {check}"
    if row.get("dead"):
        text += f", DIED: {', '.join(row['dead'])}"
    return text


# --- the report -------------------------------------------------------------------------------


def fit(rows: list[Row]) -> tuple[float, float] | None:
    """Least squares of the replicas' CPU us per message against the replica count at one N.

    Returns (per replica, fixed): each replica reads and decodes every message of the room,
    whatever its members (the slope), while the delivery work to the N members and the
    publisher's side are shared out (the intercept). None with fewer than two counts.
    """
    points = [(r["replicas"], r["replicas_cpu_us_per_message"]) for r in rows if r.get("replicas_cpu_us_per_message")]
    if len({x for x, _ in points}) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / sum((x - mean_x) ** 2 for x, _ in points)
    return slope, mean_y - slope * mean_x


def side_cost(rows: list[Row]) -> float | None:
    """Redis + archiver CPU us per message at the highest message rate measured (any N).

    Both batch (Redis one AOF write and fsync per event-loop pass, the archiver one append and
    fsync per XREAD), so their cost per message falls as the rate grows: the highest-rate point
    is the closest to their ceiling, and still an overestimate of the cost there.
    """
    sets = [r for r in rows if r.get("workload") == "replicas" and r.get("replicas") and r.get("publish_rate")]
    if not sets:
        return None
    fastest = max(sets, key=lambda r: (r["publish_rate"], r["replicas"]))
    at_rate = [r for r in sets if r["rate"] == fastest["rate"] and r["members"] == fastest["members"]]
    row = max(at_rate, key=lambda r: r["replicas"])
    return float((row.get("redis_cpu_us_per_message") or 0.0) + (row.get("archiver_cpu_us_per_message") or 0.0))


def capacity(rows: list[Row], cores: int, side_us: float | None = None) -> Row | None:
    """Deliveries/s to expect from ``cores`` cores at one N, from that N's measured rows.

    Assumptions: one core for redis-server and the archiver together (Redis runs commands on
    one thread: its ceiling is 1 core / (Redis + archiver CPU per message) messages/s, the
    cost per message taken from ``side_us``, else this N's largest set), and one
    replica per remaining core, R = cores - 1, each with N/R members; a replica's CPU per
    message is the fitted ``per_replica + fixed / R`` (``fit``: every replica reads every
    message; the rest is shared). The room's message rate is the lower of the two ceilings,
    deliveries/s = rate x (N - 1). The single process: 1 core / its CPU per delivery, whatever
    the cores. The naive figure: (cores - 1) / the largest set's replicas' CPU per delivery.
    """
    single = next((r for r in rows if not r.get("replicas")), None)
    sets = [r for r in rows if r.get("replicas")]
    line = fit(sets)
    if single is None or not sets or line is None:
        return None
    largest = max(sets, key=lambda r: r["replicas"])
    n = largest["members"]
    per_replica, fixed = line
    replicas = cores - 1
    replica_us = max(per_replica * replicas + fixed, 1e-9)  # all replicas' CPU us per message
    if side_us is None:
        side_us = (largest.get("redis_cpu_us_per_message") or 0.0) + (largest.get("archiver_cpu_us_per_message") or 0.0)
    by_replicas = replicas * 1e6 / replica_us
    by_redis = 1e6 / side_us if side_us else float("inf")
    rate = min(by_replicas, by_redis)
    single_rate = 1e6 / (single["cpu_us_per_delivery"] or float("inf"))
    naive = replicas * 1e6 / (largest.get("replicas_cpu_us_per_delivery") or float("inf"))
    return {
        "cores": cores,
        "members": n,
        "replicas": replicas,
        "messages_per_s": rate,
        "bound": "replicas" if by_replicas <= by_redis else "redis+archiver",
        "redis_ceiling_messages_per_s": by_redis,
        "side_us_per_message": side_us,
        "deliveries_per_s": rate * (n - 1),
        "naive_deliveries_per_s": naive,
        "single_deliveries_per_s": single_rate,
        "x_single": rate * (n - 1) / single_rate if single_rate else None,
    }


def lines(rows: list[Row]) -> list[str]:
    """The results.md section: per N, the configurations side by side, then the capacity estimate."""
    measured = [r for r in rows if r.get("workload") == "replicas"]
    if not measured:
        return []
    out = [
        "## Replicas on Redis",
        "",
        (
            "The single process and R replicas on one redis-server (AOF, appendfsync always) plus one archiver, "
            "every process on the server core, at the same members, rate and arrivals, interleaved window by "
            "window; medians of the windows. CPU = every process of the configuration (replicas + redis-server "
            "+ archiver). `per write` = deliveries / the replicas' write syscalls. `+p50`/`+p99`: over the single "
            "process. `chat.log`: seqs contiguous and every published message in it once."
        ),
        "",
    ]
    side_us = side_cost(measured)
    for n in sorted({r["members"] for r in measured}):
        at_n = sorted((r for r in measured if r["members"] == n), key=lambda r: r.get("replicas", 0))
        out += [
            f"N = {n}, {at_n[0]['rate']:g} msg/s, {at_n[0].get('arrivals')} arrivals:",
            "",
            (
                "| configuration | lost | p50 ms | p99 ms | +p50 | +p99 | CPU us/delivery | x single "
                "| replicas / redis / archiver us/delivery | CPU us/message | Redis us/message | per write | chat.log |"
            ),
            "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|",
        ]
        for r in at_n:
            parts = (
                " / ".join(_num(r.get(f"{p}_cpu_us_per_delivery")) for p in ("replicas", "redis", "archiver"))
                if r.get("replicas")
                else "-"
            )
            check = r["integrity"]
            verdict = "ok" if check["ok"] else f"missing {check['log_missing']}, gaps {check['log_gaps']}"
            if r.get("dead"):
                verdict += f"; died: {', '.join(r['dead'])}"
            out.append(
                f"| {r['server_label']} | {r['windows_lost']} | {_num(r['p50_ms'])} | {_num(r['p99_ms'])} "
                f"| {_num(r.get('extra_p50_ms'))} | {_num(r.get('extra_p99_ms'))} | {_num(r['cpu_us_per_delivery'])} "
                f"| {_num(r.get('cpu_x_single'))} | {parts} | {_num(r.get('cpu_us_per_message'), 1)} "
                f"| {_num(r.get('redis_cpu_us_per_message'), 1)} | {_num(r.get('deliveries_per_write'))} | {verdict} |"
            )
        ratios = [(r["replicas"], r["cpu_x_single"]) for r in at_n if r.get("replicas") and r.get("cpu_x_single")]
        if ratios:
            verdicts = ", ".join(
                f"{count} replica{'s' if count > 1 else ''} x {_num(x)} {'met' if x <= AIM_RATIO else 'NOT met'}"
                for count, x in ratios
            )
            out += ["", f"Aim (total CPU per delivery within {AIM_RATIO}x of the single process): {verdicts}."]
        estimates = [c for cores in CAPACITY_CORES if (c := capacity(at_n, cores, side_us)) is not None]
        line = fit(at_n)
        if estimates and line is not None:
            out += [
                "",
                (
                    f"Capacity at N = {n} (replicas' CPU/message fitted as {_num(line[0], 1)} us per replica + "
                    f"{_num(line[1], 1)} us shared; one core for Redis + archiver at {_num(side_us, 1)} us/message, "
                    "their cost at the highest rate measured; one replica per other core; naive = "
                    "(cores - 1) / the largest set's replicas' CPU per delivery):"
                ),
                "",
                (
                    "| cores | replicas | msg/s | bound by | Redis+archiver ceiling msg/s | deliveries/s "
                    "| naive deliveries/s | x single process |"
                ),
                "|---:|---:|---:|---|---:|---:|---:|---:|",
            ]
            for c in estimates:
                out.append(
                    f"| {c['cores']} | {c['replicas']} | {_num(c['messages_per_s'], 0)} | {c['bound']} "
                    f"| {_num(c['redis_ceiling_messages_per_s'], 0)} | {_num(c['deliveries_per_s'], 0)} "
                    f"| {_num(c['naive_deliveries_per_s'], 0)} | {_num(c['x_single'], 1)} |"
                )
        out.append("")
    return out
