"""``python -m bench``: run the benchmarks, write bench/results/ (results.md, results.json, charts).

    python -m bench                      # everything, about 7 minutes on 2 cores
    python -m bench --smoke              # seconds, tiny N, all three servers (CI)
    python -m bench --workloads fanout --members 100,1000
    python -m bench --profile            # py-spy profile of the tracker's hot path (--workloads rooms: of many rooms)
    python -m bench --memory             # an idle member's memory by file
    python -m bench --baseline edb638b   # the same, with the tracker of commit edb638b beside this tree's
    python -m bench --baseline edb638b --workloads fanout --servers tracker,baseline
    python -m bench --workloads fanout --arrivals lockstep,even,poisson --seed 7
    python -m bench --workloads joins --join-members 2000,5000   # the join storm (not in the default run)
    python -m bench --floor              # the physical floor: CPU of one small loopback write(2)
    python -m bench --workloads fanout,idle --servers tracker,ngircd,redis,nodews   # native anchors (bench.native)
    python -m bench --workloads rooms --servers tracker,ngircd --rooms-members 10000 --rooms 2000 \
        --room-size 5 --rooms-rate 2000             # many rooms (issue 27; bench.rooms)
    python -m bench --workloads replica-reads       # which rooms a replica reads from Redis (bench.replica_reads)

``--baseline REF`` (any git commit-ish) adds a fourth server, ``baseline``, shown as
``tracker@<short sha>``: the tracker of commit REF, from its ``services/`` written into a
temporary directory with ``git archive`` (the repository's work tree, index and worktree
list are left alone; the directory is removed at the end) and run by the same interpreter
with that tree first on its path and the editable install's finder removed, so it imports
REF's chat_tracker, chat_protocol and chat_client only (it checks, and the harness checks
what it printed). It takes part wherever ``tracker`` does, next to it: interleaved with it
window by window in the fan-out rows and the chat.log rows, run right after it in connect
and idle and in slow members. The report then has a section "Against tracker@<sha>" with
the ratios tracker / baseline of CPU per delivery (fixed rate) and of the highest clean rate
at each N, also printed at the end of the run. ``--baseline`` adds ``baseline`` to
``--servers`` (after ``tracker``) when it is not listed. ``--steps`` sets the sweep's ladder
(deliveries/s): the default steps are 33-50 % apart, too coarse to tell a 10 % change in the
highest clean rate; a finer ladder around the expected maximum can.

``--arrivals`` (comma list of ``lockstep``, ``even``, ``poisson``; default all three) is how
the publishers space their sends (``bench.loadgen.Worker.publish``): ``lockstep`` sends every
message due in a millisecond tick together (the harness's original pattern), ``even`` spreads
the room's messages evenly in time, ``poisson`` draws exponential gaps, seeded by ``--seed``
(default 16) so that a run repeats. The fixed-rate fan-out points run every listed pattern,
interleaved with the servers; everything else (the sweep, slow members, the chats, chat.log)
runs the headline pattern: ``poisson`` when listed, else the first. Every window's row says
its pattern, and next to CPU us/delivery its deliveries per write syscall (``syscw`` of
/proc/PID/io). ``--fixed-rates 100=200`` sets the fixed rate (msg/s) at chosen sizes.

``--workloads joins`` is the join storm: ``--join-members`` (default 10000; a comma list runs
each size in a fresh server) members join one after another, every join announced to everyone
already in (N(N-1)/2 notices); wall time to the last notice, server CPU and peak RSS. Not in
the default run: 10,000 is 50 million deliveries. ``--floor`` only measures the physical floor
(``bench.floor``); the full run puts it in results.md too.

``--workloads coalesce`` is the coalescing curve: one tracker per ``--coalesce-ms`` window
(``--coalesce-windows``, default 0,1,2,5,10), all running at once with ``--coalesce-members``
(default 100,1000) members each, measured in turn at the fixed rates under the paced arrival
patterns: CPU per delivery, deliveries per write, and the p50/p99 each window adds.

``--workloads replicas`` (``bench.replicas``; needs redis-server) runs the single process and
``--replica-counts`` (default 1,2,3) replicas on one redis-server (AOF, appendfsync always) plus
one archiver, side by side at ``--members`` (default 100,1000 for this workload) and the fixed
rate (``--rate``, else ``--fixed-rates``' default), interleaved window by window: total CPU per
delivery and per message, Redis's CPU per message, deliveries per write, p50/p99 over the
single process, chat.log checked, and the capacity it implies at 8, 16 and 32 cores. Not in
the default run. ``python -m bench --workloads replicas --replica-counts 1,2,3 --members 100``

``--workloads security`` (``bench.security``) runs the attacks of issue 22 against ``tracker``
and, with ``--baseline REF``, ``baseline`` (a fresh tracker per attack, the baseline first):
what each cost the tracker (RSS before/peak/after) and what the attacker got; security.md and
security.json, the table also printed. ``--attacks 1,3,6`` picks attacks by number; ``--smoke``
shrinks every size. Not in the default run. ``python -m bench --workloads security --baseline 8412c10``

``--workloads rooms`` (``bench.rooms``) is the many-rooms shape: ``--rooms-members`` N (default
10000) in the common room (the tracker's default room, ngIRCd's #bench) and ``--rooms`` R (default
2000) rooms of ``--room-size`` K (default 5), ``--rooms-rate`` msg/s (default 2000) Poisson over the
small rooms, ``--rooms-seconds`` per window (default 2), ``--repeats`` windows per server (default
3), ``--rooms-join-timeout`` the cap in s on joining and again on entering (default 900), the
tracker and ngircd side by side: CPU per delivery, RSS per member, p50/p99, lost. The
smoke form: 20 members, 4 rooms of 5, 40 msg/s. Not in the default run (joining 10,000 to one room
is 50 million join notices: ngIRCd needs many minutes).

``--workloads capacity`` (``bench.capacity``) is websocket-shootout's round-2 capacity test: for each
server in turn, members accumulating up the ladder ``--capacity-steps`` (default 100,250,500,1000,
2000,4000,6000,...,14000), 4 broadcasters send ``--capacity-broadcasts`` (default 100) broadcasts of
200 bytes per step, closed-loop; a step passes when 95 % reached every member within 500 ms; the
capacity is the largest N that passed. The ladder stops at the first failure, or when
``--capacity-seconds`` (default 900 per server, joining included) have passed. The smoke form: 8 and
16 members, 20 broadcasts. Not in the default run.
``python -m bench --workloads capacity --servers tracker,ngircd,nodews``

Exit status: 0 when the run completed (whatever the figures), 1 when it could not
(a server failed to start, a generator died), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from . import capacity, floor, native, replica_reads, replicas, report, rooms, security, workloads
from .baseline import checkout
from .generators import Generators, generator_cores
from .loadgen import ARRIVALS, raise_fd_limit
from .servers import SERVERS
from .workloads import Plan

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = (
    "fanout",
    "idle",
    "slow",
    "log",
    "joins",
    "coalesce",
    "replicas",
    "security",
    "rooms",
    "capacity",
    "replica-reads",
)
# Named only: the attacks (beside the point in a smoke run), the many rooms, the capacity ladder and which rooms a
# replica reads (tests/bench runs their smoke forms)
NAMED_ONLY = ("security", "rooms", "capacity", "replica-reads")
# Workloads that need no physical floor beside their figures
FLOORLESS = frozenset({"security", "capacity", "replica-reads"})
DEFAULT_WORKLOADS = ("fanout", "idle", "slow", "log")  # the join storm and the coalescing curve: by name


def smoke_plan(results: Path) -> Plan:
    """Tiny sizes and short windows: proves the harness works; measures nothing worth reading."""
    return Plan(
        members=(10,),
        fixed_rates={10: 50.0},
        step_deliveries=(1000,),
        step_seconds=0.5,
        fixed_seconds=0.5,
        repeats=1,
        publishers=3,
        idle_members=(30,),
        idle_seconds=0.2,
        connect_timeout=15.0,
        reference_connect_cap=15.0,
        slow_members=8,
        slow_stalled=(1,),
        slow_rate=40.0,
        slow_seconds=1.0,
        slow_baseline_seconds=0.5,
        slow_baseline_windows=1,
        warmup_seconds=0.2,
        log_rate=50.0,
        log_members=8,
        log_repeats=1,
        chat_deliveries=1000.0,
        chat_seconds=0.5,
        generators=2,
        join_members=(60,),
        coalesce_ms=(0.0, 2.0),
        coalesce_members=(10,),
        results=results,
    )


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(part) for part in text.split(",") if part)


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part)


def _rates(text: str) -> dict[int, float]:
    """``100=200,1000=100``: the fixed rate (messages/s) at each N."""
    try:
        return {int(n): float(rate) for n, rate in (part.split("=") for part in text.split(",") if part)}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N=RATE,... (e.g. 100=200), not {text!r}") from None


def _arrivals(text: str) -> tuple[str, ...]:
    patterns = tuple(part for part in text.split(",") if part)
    unknown = [p for p in patterns if p not in ARRIVALS]
    if unknown or not patterns:
        raise argparse.ArgumentTypeError(f"arrival patterns are {', '.join(ARRIVALS)}; not {', '.join(unknown)}")
    return patterns


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="seconds-long run with tiny N (CI)")
    parser.add_argument("--profile", action="store_true", help="profile the tracker with py-spy instead")
    parser.add_argument(
        "--memory", action="store_true", help="only break an idle member's memory down by file (bench.memory)"
    )
    parser.add_argument("--servers", default=",".join(Plan.servers), help=",".join(SERVERS))
    parser.add_argument(
        "--baseline",
        metavar="REF",
        help="also run the tracker of git commit REF (server 'baseline', shown as tracker@<sha>) beside this tree's",
    )
    parser.add_argument(
        "--workloads",
        help=f"{','.join(WORKLOADS)} (default {','.join(DEFAULT_WORKLOADS)}; --smoke adds a tiny join storm)",
    )
    parser.add_argument(
        "--arrivals",
        type=_arrivals,
        help="arrival patterns of the fixed-rate points, comma list of lockstep,even,poisson (default all; "
        "the headline figures use poisson when listed, else the first)",
    )
    parser.add_argument("--seed", type=int, help="seed of the poisson arrivals (default 16)")
    parser.add_argument(
        "--fixed-rates",
        type=_rates,
        help="the fixed rate (msg/s) per N, e.g. 100=200 (default 10=1000,100=1000,1000=100; others 100000/(N-1))",
    )
    parser.add_argument("--join-members", type=_ints, help="join storm sizes (default 10000)")
    parser.add_argument(
        "--coalesce-windows", type=_floats, help="the coalesce workload's --coalesce-ms values (default 0,1,2,5,10)"
    )
    parser.add_argument("--coalesce-members", type=_ints, help="the coalesce workload's sizes (default 100,1000)")
    parser.add_argument("--replica-counts", type=_ints, help="the replicas workload's replica counts (default 1,2,3)")
    parser.add_argument(
        "--rate", type=float, help="the replicas workload's rate (msg/s) at every N (default: the fixed rates)"
    )
    parser.add_argument(
        "--redis-appendfsync",
        choices=("always", "everysec"),
        help="the replicas workload's Redis fsync policy (default always; everysec runs the replicas --redis-volatile)",
    )
    parser.add_argument(
        "--attacks", help="the security workload's attacks by number, e.g. 1,3,6 (default all: bench.security)"
    )
    parser.add_argument("--rooms-members", type=int, help="the rooms workload's N in the common room (default 10000)")
    parser.add_argument("--rooms", type=int, help="the rooms workload's small rooms (default 2000)")
    parser.add_argument("--room-size", type=int, help="members of each small room (default 5)")
    parser.add_argument("--rooms-rate", type=float, help="msg/s over all the small rooms, Poisson (default 2000)")
    parser.add_argument("--rooms-seconds", type=float, help="length of each rooms window (default 2)")
    parser.add_argument(
        "--rooms-join-timeout", type=float, help="cap in s on joining the common room, and on entering (default 900)"
    )
    parser.add_argument(
        "--capacity-steps",
        type=_ints,
        help="the capacity workload's ladder of N (default 100,250,500,1000,2000,4000,6000,...,14000)",
    )
    parser.add_argument(
        "--capacity-broadcasts", type=int, help="broadcasts per capacity step, all broadcasters together (default 100)"
    )
    parser.add_argument(
        "--capacity-seconds",
        type=float,
        help="time bound per server of the capacity ladder, joining included: no step starts later (default 900)",
    )
    parser.add_argument("--floor", action="store_true", help="only measure the physical floor (bench.floor)")
    parser.add_argument("--members", type=_ints, help="fan-out sizes (default 10,100,1000)")
    parser.add_argument("--idle-members", type=_ints, help="connect-and-idle sizes (default 1000,5000)")
    parser.add_argument(
        "--slow-seconds", type=float, help="length of each stalled window (default 12; 60 for the issue's full minute)"
    )
    parser.add_argument(
        "--connect-timeout",
        type=float,
        help="cap in seconds on any join, and on the tracker's joining the idle sizes (default 120)",
    )
    parser.add_argument(
        "--reference-cap", type=float, help="cap in seconds on a reference's joining the idle sizes (default 45)"
    )
    parser.add_argument("--fixed-seconds", type=float, help="length of each fixed-rate window (default 1)")
    parser.add_argument("--step-seconds", type=float, help="length of each sweep step (default 1)")
    parser.add_argument(
        "--steps",
        type=_ints,
        help="the sweep's ladder in deliveries/s (default 20000,40000,80000,120000,160000,240000,320000,480000,640000)",
    )
    parser.add_argument("--repeats", type=int, help="windows per fixed-rate point; the median is kept (default 3)")
    parser.add_argument("--generators", type=int, help="load-generator processes (default 2)")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results", help="output directory")
    return parser


def plan_from(args: argparse.Namespace) -> Plan:
    plan = smoke_plan(args.results) if args.smoke else Plan(results=args.results)
    servers = [s for s in args.servers.split(",") if s]
    if args.baseline and "baseline" not in servers:
        servers.insert(servers.index("tracker") + 1 if "tracker" in servers else 0, "baseline")
    if args.workloads is not None:
        chosen = tuple(w for w in args.workloads.split(",") if w)
    else:  # the smoke run proves the join storm works too: 60 members take a second
        chosen = tuple(w for w in WORKLOADS if w not in NAMED_ONLY) if args.smoke else DEFAULT_WORKLOADS
    changes: dict[str, Any] = {"servers": tuple(servers), "workloads": chosen}
    for flag, field in (
        ("members", "members"),
        ("idle_members", "idle_members"),
        ("slow_seconds", "slow_seconds"),
        ("connect_timeout", "connect_timeout"),
        ("reference_cap", "reference_connect_cap"),
        ("fixed_seconds", "fixed_seconds"),
        ("step_seconds", "step_seconds"),
        ("steps", "step_deliveries"),
        ("repeats", "repeats"),
        ("generators", "generators"),
        ("arrivals", "arrivals"),
        ("fixed_rates", "fixed_rates"),
        ("seed", "seed"),
        ("join_members", "join_members"),
        ("coalesce_windows", "coalesce_ms"),
        ("coalesce_members", "coalesce_members"),
    ):
        if getattr(args, flag) is not None:
            changes[field] = getattr(args, flag)
    return dataclasses.replace(plan, **changes)


def replica_options(args: argparse.Namespace) -> replicas.ReplicaOptions:
    """The replicas workload's options; the smoke run: 1 and 2 replicas of 6 members."""
    default = (
        replicas.ReplicaOptions(counts=(1, 2), members=(6,), rate=50.0) if args.smoke else replicas.ReplicaOptions()
    )
    return dataclasses.replace(
        default,
        counts=args.replica_counts or default.counts,
        members=args.members or default.members,
        rate=args.rate if args.rate is not None else default.rate,
        appendfsync=args.redis_appendfsync or default.appendfsync,
    )


