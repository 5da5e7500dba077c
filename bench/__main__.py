"""``python -m bench``: run the benchmarks, write bench/results/ (results.md, results.json, charts).

    python -m bench                      # everything, about 7 minutes on 2 cores
    python -m bench --smoke              # seconds, tiny N, all three servers (CI)
    python -m bench --workloads fanout --members 100,1000
    python -m bench --profile            # py-spy profile of the tracker's hot path
    python -m bench --baseline edb638b   # the same, with the tracker of commit edb638b beside this tree's
    python -m bench --baseline edb638b --workloads fanout --servers tracker,baseline

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

from . import report, workloads
from .baseline import checkout
from .generators import Generators, generator_cores
from .loadgen import raise_fd_limit
from .servers import SERVERS
from .workloads import Plan

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = ("fanout", "idle", "slow", "log")


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
        results=results,
    )


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="seconds-long run with tiny N (CI)")
    parser.add_argument("--profile", action="store_true", help="profile the tracker with py-spy instead")
    parser.add_argument("--servers", default=",".join(Plan.servers), help=",".join(SERVERS))
    parser.add_argument(
        "--baseline",
        metavar="REF",
        help="also run the tracker of git commit REF (server 'baseline', shown as tracker@<sha>) beside this tree's",
    )
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help=",".join(WORKLOADS))
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
    changes: dict[str, Any] = {"servers": tuple(servers), "workloads": tuple(w for w in args.workloads.split(",") if w)}
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
    ):
        if getattr(args, flag) is not None:
            changes[field] = getattr(args, flag)
    return dataclasses.replace(plan, **changes)


def tmpfs_dir() -> Path | None:
    """A directory on tmpfs for chat.log, or None when there is none."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return shm / f"chat-bench-{os.getpid()}"
    return None


def run(plan: Plan, smoke: bool = False) -> int:
    unknown = set(plan.workloads) - set(WORKLOADS)
    if unknown:
        print(f"python -m bench: error: unknown workload(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    unknown = set(plan.servers) - set(SERVERS)
    if unknown:
        print(f"python -m bench: error: unknown server(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
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
    finally:
        gens.close()
        if tmpfs is not None:
            import shutil

            shutil.rmtree(tmpfs, ignore_errors=True)
    path, charts, why_not = report.write(rows, {**_plan_summary(plan), "smoke": smoke}, plan.results)
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
        if args.profile:
            from .profile import profile

            return profile(plan)
        try:
            return run(plan, smoke=args.smoke)
        except (RuntimeError, TimeoutError, OSError) as exc:
            print(f"python -m bench: error: {exc}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
