"""``python -m bench``: run the benchmarks, write bench/results/ (results.md, results.json, charts).

    python -m bench                      # everything, about 7 minutes on 2 cores
    python -m bench --smoke              # seconds, tiny N, all three servers (CI)
    python -m bench --workloads fanout --members 100,1000
    python -m bench --profile            # py-spy profile of the tracker's hot path

Exit status: 0 when the run completed (whatever the figures), 1 when it could not
(a server failed to start, a generator died), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

from . import report, workloads
from .generators import Generators, generator_cores
from .loadgen import raise_fd_limit
from .workloads import Plan

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = ("fanout", "idle", "slow", "log")


def smoke_plan(results: Path) -> Plan:
    """Tiny sizes and short windows: proves the harness works; measures nothing worth reading."""
    return Plan(
        members=(10,), fixed_rates={10: 50.0}, step_deliveries=(1000,), step_seconds=0.5,
        fixed_seconds=0.5, repeats=1, publishers=3, idle_members=(30,), idle_seconds=0.2,
        connect_timeout=15.0, reference_connect_cap=15.0, slow_members=8, slow_stalled=(1,), slow_rate=40.0, slow_seconds=1.0,
        slow_baseline_seconds=0.5, slow_baseline_windows=1, warmup_seconds=0.2, log_rate=50.0, log_members=8, log_repeats=1, chat_deliveries=1000.0, chat_seconds=0.5,
        generators=2, results=results,
    )


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="seconds-long run with tiny N (CI)")
    parser.add_argument("--profile", action="store_true", help="profile the tracker with py-spy instead")
    parser.add_argument("--servers", default=",".join(Plan.servers), help="tracker,ceiling,typical")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help=",".join(WORKLOADS))
    parser.add_argument("--members", type=_ints, help="fan-out sizes (default 10,100,1000)")
    parser.add_argument("--idle-members", type=_ints, help="connect-and-idle sizes (default 1000,5000)")
    parser.add_argument("--slow-seconds", type=float,
                        help="length of each stalled window (default 12; 60 for the issue's full minute)")
    parser.add_argument("--connect-timeout", type=float,
                        help="cap in seconds on any join, and on the tracker's joining the idle sizes (default 120)")
    parser.add_argument("--reference-cap", type=float,
                        help="cap in seconds on a reference's joining the idle sizes (default 45)")
    parser.add_argument("--fixed-seconds", type=float, help="length of each fixed-rate window (default 1)")
    parser.add_argument("--step-seconds", type=float, help="length of each sweep step (default 1)")
    parser.add_argument("--repeats", type=int, help="windows per fixed-rate point; the median is kept (default 3)")
    parser.add_argument("--generators", type=int, help="load-generator processes (default 2)")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results", help="output directory")
    return parser


def plan_from(args: argparse.Namespace) -> Plan:
    plan = smoke_plan(args.results) if args.smoke else Plan(results=args.results)
    changes = {
        "servers": tuple(s for s in args.servers.split(",") if s),
        "workloads": tuple(w for w in args.workloads.split(",") if w),
    }
    for flag, field in (("members", "members"), ("idle_members", "idle_members"), ("slow_seconds", "slow_seconds"),
                        ("connect_timeout", "connect_timeout"), ("reference_cap", "reference_connect_cap"),
                        ("fixed_seconds", "fixed_seconds"), ("step_seconds", "step_seconds"),
                        ("repeats", "repeats"), ("generators", "generators")):
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
    plan.results.mkdir(parents=True, exist_ok=True)
    cores = generator_cores()
    print(f"bench: servers on core 0, {plan.generators} generators on cores {cores or 'any'}; "
          f"results in {plan.results}", flush=True)
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
        if "log" in plan.workloads and "tracker" in plan.servers:
            log(" price of chat.log")
            rows += workloads.log_cost(plan, gens, log, tmpfs)
    finally:
        gens.close()
        if tmpfs is not None:
            import shutil

            shutil.rmtree(tmpfs, ignore_errors=True)
    path, charts, why_not = report.write(rows, {**_plan_summary(plan), "smoke": smoke}, plan.results)
    log(f" wrote {path}" + (f" and {len(charts)} charts" if charts else ""))
    if why_not:
        log(f" {why_not}")
    return 0


def _plan_summary(plan: Plan) -> dict[str, object]:
    summary = dataclasses.asdict(plan)
    summary["results"] = str(plan.results)
    summary["fixed_rates"] = {str(k): v for k, v in plan.fixed_rates.items()}
    return summary


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    raise_fd_limit()  # the servers and generators inherit it
    plan = plan_from(args)
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
