"""Figures 1, 2 and 6 of docs/reliability.md and the summary, from the rows (see support.figures).

Rows are grouped by their ``area``/``fault`` and put in a fixed order (the labels below, then any
other in name order), so the tables do not depend on the order the tests ran in.
"""

from __future__ import annotations

from collections.abc import Iterable

from support.figures import Block, Line, Measured, Part, Row, counted, extras, maybe_measured, number, rows_of

AREAS = {
    "message_text": "message text (JSON and plain dialects)",
    "client_display": "client display",
    "names": "names",
    "name_race": "name races",
    "frames_protocol": "frames and protocol",
    "passwords": "passwords",
    "guessing": "guessing",
    "idle_sockets": "idle sockets",
    "flood": "flood",
    "stateful_ws": "stateful model over real sockets",
    "stateful_model": "stateful model over real sockets",
    "rest": "REST",
    "rest_schemathesis": "REST, schemathesis",
    "rest_schemathesis_admin": "REST, schemathesis on /admin",
    "session_fuzz": "dialogue state machine, fuzzed without sockets",
}
# What a generator chose (Hypothesis, schemathesis), not a fixed list: their size varies run to run.
GENERATED_AREAS = {"stateful_ws", "stateful_model", "rest_schemathesis", "rest_schemathesis_admin", "session_fuzz"}
HARM = ("crashes", "server_errors", "forged_lines", "admitted")
HARM_HEADER = ["crashes", "5xx", "forged lines", "admitted without the password"]

FAULTS = {
    "sigkill": "SIGKILL of the tracker mid-burst (and torn last lines)",
    "disk_full": "disk full under chat.log",
    "sigkill_during_rotation": "SIGKILL during a rotation",
    "disk_full_during_rotation": "disk full during a rotation",
    "sigint_200": "Ctrl+C (SIGINT) with 200 members",
    "sigstop_client": "a real `chat-client` frozen with SIGSTOP",
    "killed_mid_frame": "a member SIGKILLed half-way through a frame",
    "vanished_peer_netns": "a member that vanishes without FIN or RST",
    "replica_sigkill": "a replica SIGKILLed under load",
    "replica_started": "a replica started while members chat",
    "archiver_sigkill": "the archiver SIGKILLed and restarted",
    "redis_stopped_10s": "Redis stopped for 10 s",
    "redis_sigkill_aof": "Redis SIGKILLed, restarted from its AOF",
    "redis_wiped": "Redis wiped and started empty",
}
REPLICA_PREFIXES = ("replica", "redis", "archiver", "moderation", "ban")
CHECKER = ("lost", "duplicated", "reordered", "forged", "gaps_announced")
CHECKER_HEADER = ["lost", "duplicated", "reordered", "forged", "gaps announced"]
# A gap is announced when a fault happened to outrun what was kept: how many depends on timing.
TIMED_CHECKS = {"gaps_announced"}
# Single-tracker faults whose count depends on timing: a SIGKILL can tear a line by itself.
TIMED_INJECTED = {"sigkill"}


def checks(rows: list[Row]) -> Line:
    """The checker's counts summed over ``rows``, one cell each."""
    return [maybe_measured(counted(rows, key), key in TIMED_CHECKS) for key in CHECKER]


def header(*names: str) -> list[Line]:
    return [list(names), ["---"] * len(names)]


def ordered(rows: Iterable[Row], key: str, labels: dict[str, str]) -> list[tuple[str, list[Row]]]:
    """Rows grouped by ``row[key]``: the labelled ones in label order, then the rest by name."""
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(str(row.get(key, "?")), []).append(row)
    order = [name for name in labels if name in groups] + sorted(name for name in groups if name not in labels)
    return [(name, groups[name]) for name in order]


def label(name: str, labels: dict[str, str]) -> str:
    return labels.get(name, name.replace("_", " "))


def bold(part: Part) -> Part:
    return Measured(f"**{part.text}**") if isinstance(part, Measured) else f"**{part}**"


def bad_inputs(rows: list[Row]) -> Block:
    """Figure 1: inputs tried per area, and what came of them."""
    bad = rows_of(rows, "bad_inputs")
    lines = header("area", "inputs", *HARM_HEADER)
    for area, group in ordered(bad, "area", AREAS):
        tried = maybe_measured(counted(group, "tried"), area in GENERATED_AREAS)
        lines.append([label(area, AREAS), tried])
        lines[-1] += [counted(group, key) for key in HARM]
    sum_tried = maybe_measured(counted(bad, "tried"), any(row.get("area") in GENERATED_AREAS for row in bad))
    lines.append([bold("total"), bold(sum_tried), *(bold(counted(bad, key)) for key in HARM)])
    return Block(lines)


def bad_inputs_measured(rows: list[Row]) -> Block:
    """What Figure 1's tests measured besides their counts (latencies, the flood's heaviest logger)."""
    lines = header("area", "measured in this run")
    for area, group in ordered(rows_of(rows, "bad_inputs"), "area", AREAS):
        found = [extras(row, ("area", "tried", *HARM)) for row in group]
        if any(text != "-" for text in found):
            lines.append([label(area, AREAS), Measured("; ".join(found))])
    return Block(lines)