def rooms_shape(args: argparse.Namespace) -> rooms.Shape:
    """The rooms workload's shape: the issue's, or the smoke form, changed by the flags."""
    default = rooms.SMOKE if args.smoke else rooms.Shape()
    changes: dict[str, Any] = {}
    for flag, field in (
        ("rooms_members", "members"),
        ("rooms", "rooms"),
        ("room_size", "size"),
        ("rooms_rate", "rate"),
        ("rooms_seconds", "seconds"),
        ("rooms_join_timeout", "join_timeout"),
        ("repeats", "repeats"),
    ):
        if getattr(args, flag) is not None:
            changes[field] = getattr(args, flag)
    return dataclasses.replace(default, **changes)


def capacity_ladder(args: argparse.Namespace) -> capacity.Ladder:
    """The capacity workload's ladder: the default, or the smoke form, changed by the flags."""
    default = capacity.SMOKE if args.smoke else capacity.Ladder()
    changes: dict[str, Any] = {}
    for flag, field in (
        ("capacity_steps", "steps"),
        ("capacity_broadcasts", "broadcasts"),
        ("capacity_seconds", "seconds"),
    ):
        if getattr(args, flag) is not None:
            changes[field] = getattr(args, flag)
    return dataclasses.replace(default, **changes)


def tmpfs_dir() -> Path | None:
    """A directory on tmpfs for chat.log, or None when there is none."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return shm / f"chat-bench-{os.getpid()}"
    return None


def run(
    plan: Plan,
    smoke: bool = False,
    replica: replicas.ReplicaOptions | None = None,
    attacks: tuple[str, ...] = (),
    shape: rooms.Shape | None = None,
    ladder: capacity.Ladder | None = None,
) -> int:
    unknown = set(plan.workloads) - set(WORKLOADS)
    if unknown:
        print(f"python -m bench: error: unknown workload(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    unknown = set(plan.servers) - set(SERVERS)
    if unknown:
        print(f"python -m bench: error: unknown server(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    native.require(plan.servers)  # a listed ngircd/redis/nodews without its tool: fail now, naming the tool
    plan.results.mkdir(parents=True, exist_ok=True)
    cores = generator_cores()
    print(
        f"bench: servers on core 0, {plan.generators} generators on cores {cores or 'any'}; results in {plan.results}",
        flush=True,
    )
    rows: list[workloads.Row] = []
    started = time.monotonic()
    gens = Generators(plan.generators, cores, plan.results / "logs")
    tmpfs = tmpfs_dir()

    def log(line: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s]{line}", flush=True)

    try:
        if "fanout" in plan.workloads:
            log(" fan-out")
            rows += workloads.fanout(plan, gens, log)
        for kind in plan.servers:
            if "idle" in plan.workloads:
                log(f" connect and idle: {kind}")
                rows += workloads.idle(plan, gens, kind, log)
        for kind in plan.servers:
            if "slow" in plan.workloads:
                log(f" slow members: {kind}")
                rows += workloads.slow(plan, gens, kind, log)
        if "log" in plan.workloads and {"tracker", "baseline"} & set(plan.servers):
            log(" price of chat.log")
            rows += workloads.log_cost(plan, gens, log, tmpfs)
        for kind in plan.servers:
            if "joins" in plan.workloads:
                log(f" join storm: {kind}")
                rows += workloads.joins(plan, gens, kind, log)
        if "coalesce" in plan.workloads:
            log(" the coalescing window")
            rows += workloads.coalesce(plan, gens, log)
        if "replicas" in plan.workloads:
            missing = replicas.available()
            if missing is None:
                log(" replicas on Redis")
                rows += replicas.measure(plan, gens, log, replica or replicas.ReplicaOptions())
            elif smoke:
                log(f" replicas on Redis: skipped, {missing}")
            else:
                raise RuntimeError(f"the replicas workload needs {missing}")
        if "rooms" in plan.workloads:
            log(" many rooms")
            rows += rooms.measure(plan, gens, log, shape or rooms.Shape())
        if "replica-reads" in plan.workloads:
            log(" which rooms a replica reads")
            missing = replicas.available()
            if missing:
                raise RuntimeError(missing)
            rows += replica_reads.measure(plan, log, replica_reads.SMOKE if smoke else replica_reads.Reads())
        if "capacity" in plan.workloads:
            log(" capacity (websocket-shootout method)")
            rows += capacity.measure(plan, gens, log, ladder or capacity.Ladder())
        if "security" in plan.workloads:
            log(" security: the attacks of issue 22")
            sizes = security.SMOKE if smoke else security.Sizes()
            found = security.measure(plan, log, sizes, attacks)
            security.write(plan, found, " ".join(["python -m bench", *sys.argv[1:]]), sizes)
            rows += found
        if not set(plan.workloads) <= FLOORLESS:  # the attacks or the capacity ladder alone need no floor
            log(" the physical floor")
            rows += floor.measure(count=10_000, rounds=1) if smoke else floor.measure()
    finally:
        gens.close()
        if tmpfs is not None:
            import shutil

            shutil.rmtree(tmpfs, ignore_errors=True)
    summary = {**_plan_summary(plan), "smoke": smoke}
    if "rooms" in plan.workloads:
        summary["rooms"] = dataclasses.asdict(shape or rooms.Shape())
    if "capacity" in plan.workloads:
        summary["capacity"] = dataclasses.asdict(ladder or capacity.Ladder())
    if "replicas" in plan.workloads:
        summary["replicas"] = dataclasses.asdict(replica or replicas.ReplicaOptions())
    path, charts, why_not = report.write(rows, summary, plan.results)
    comparison = report.baseline_lines(rows)
    if comparison:
        print("\n".join(comparison), flush=True)
    log(f" wrote {path}" + (f" and {len(charts)} charts" if charts else ""))
    if why_not:
        log(f" {why_not}")
    return 0


def _plan_summary(plan: Plan) -> dict[str, object]:
    summary = dataclasses.asdict(plan)
    summary["results"] = str(plan.results)
    summary["fixed_rates"] = {str(k): v for k, v in plan.fixed_rates.items()}
    summary["baseline_tree"] = str(plan.baseline_tree) if plan.baseline_tree else None
    return summary


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    raise_fd_limit()  # the servers and generators inherit it
    # SIGTERM (timeout, kill PID) unwinds like Ctrl-C: servers stopped, the baseline's tree removed
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    plan = plan_from(args)
    if "baseline" in plan.servers and not args.baseline:
        print("python -m bench: error: server 'baseline' needs --baseline REF (a git commit)", file=sys.stderr)
        return 2
    with contextlib.ExitStack() as stack:
        if args.baseline:
            try:
                base = stack.enter_context(checkout(args.baseline))
            except ValueError as exc:
                print(f"python -m bench: error: {exc}", file=sys.stderr)
                return 2
            plan = dataclasses.replace(
                plan,
                baseline_ref=base.ref,
                baseline_commit=base.commit,
                baseline_label=base.label,
                baseline_tree=base.tree,
            )
            print(f"bench: baseline {base.label} = {args.baseline} ({base.commit}), from {base.tree}", flush=True)
        if args.floor:
            print("\n".join(floor.lines(floor.measure())), flush=True)
            return 0
        if args.memory:
            from .memory import memory

            return memory(plan)
        if args.profile:
            from .profile import profile

            return profile(plan, rooms_shape(args))
        try:
            attacks = tuple(a for a in (args.attacks or "").split(",") if a)
            return run(
                plan,
                smoke=args.smoke,
                replica=replica_options(args),
                attacks=attacks,
                shape=rooms_shape(args),
                ladder=capacity_ladder(args),
            )
        except (RuntimeError, TimeoutError, OSError, ValueError) as exc:
            print(f"python -m bench: error: {exc}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
