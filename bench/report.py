"""results.json, results.md and the PNG charts from the rows the workloads returned."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from . import capacity, floor, replica_reads, replicas, rooms
from .workloads import passes

Row = dict[str, Any]
ORDER = ("tracker", "baseline", "ceiling", "typical", "ngircd", "redis", "nodews")  # the last three: bench.native
TARGET_CPU_RATIO = 1.2
TARGET_P99_RATIO = 1.5
TARGET_RSS_RATIO = 1.5
TARGET_LOG_COST = 0.10
BASELINE_TOLERANCE = 0.10  # the tracker against --baseline's commit: CPU/delivery and highest clean rate
ARRIVAL_ORDER = ("lockstep", "even", "poisson")


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for package in ("websockets", "uvicorn", "uvloop", "httptools", "fastapi", "starlette"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "-"
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "versions": versions,
        "taskset": shutil.which("taskset") is not None,
        "commit": _commit(),
    }


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        ).stdout.strip()
    except OSError:
        return ""


# --- helpers -------------------------------------------------------------------------


def _of(rows: Iterable[Row], **match: Any) -> list[Row]:
    return [r for r in rows if all(r.get(k) == v for k, v in match.items())]


def _one(rows: Iterable[Row], **match: Any) -> Row | None:
    found = _of(rows, **match)
    return found[0] if found else None


def _num(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def _ratio(value: float | None, base: float | None) -> float | None:
    return value / base if value and base else None


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _kib(value: float | None) -> str:
    return "-" if value is None else f"{value / 1024:.1f}"


def _fixed_headline(rows: Iterable[Row]) -> list[Row]:
    """The fixed-rate rows of the headline arrival pattern (rows from before patterns count as headline)."""
    return [r for r in _of(rows, workload="fanout-fixed") if r.get("headline", True)]


def _rank(server: str) -> int:
    return ORDER.index(server) if server in ORDER else len(ORDER)


def _arrival_order(row: Row) -> int:
    pattern = row.get("arrivals", "lockstep")
    return ARRIVAL_ORDER.index(pattern) if pattern in ARRIVAL_ORDER else 9


def _flag(row: Row) -> str:
    return "gen-limited" if row.get("generator_limited") else ""


def _name(row: Row) -> str:
    """The server as shown: its kind, or ``tracker@<sha>`` for the baseline."""
    return str(row.get("server_label") or row["server"])


def _names(rows: Iterable[Row]) -> dict[str, str]:
    return {r["server"]: _name(r) for r in rows}


def _sorted(rows: list[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: (r.get("members", 0), ORDER.index(r["server"]) if r["server"] in ORDER else 9))


# --- Markdown ----------------------------------------------------------------------------


def markdown(rows: list[Row], info: dict[str, Any], plan: dict[str, Any], charts: list[str]) -> str:
    out = [f"# Benchmark results ({info['date']})", ""]
    if plan.get("smoke"):
        out += [
            "**Smoke run**: tiny sizes and half-second windows to prove the harness works; the figures mean nothing.",
            "",
        ]
    out += [
        f"Machine: {info['cpu']}, {info['cores']} cores, Linux {info['kernel']}, Python {info['python']}; "
        + ", ".join(f"{k} {v}" for k, v in info["versions"].items())
        + f". Commit {info['commit']}. Server pinned to core 0, {plan['generators']} generator processes "
        + f"on the other cores{'' if info['taskset'] else ' (taskset missing: not pinned)'}.",
        "",
    ]
    out += _targets(rows)
    out += baseline_lines(rows)
    out += _fanout_fixed(rows)
    out += _arrivals(rows)
    out += _fanout_max(rows)
    out += _idle(rows)
    out += _slow(rows)
    out += _log(rows)
    out += _joins(rows)
    out += _coalesce(rows)
    out += replicas.lines(rows)
    out += rooms.lines(rows)
    out += replica_reads.lines(rows)
    out += capacity.lines(rows)
    out += floor.lines(_of(rows, workload="floor"))
    if charts:
        out += ["## Charts", ""] + [f"![{Path(c).stem}]({Path(c).name})" for c in charts] + [""]
    out += [
        (
            "CPU us/delivery = the server process's CPU time (/proc) over a window divided by the deliveries "
            "the clients counted; `x ceiling` divides by the ceiling's figure from the same run (same N, "
            "same arrivals). `per write` = deliveries counted / the server's write syscalls in the window "
            "(`syscw` of /proc/PID/io: write/writev, which uvloop uses; chat.log's writes count too; "
            "send/sendmsg would not). `gen CPU` = the generator processes' CPU over the window as a share "
            "of their cores. "
            "`gen-limited`: a generator process was above 85 % of a core, so the figure may be the "
            "generator's limit, not the server's."
        ),
        "",
    ]
    return "\n".join(out)


def _fanout_fixed(rows: list[Row]) -> list[str]:
    fixed = sorted(
        _of(rows, workload="fanout-fixed"), key=lambda r: (r["members"], _arrival_order(r), _rank(r["server"]))
    )
    if not fixed:
        return []
    out = [
        "## Fan-out at a fixed rate",
        "",
        (
            "`arrivals`: how the publishers spaced their messages (`lockstep`: all due in a 1-ms tick at once; "
            "`even`: evenly spread; `poisson`: exponential gaps). `burst`: the most messages the generators "
            "sent within one millisecond; `shared`: the share of messages sent in a millisecond with another; "
            "`late`: how late the paced patterns sent on average (ms). p50/p99 come from every 16th message "
            "(all are counted)."
        ),
        "",
        (
            "| N | server | arrivals | msg/s | deliveries/s | lost | p50 ms | p99 ms | CPU us/delivery | per write "
            "| x ceiling | server CPU | gen CPU | burst | shared | late | |"
        ),
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in fixed:
        base = _one(fixed, server="ceiling", members=r["members"], arrivals=r.get("arrivals"))
        ratio = _ratio(r["cpu_us_per_delivery"], base["cpu_us_per_delivery"] if base else None)
        out.append(
            f"| {r['members']} | {_name(r)} | {r.get('arrivals', '-')} | {r['rate']:g} "
            f"| {r['deliveries_per_s']:,.0f} | {r['lost']:,} "
            f"| {_num(r['p50_ms'])} | {_num(r['p99_ms'])} | {_num(r['cpu_us_per_delivery'])} "
            f"| {_num(r.get('deliveries_per_write'))} "
            f"| {_num(ratio)} | {r['server_cpu_share']:.0%} | {r['generator_cpu_share']:.0%} "
            f"| {_num(r.get('max_burst'))} | {_share(r.get('shared_ms_share'))} "
            f"| {_num(r.get('send_late_ms_mean'))} | {_flag(r)} |"
        )
    return [*out, ""]


def _coalesce(rows: list[Row]) -> list[str]:
    """CPU per delivery, writes and latency against the tracker's --coalesce-ms window."""
    measured = _of(rows, workload="coalesce")
    if not measured:
        return []
    out = [
        "## The coalescing window (`--coalesce-ms`)",
        "",
        (
            "One tracker per window, all running at once, measured in turn at the fixed rate. `added p50/p99`: "
            "the latency above the same N and arrivals with the window at 0."
        ),
        "",
        (
            "| N | arrivals | msg/s | window ms | CPU us/delivery | per write | p50 ms | p99 ms "
            "| added p50 | added p99 | lost |"
        ),
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(measured, key=lambda r: (r["members"], _arrival_order(r), r["coalesce_ms"])):
        zero = _one(measured, members=r["members"], arrivals=r["arrivals"], coalesce_ms=0.0)
        added = [
            _num(r[key] - zero[key]) if zero is not None and r[key] is not None and zero[key] is not None else "-"
            for key in ("p50_ms", "p99_ms")
        ]
        out.append(
            f"| {r['members']} | {r['arrivals']} | {r['rate']:g} | {r['coalesce_ms']:g} | "
            f"{_num(r['cpu_us_per_delivery'])} | {_num(r.get('deliveries_per_write'))} | {_num(r['p50_ms'])} | "
            f"{_num(r['p99_ms'])} | {added[0]} | {added[1]} | {r['lost']} |"
        )
    return [*out, ""]


def _arrivals(rows: list[Row]) -> list[str]:
    """Per N, each server's CPU us/delivery and deliveries per write under each arrival pattern."""
    fixed = _of(rows, workload="fanout-fixed")
    patterns = sorted(
        {r["arrivals"] for r in fixed if r.get("arrivals")}, key=lambda a: _arrival_order({"arrivals": a})
    )
    if len(patterns) < 2:
        return []
    out = [
        "## Arrival patterns side by side",
        "",
        "CPU us/delivery / deliveries per write at the fixed rate, for each arrival pattern.",
        "",
    ]
    for n in sorted({r["members"] for r in fixed}):
        at_n = _of(fixed, members=n)
        out += [
            f"N = {n}, {at_n[0]['rate']:g} msg/s:",
            "",
            "| server | " + " | ".join(patterns) + " |",
            "|---|" + "---:|" * len(patterns),
        ]
        for server in [s for s in ORDER if _of(at_n, server=s)]:
            cells = []
            for pattern in patterns:
                r = _one(at_n, server=server, arrivals=pattern)
                cells.append(
                    "-" if r is None else f"{_num(r['cpu_us_per_delivery'])} / {_num(r.get('deliveries_per_write'))}"
                )
            out.append(f"| {_name(_of(at_n, server=server)[0])} | " + " | ".join(cells) + " |")
        out.append("")
    return out


def _fanout_max(rows: list[Row]) -> list[str]:
    best = _of(rows, workload="fanout-max")
    if not best:
        return []
    sizes = sorted({r["members"] for r in best})
    servers = [s for s in ORDER if _of(best, server=s)]
    names = _names(best)
    out = [
        "## Highest delivered rate with zero loss and p99 < 100 ms (deliveries/s)",
        "",
        "| N | " + " | ".join(names[s] for s in servers) + " |",
        "|---:|" + "---:|" * len(servers),
    ]
    for n in sizes:
        cells = []
        for server in servers:
            r = _one(best, server=server, members=n)
            if r is None:
                cells.append("-")
                continue
            mark = (
                " (gen-limited)"
                if r.get("generator_limited")
                else (" (top step)" if r.get("failed_at") is None else "")
            )
            p99 = f", p99 {r['p99_ms']:.1f} ms" if r.get("p99_ms") is not None else ""
            cells.append(f"{r['deliveries_per_s']:,.0f}{p99}{mark}")
        out.append(f"| {n} | " + " | ".join(cells) + " |")
    return [*out, "", "`top step`: it passed the highest step tried; the real maximum is higher.", ""]


def _idle(rows: list[Row]) -> list[str]:
    idle = _sorted(_of(rows, workload="idle"))
    if not idle:
        return []
    caps = {_name(r): r.get("connect_cap_s") for r in idle}
    cap_text = ", ".join(f"{server} {_num(cap, 0)} s" for server, cap in caps.items())
    out = [
        "## Connect and idle",
        "",
        (
            "One server process per server grows through the sizes. Joining is capped in all at: "
            f"{cap_text}; a server that could not join N in its cap shows `X in <cap> s`. "
            "Connects/s and RSS/member count from the empty server."
        ),
        "",
        "| N | server | joined | connects/s | RSS/member KiB | x ceiling | open after idle | chat lost | chat p99 ms |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in idle:
        base = _one(idle, server="ceiling", members=r["members"])
        ratio = _ratio(r["rss_per_member"], base["rss_per_member"] if base else None)
        cap = r.get("connect_cap_s")
        joined = f"{r['joined']:,}" + (f" in {_num(cap, 0)} s" if r["joined"] < r["members"] else "")
        out.append(
            f"| {r['members']} | {_name(r)} | {joined} | {r['connects_per_s']:,.0f} "
            f"| {_kib(r['rss_per_member'])} | {_num(ratio)} | {r['open_after_idle']:,} "
            f"| {_num(r.get('chat_lost'))} | {_num(r.get('chat_p99_ms'))} |"
        )
    return [*out, ""]


def _slow(rows: list[Row]) -> list[str]:
    slow = sorted(_of(rows, workload="slow"), key=lambda r: (ORDER.index(r["server"]), r["stalled"]))
    if not slow:
        return []
    stalled_row = next((r for r in slow if r["stalled"]), slow[0])
    base_row = next((r for r in slow if not r["stalled"]), None)
    out = [
        f"## Slow members (N = {stalled_row['members']}, {stalled_row['rate']:g} msg/s)",
        "",
        f"Stalled windows of {stalled_row['seconds']:g} s, one server process per stalled count; "
        + (
            f"the unstalled row is the window with the median p99 of {base_row.get('repeats', 1)} windows of "
            f"{base_row['seconds']:g} s, run in those processes on the same members just before they "
            "stalled (p99 range in brackets)."
            if base_row
            else ""
        ),
        "",
        (
            "| server | stalled | healthy deliveries/s | healthy lost | p50 ms | p99 ms | p99 x unstalled "
            "| RSS growth MiB | CPU us/delivery | per write | drop notices seen | first notice s | stalled ended as |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in slow:
        base = _one(slow, server=r["server"], stalled=0)
        ratio = _ratio(r["p99_ms"], base["p99_ms"] if base else None)
        healthy = max(1, r["members"] - r["stalled"])
        fate = ", ".join(f"{k}: {v}" for k, v in sorted(r.get("stalled_fate", {}).items())) or "-"
        spread = r.get("p99_spread") if not r["stalled"] else None
        p99 = _num(r["p99_ms"]) + (f" ({_num(spread[0])}-{_num(spread[1])})" if spread else "")
        out.append(
            f"| {_name(r)} | {r['stalled']} | {r['deliveries_per_s']:,.0f} | {r['lost']:,} "
            f"| {_num(r['p50_ms'])} | {p99} | {_num(ratio)} "
            f"| {r['rss_growth'] / 2**20:.1f} | {_num(r['cpu_us_per_delivery'])} "
            f"| {_num(r.get('deliveries_per_write'))} | {r['slow_notices'] / healthy:.1f} "
            f"| {_num(r.get('first_drop_notice_s'), 1)} | {fate} |"
        )
    return [
        *out,
        "",
        (
            "`drop notices seen`: `* x left the chat (removed: too slow to keep up)` lines per healthy "
            "member (tracker only); `first notice s`: when the first arrived, from the window's start. "
            "`stalled ended as`: what each stalled client saw after it resumed "
            "reading: a close code, `lost` (connection cut without a close frame) or `joined` (still open)."
        ),
        "",
    ]


def _log(rows: list[Row]) -> list[str]:
    log = sorted(_of(rows, workload="log"), key=lambda r: ORDER.index(r["server"]) if r["server"] in ORDER else 9)
    if not log:
        return []
    several = len({r["server"] for r in log}) > 1
    out = [
        f"## Price of durability (tracker, N = {log[0]['members']}, {log[0]['rate']:g} msg/s)",
        "",
        ("| server " if several else "")
        + "| chat.log | CPU us/delivery (min-max) | per write | vs. writing disabled | p99 ms |",
        ("|---" if several else "") + "|---|---:|---:|---:|---:|",
    ]
    for r in log:
        off = _one(log, log_mode="disabled", server=r["server"])
        ratio = _ratio(r["cpu_us_per_delivery"], off["cpu_us_per_delivery"] if off else None)
        spread = r.get("cpu_us_spread") or [None, None]
        cost = f"{(ratio - 1) * 100:+.1f} %" if ratio else "-"
        out.append(
            (f"| {_name(r)} " if several else "")
            + f"| {r['log_mode']} | {_num(r['cpu_us_per_delivery'])} ({_num(spread[0])}-{_num(spread[1])}) "
            f"| {_num(r.get('deliveries_per_write'))} | {cost} | {_num(r['p99_ms'])} |"
        )
    return [*out, ""]


def _joins(rows: list[Row]) -> list[str]:
    storms = sorted(_of(rows, workload="joins"), key=lambda r: (r["members"], _rank(r["server"])))
    if not storms:
        return []
    out = [
        "## Join storm",
        "",
        (
            "N members join one after another (at most 50 handshakes in flight per generator), every join "
            "announced to every member already in: N(N-1)/2 notices. `seconds`: from the first connect to the "
            "last notice's arrival. `dropped`: members the server let go (none expected: the outbox holds "
            "4 events per member)."
        ),
        "",
        (
            "| N | server | joined | joining s | seconds | notices | lost | server CPU s | CPU us/notice "
            "| per write | peak RSS MiB | dropped | gen CPU |"
        ),
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in storms:
        out.append(
            f"| {r['members']:,} | {_name(r)} | {r['joined']:,} | {_num(r['connect_seconds'], 1)} "
            f"| {_num(r['seconds'], 1)} | {r['notices']:,} | {r['lost_notices']:,} | {_num(r['server_cpu_s'], 1)} "
            f"| {_num(r['cpu_us_per_delivery'])} | {_num(r.get('deliveries_per_write'))} "
            f"| {r['peak_rss'] / 2**20:,.0f} | {r['dropped']:,} | {r['generator_cpu_share']:.0%} |"
        )
    return [*out, ""]


def targets(rows: list[Row]) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met?) for each of issue 6's targets that this run measured."""
    results: list[tuple[str, str, bool | None]] = []
    fixed = _fixed_headline(rows)
    for n in (100, 1000):
        t, c = _one(fixed, server="tracker", members=n), _one(fixed, server="ceiling", members=n)
        if t and c:
            ratio = _ratio(t["cpu_us_per_delivery"], c["cpu_us_per_delivery"])
            y = _one(fixed, server="typical", members=n)
            typical = _ratio(y["cpu_us_per_delivery"], c["cpu_us_per_delivery"]) if y else None
            results.append(
                (
                    f"CPU/delivery at N={n}: tracker <= {TARGET_CPU_RATIO}x ceiling",
                    f"{_num(ratio)}x (typical {_num(typical)}x)",
                    ratio is not None and ratio <= TARGET_CPU_RATIO,
                )
            )
    slow = _of(rows, workload="slow", server="tracker")
    worst = max(slow, key=lambda r: r["stalled"], default=None)
    base = _one(slow, stalled=0)
    if worst and base and worst["stalled"]:
        ratio = _ratio(worst["p99_ms"], base["p99_ms"])
        results.append(
            (
                f"{worst['stalled']} stalled: healthy lose nothing, p99 <= {TARGET_P99_RATIO}x unstalled",
                f"lost {worst['lost']}, p99 {_num(ratio)}x",
                worst["lost"] == 0 and ratio is not None and ratio <= TARGET_P99_RATIO,
            )
        )
    idle = _of(rows, workload="idle")
    for n in sorted({r["members"] for r in idle}):
        t, c = _one(idle, server="tracker", members=n), _one(idle, server="ceiling", members=n)
        if t and c:
            ratio = _ratio(t["rss_per_member"], c["rss_per_member"])
            results.append(
                (
                    f"RSS per idle member at N={n}: tracker <= {TARGET_RSS_RATIO}x ceiling",
                    f"{_num(ratio)}x ({_kib(t['rss_per_member'])} vs {_kib(c['rss_per_member'])} KiB)",
                    ratio is not None and ratio <= TARGET_RSS_RATIO,
                )
            )
        if t and n >= 5000:
            held = t["open_after_idle"] == n and t.get("chat_lost") == 0
            results.append(
                (
                    f"{n:,} members held and chatting",
                    f"open {t['open_after_idle']:,}, chat lost {t.get('chat_lost', '-')}",
                    held,
                )
            )
    log = _of(rows, workload="log", server="tracker")
    off = _one(log, log_mode="disabled")
    for mode in ("disk", "tmpfs"):
        on = _one(log, log_mode=mode)
        if on and off:
            ratio = _ratio(on["cpu_us_per_delivery"], off["cpu_us_per_delivery"])
            results.append(
                (
                    f"chat.log on {mode} costs <= {TARGET_LOG_COST:.0%} CPU/delivery",
                    f"{(ratio - 1) * 100:+.1f} %" if ratio else "-",
                    ratio is not None and ratio <= 1 + TARGET_LOG_COST,
                )
            )
    return results


def _targets(rows: list[Row]) -> list[str]:
    found = targets(rows)
    if not found:
        return []
    out = ["## Targets (issue 6)", "", "| target | measured | met |", "|---|---|---|"]
    for target, measured, met in found:
        out.append(f"| {target} | {measured} | {'yes' if met else 'NO' if met is False else '-'} |")
    return [*out, ""]


# --- against --baseline ----------------------------------------------------------------


def baseline_comparison(rows: list[Row]) -> list[Row]:
    """At each fan-out N: the tracker's and the baseline's CPU per delivery at the fixed rate,
    highest clean rate, and CPU per delivery at the highest sweep step both passed, with
    the ratios tracker / baseline and whether each is within ``BASELINE_TOLERANCE``."""
    out: list[Row] = []
    fixed, best = _fixed_headline(rows), _of(rows, workload="fanout-max")
    steps = [r for r in _of(rows, workload="fanout-step") if passes(r)]
    for n in sorted({r["members"] for r in fixed + best if r["server"] == "baseline"}):
        t, b = _one(fixed, server="tracker", members=n), _one(fixed, server="baseline", members=n)
        tm, bm = _one(best, server="tracker", members=n), _one(best, server="baseline", members=n)
        if not ((t and b) or (tm and bm)):
            continue
        row: Row = {"members": n, "label": _name(b or bm or {"server": "baseline"})}
        if t and b:
            cpu = _ratio(t["cpu_us_per_delivery"], b["cpu_us_per_delivery"])
            row.update(
                rate=t["rate"],
                cpu_tracker=t["cpu_us_per_delivery"],
                cpu_baseline=b["cpu_us_per_delivery"],
                cpu_spread_tracker=t.get("cpu_us_spread"),
                cpu_spread_baseline=b.get("cpu_us_spread"),
                cpu_ratio=cpu,
                cpu_within=None if cpu is None else cpu <= 1 + BASELINE_TOLERANCE,
                **_paired(t.get("cpu_us_windows"), b.get("cpu_us_windows")),
            )
        if tm and bm:
            top = tm["deliveries_per_s"] / bm["deliveries_per_s"] if bm["deliveries_per_s"] else None
            row.update(
                max_tracker=tm["deliveries_per_s"],
                max_baseline=bm["deliveries_per_s"],
                max_step_tracker=tm.get("label"),
                max_step_baseline=bm.get("label"),
                max_ratio=top,
                max_within=None if top is None else top >= 1 - BASELINE_TOLERANCE,
                max_caveat=", ".join(_caveats(tm) + _caveats(bm)),
            )
        both = {r["label"] for r in steps if r["members"] == n and r["server"] == "tracker"} & {
            r["label"] for r in steps if r["members"] == n and r["server"] == "baseline"
        }
        if both:
            step = max(both, key=lambda label: int(label.split()[-1]))
            ts = [r for r in steps if r["members"] == n and r["server"] == "tracker" and r["label"] == step][-1]
            bs = [r for r in steps if r["members"] == n and r["server"] == "baseline" and r["label"] == step][-1]
            row.update(
                step=step,
                step_cpu_tracker=ts["cpu_us_per_delivery"],
                step_cpu_baseline=bs["cpu_us_per_delivery"],
                step_cpu_ratio=_ratio(ts["cpu_us_per_delivery"], bs["cpu_us_per_delivery"]),
            )
        out.append(row)
    return out


def _paired(mine: list[float | None] | None, theirs: list[float | None] | None) -> Row:
    """The median and range of the window-by-window ratios (window i of one against window i
    of the other, run next to each other): the noise a single ratio of medians hides."""
    ratios = sorted(a / b for a, b in zip(mine or [], theirs or [], strict=False) if a and b)
    if not ratios:
        return {}
    return {
        "cpu_pair_ratio": ratios[len(ratios) // 2],
        "cpu_pair_range": [ratios[0], ratios[-1]],
        "cpu_pairs": len(ratios),
    }


def _caveats(row: Row) -> list[str]:
    out = [f"{_name(row)} gen-limited"] if row.get("generator_limited") else []
    if row.get("failed_at") is None and row["deliveries_per_s"]:
        out.append(f"{_name(row)} top step")
    return out


def _verdict(within: bool | None) -> str:
    return "-" if within is None else "yes" if within else "NO"


def baseline_lines(rows: list[Row]) -> list[str]:
    """The Markdown section comparing the tracker with ``--baseline``'s commit (empty without one)."""
    found = baseline_comparison(rows)
    if not found:
        return []
    label = found[0]["label"]
    limit = f"{BASELINE_TOLERANCE:.0%}"
    out = [
        f"## Against {label} (within {limit})",
        "",
        (
            f"`tracker` is this work tree, `{label}` the commit given to `--baseline`, run side by side "
            "(window by window in turn). Ratios are tracker / baseline. CPU us/delivery is the median of the "
            f"fixed-rate windows (min-max in brackets), within when the ratio is <= {1 + BASELINE_TOLERANCE:.2f}; "
            "`pairs` is the median (min-max) of the ratios of windows run next to each other, a view of the "
            f"noise. The highest clean rate is within when the ratio is >= {1 - BASELINE_TOLERANCE:.2f}; it "
            "is a sweep step, so both at the same step gives 1.00, which says only that neither moved by a "
            "whole step (`--steps` sets a finer ladder)."
        ),
        "",
        (
            f"| N | CPU us/delivery tracker | {label} | ratio | pairs | within | highest clean rate tracker | {label} "
            "| ratio | within | CPU us/delivery at highest common step: tracker / baseline |"
        ),
        "|---:|---:|---:|---:|---:|---|---:|---:|---:|---|---|",
    ]
    for r in found:

        def spread(key: str, r: Row = r) -> str:
            values = r.get(key)
            return f" ({_num(values[0])}-{_num(values[1])})" if values else ""

        caveat = f" ({r['max_caveat']})" if r.get("max_caveat") else ""
        step = (
            f"{r['step']}: {_num(r['step_cpu_tracker'])} / {_num(r['step_cpu_baseline'])} = {_num(r['step_cpu_ratio'])}"
            if r.get("step")
            else "-"
        )
        out.append(
            f"| {r['members']} | {_num(r.get('cpu_tracker'))}{spread('cpu_spread_tracker')} "
            f"| {_num(r.get('cpu_baseline'))}{spread('cpu_spread_baseline')} | {_num(r.get('cpu_ratio'))} "
            f"| {_num(r.get('cpu_pair_ratio'))}{spread('cpu_pair_range')} "
            f"| {_verdict(r.get('cpu_within'))} | {_num(r.get('max_tracker'), 0)} | {_num(r.get('max_baseline'), 0)} "
            f"| {_num(r.get('max_ratio'))} | {_verdict(r.get('max_within'))}{caveat} | {step} |"
        )
    return [*out, ""]


# --- charts ------------------------------------------------------------------------------


def charts(rows: list[Row], directory: Path) -> tuple[list[str], str | None]:
    """PNG charts; (paths, None) or ([], why not)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return [], "matplotlib is not installed (pip install matplotlib): no charts"
    made = []
    best = _of(rows, workload="fanout-max")
    fixed = _fixed_headline(rows)
    if best:
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        names = _names(best)
        for server in ORDER:
            points = sorted((r["members"], r["deliveries_per_s"]) for r in _of(best, server=server))
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", label=names[server])
        ax.set(
            xscale="log",
            xlabel="members (N)",
            ylabel="deliveries/s",
            title="Highest rate with zero loss and p99 < 100 ms",
        )
        ax.grid(True, alpha=0.3)
        ax.legend()
        made.append(_save(fig, plt, directory / "throughput_vs_members.png"))
    if fixed:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
        sizes = sorted({r["members"] for r in fixed})
        names = _names(fixed)
        shown = [server for server in ORDER if server in names]
        width = 0.8 / max(1, len(shown))
        middle = width * (len(shown) - 1) / 2
        for i, server in enumerate(shown):
            xs = [j + i * width for j in range(len(sizes))]
            for ax, key in zip(axes, ("p50_ms", "p99_ms"), strict=True):
                values = [(_one(fixed, server=server, members=n) or {}).get(key) or 0 for n in sizes]
                ax.bar(xs, values, width, label=names[server])
        for ax, key in zip(axes, ("p50", "p99"), strict=True):
            ax.set_xticks([j + middle for j in range(len(sizes))], [f"N={n}" for n in sizes])
            ax.set(ylabel="ms", title=f"{key} end-to-end latency at the fixed rates", yscale="log")
            ax.legend()
        made.append(_save(fig, plt, directory / "latency.png"))
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for i, server in enumerate(shown):
            values = [(_one(fixed, server=server, members=n) or {}).get("cpu_us_per_delivery") or 0 for n in sizes]
            ax.bar([j + i * width for j in range(len(sizes))], values, width, label=names[server])
        ax.set_xticks([j + middle for j in range(len(sizes))], [f"N={n}" for n in sizes])
        ax.set(ylabel="server CPU us per delivery", title="Server CPU per delivery (lower is better)")
        ax.legend()
        made.append(_save(fig, plt, directory / "cpu_per_delivery.png"))
    return made, None


def _save(fig: Any, plt: Any, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


def write(rows: list[Row], plan: dict[str, Any], directory: Path) -> tuple[Path, list[str], str | None]:
    """Write results.json, results.md and the charts into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    info = machine()
    made, why_not = charts(rows, directory)
    (directory / "results.json").write_text(
        json.dumps(
            {
                "machine": info,
                "plan": plan,
                "targets": targets(rows),
                "baseline": baseline_comparison(rows),
                "rows": rows,
            },
            indent=1,
            default=str,
        )
    )
    text = markdown(rows, info, plan, made)
    if why_not:
        text += f"\n{why_not}\n"
    path = directory / "results.md"
    path.write_text(text)
    return path, made, why_not
