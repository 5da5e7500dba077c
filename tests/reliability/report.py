"""Sum the campaign's figures: ``python tests/reliability/report.py [--run] [pytest args]``.

With ``--run`` it first empties ``results/`` and runs ``pytest tests/reliability`` (pass
RELIABILITY_FULL=1 in the environment for the long forms); then it prints the three
figures of docs/reliability.md as Markdown, from ``results/figures.jsonl``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/: the support package, as for pytest

from support.campaign import FIGURES  # noqa: E402


def load() -> list[dict[str, Any]]:
    if not FIGURES.exists():
        return []
    return [json.loads(line) for line in FIGURES.read_text(encoding="utf-8").splitlines() if line.strip()]


def render(rows: list[dict[str, Any]]) -> str:
    out = []
    bad = [r for r in rows if r["figure"] == "bad_inputs"]
    by_area: dict[str, int] = defaultdict(int)
    for row in bad:
        by_area[row["area"]] += row["tried"]
    totals = {
        k: sum(r.get(k, 0) for r in bad) for k in ("tried", "crashes", "server_errors", "forged_lines", "admitted")
    }
    out.append("### Bad inputs tried\n")
    out.append("| area | inputs |\n|---|---|")
    out += [f"| {area} | {count} |" for area, count in sorted(by_area.items())]
    out.append(
        f"| **total** | **{totals['tried']}**: {totals['crashes']} crashes, {totals['server_errors']} 5xx, "
        f"{totals['forged_lines']} forged lines, {totals['admitted']} admitted without the password |\n"
    )
    faults = [r for r in rows if r["figure"] == "faults"]
    by_fault: dict[str, int] = defaultdict(int)
    for row in faults:
        by_fault[row["fault"]] += row["injected"]
    out.append("### Faults injected\n")
    out.append("| fault | injected |\n|---|---|")
    out += [f"| {fault} | {count} |" for fault, count in sorted(by_fault.items())]
    kills = [r for r in faults if r["fault"] == "sigkill"]
    lost = sum(r["lost"] for r in faults)
    torn = sum(r["torn_left"] for r in faults)
    out.append(f"| **total** | **{sum(by_fault.values())}**: {lost} lost lines, {torn} torn lines left |\n")
    if kills:
        k = kills[-1]
        out.append(
            f"SIGKILL rounds: {k['kills']} kills, {k['distinct_received']} distinct messages received by "
            f"members, all among the {k['logged']} logged; {k['torn_tails']} torn tails repaired.\n"
        )
    out.append("### Load held\n")
    for row in [r for r in rows if r["figure"] == "load"]:
        out.append(
            f"- {row['members']} members x {row['rate_per_s']:g} msg/s x {row['chat_seconds']:g} s: "
            f"{row['accepted']} accepted = {row['logged']} logged; {row['deliveries']} deliveries of "
            f"{row['expected_deliveries']} expected ({row['lost']} lost); peak RSS {row['rss_peak_mib']} MiB; "
            f"echo latency p50 {row['latency_p50_ms']} ms, p99 {row['latency_p99_ms']} ms; "
            f"SIGINT exit in {row['exit_seconds']} s"
        )
    abuse = [r for r in rows if r["figure"] == "connection_abuse"]
    if abuse:
        out.append("\n### Connection abuse\n")
        for row in abuse:
            details = ", ".join(f"{k} {v}" for k, v in row.items() if k not in ("figure", "at", "test"))
            out.append(f"- {row['test']}: {details}")
        out.append(f"- **total sockets**: {sum(r['sockets'] for r in abuse)}")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    status = 0
    if argv and argv[0] == "--run":
        FIGURES.unlink(missing_ok=True)
        status = subprocess.call([sys.executable, "-m", "pytest", str(HERE), "-q", *argv[1:]], cwd=HERE.parent.parent)
    print(render(load()))
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