def is_replica_fault(row: Row) -> bool:
    return str(row.get("fault", "")).startswith(REPLICA_PREFIXES)


def fault_lines(rows: list[Row], torn: bool) -> list[Line]:
    """One line per kind of fault: injected, then the checker's counts (and torn lines left)."""
    lines: list[Line] = []
    for fault, group in ordered(rows, "fault", FAULTS):
        cells: Line = [label(fault, FAULTS), maybe_measured(counted(group, "injected"), fault in TIMED_INJECTED)]
        cells += checks(group)
        lines.append(cells + ([counted(group, "torn_left")] if torn else []))
    return lines


def total_line(rows: list[Row], torn_rows: list[Row] | None) -> Line:
    """The total of a fault table; torn lines left summed over ``torn_rows`` (None: no such column)."""
    timed = any(row.get("fault") in TIMED_INJECTED for row in rows)
    cells: Line = [bold("total"), bold(maybe_measured(counted(rows, "injected"), timed))]
    cells += [bold(cell) for cell in checks(rows)]
    return cells + ([] if torn_rows is None else [bold(counted(torn_rows, "torn_left"))])


def schedules_line(rows: list[Row]) -> Line:
    """The random schedules (nemesis) as one line: how many, their faults, the checker's counts."""
    schedules = rows_of(rows, "nemesis")
    line: Line = [f"random schedules (nemesis): {number(len(schedules))}", counted(schedules, "injected")]
    return line + checks(schedules) + ["-"]


def faults(rows: list[Row]) -> Block:
    """Figure 2: the single tracker's faults and the random schedules."""
    single = [row for row in rows_of(rows, "faults") if not is_replica_fault(row)]
    lines = header("fault", "injected", *CHECKER_HEADER, "torn lines left")
    lines += fault_lines(single, torn=True)
    schedules = rows_of(rows, "nemesis")
    if schedules:
        lines.append(schedules_line(rows))
    lines.append(total_line(single + schedules, torn_rows=single))
    return Block(lines)


def faults_measured(rows: list[Row], replicas: bool) -> Block:
    """What the fault tests measured besides their counts, one line per row."""
    chosen = [row for row in rows_of(rows, "faults") if is_replica_fault(row) == replicas]
    lines = header("fault", "measured in this run")
    for fault, group in ordered(chosen, "fault", FAULTS):
        text = "; ".join(extras(row, ("fault", "injected", *CHECKER, "torn_left")) for row in group)
        lines.append([label(fault, FAULTS), Measured(text)])
    return Block(lines)


def replicas(rows: list[Row]) -> Block:
    """Figure 6: faults of replicas, Redis and the archiver."""
    chosen = [row for row in rows_of(rows, "faults") if is_replica_fault(row)]
    lines = header("fault", "injected", *CHECKER_HEADER)
    lines += fault_lines(chosen, torn=False)
    lines.append(total_line(chosen, torn_rows=None))
    return Block(lines)


def nemesis_kinds(rows: list[Row]) -> Block:
    """The random schedules' faults by kind."""
    by_kind: dict[str, int] = {}
    for row in rows_of(rows, "nemesis"):
        for kind, count in dict(row.get("kinds", {})).items():
            by_kind[kind] = by_kind.get(kind, 0) + int(count)
    lines = header("kind of fault", "injected")
    lines += [[kind.replace("_", " "), number(by_kind[kind])] for kind in sorted(by_kind)]
    return Block(lines)


def summary_parts(rows: list[Row]) -> Line:
    """The campaign in one sentence: inputs, faults, and what the checker found."""
    bad = rows_of(rows, "bad_inputs")
    tried = maybe_measured(counted(bad, "tried"), any(row.get("area") in GENERATED_AREAS for row in bad))
    hurt = [rows_of(rows, kind) for kind in ("faults", "nemesis", "resume")]
    harmed = [row for group in hurt for row in group]
    line: Line = [tried, " bad inputs tried: "]
    line += _pairs(bad, HARM, HARM_HEADER)
    line += ["; ", _timed(harmed), " faults injected, ", counted(rows_of(rows, "nemesis"), "injected")]
    line += [" of them in ", number(len(rows_of(rows, "nemesis"))), " random schedules: "]
    return line + _pairs(harmed, CHECKER, CHECKER_HEADER) + ["."]


def _timed(rows: list[Row]) -> Part:
    return maybe_measured(counted(rows, "injected"), any(row.get("fault") in TIMED_INJECTED for row in rows))


def _pairs(rows: list[Row], keys: Iterable[str], names: Iterable[str]) -> Line:
    line: Line = []
    for index, (key, name) in enumerate(zip(keys, names, strict=True)):
        line += [", " if index else "", maybe_measured(counted(rows, key), key in TIMED_CHECKS), f" {name}"]
    return line


def summary(rows: list[Row]) -> Block:
    return Block([summary_parts(rows)], table=False)
