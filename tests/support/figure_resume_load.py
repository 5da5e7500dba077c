"""Figures 3 (load), 4 (connection abuse), 5 (resume) and the rotation tests, from the rows.

Same conventions as support.figure_tables: counted cells plain, ``Measured`` ones in italics.
"""

from __future__ import annotations

from support.figure_tables import CHECKER, CHECKER_HEADER, bold, checks, header, label, ordered
from support.figures import Block, Line, Measured, Row, counted, extras, number, rows_of

RESUMES = {
    "dropped_connection": "a member's TCP cut with no close frame",
    "grace_ends": "the resume grace runs out",
    "wrong_resumes": "wrong resumes",
    "replaced": "a resume while the old connection is still open",
    "resent_id": "a message resent with the same `id` after a drop",
    "restart_SIGKILL": "SIGKILL of the tracker while another member sends",
    "restart_SIGTERM": "the same with SIGTERM (close 1012)",
    "network_cut_10s": "a piped `chat-client` cut off for 10 s inside `unshare -n`",
    "restart_together": "members resuming together after a restart",
    "gone": "a resume past what retention kept (`recovered: false`, `gone`)",
}
ABUSE = {
    "one_address": "one address: WebSocket upgrades that never send a password",
    "strangers_fill": "many addresses fill `--max-connections`",
    "slowloris": "slowloris: half-open requests and upgrades",
    "dribble": "one header byte every 0.2 s",
    "forged_forwarded_for": "forged `X-Forwarded-For` (untrusted sender)",
    "trusted_forwarded_for": "`X-Forwarded-For` from the trusted proxy",
    "descriptor_ceiling": "descriptor ceiling (`RLIMIT_NOFILE` 300)",
    "descriptor_check": "descriptor check at start: too few",
    "descriptor_raise": "descriptor check at start: soft limit raised",
}
ROTATIONS = {
    "size_under_load": "size rotation under load",
    "daily": "daily rotation at UTC midnight",
    "retention": "retention",
    "sighup": "SIGHUP after an external rename",
    "truncation": "external truncation",
    "log_across_segments": "`/log` across segments",
}


def resume(rows: list[Row]) -> Block:
    """Figure 5: one line per resume test run, injected and the checker's counts."""
    chosen = rows_of(rows, "resume")
    lines = header("test", "injected", *CHECKER_HEADER)
    for test, group in ordered(chosen, "test", RESUMES):
        for row in sorted(group, key=lambda row: int(row.get("members", 0))):
            lines.append([label(test, RESUMES) + _members(row), counted([row], "injected"), *checks([row])])
    lines.append([bold(f"total: {number(len(chosen))} tests"), bold(counted(chosen, "injected"))])
    lines[-1] += [bold(cell) for cell in checks(chosen)]
    return Block(lines)


def resume_measured(rows: list[Row]) -> Block:
    lines = header("test", "measured in this run")
    for test, group in ordered(rows_of(rows, "resume"), "test", RESUMES):
        for row in sorted(group, key=lambda row: int(row.get("members", 0))):
            text = extras(row, ("test", "members", "injected", *CHECKER))
            if text != "-":
                lines.append([label(test, RESUMES) + _members(row), Measured(text)])
    return Block(lines)


def _members(row: Row) -> str:
    if "members" not in row:
        return ""
    return f", {number(row['members'])} member" + ("" if row["members"] == 1 else "s")


def rotation(rows: list[Row]) -> Block:
    """The rotation tests on real trackers: what each counted in this run."""
    lines = header("test", "measured in this run")
    for test, group in ordered(rows_of(rows, "rotation"), "test", ROTATIONS):
        text = "; ".join(extras(row, ("test",)) for row in group)
        lines.append([label(test, ROTATIONS), Measured(text)])
    return Block(lines)


def load_line(row: Row) -> Line:
    """One soak: its size (counted), what it delivered and lost, and what it measured."""
    shape = f"{number(row.get('members', '?'))} x {number(row.get('rate_per_s', '?'))} msg/s"
    slope = row.get("rss_slope_mib_per_min")
    latency = f"{number(row.get('latency_p50_ms', '?'))} ms / {number(row.get('latency_p99_ms', '?'))} ms"
    return [
        "full" if row.get("full") else "CI",
        shape,
        Measured(f"{number(row.get('chat_seconds', '?'))} s"),
        Measured(f"{number(row.get('accepted', '?'))} = {number(row.get('logged', '?'))}"),
        Measured(f"{number(row.get('deliveries', '?'))} ({number(row.get('expected_deliveries', '?'))})"),
        counted([row], "lost"),
        Measured(f"{number(row.get('rss_peak_mib', '?'))} MiB"),
        Measured("not measured" if slope is None else f"{number(slope)} MiB/min"),
        Measured(latency),
        Measured(f"{number(row.get('exit_seconds', '?'))} s"),
    ]


def load(rows: list[Row]) -> Block:
    """Figure 3: the soak."""
    lines = header(
        "form",
        "members x rate",
        "duration",
        "accepted = logged",
        "deliveries (expected)",
        "lost",
        "peak RSS",
        "RSS slope",
        "echo latency p50 / p99",
        "Ctrl+C exit",
    )
    return Block(lines + [load_line(row) for row in rows_of(rows, "load")])


def connection_abuse(rows: list[Row]) -> Block:
    """Figure 4: sockets per attack (counted) and what each test measured."""
    chosen = rows_of(rows, "connection_abuse")
    lines = header("attack", "sockets", "measured in this run")
    for test, group in ordered(chosen, "test", ABUSE):
        text = "; ".join(extras(row, ("test", "sockets")) for row in group)
        lines.append([label(test, ABUSE), counted(group, "sockets"), Measured(text)])
    lines.append([bold("total"), bold(counted(chosen, "sockets")), "-"])
    return Block(lines)


def resume_together(rows: list[Row]) -> Block:
    """How long members took to resume together after a restart."""
    lines = header("members", "seconds")
    together = [row for row in rows_of(rows, "resume") if row.get("test") == "restart_together"]
    for row in sorted(together, key=lambda row: int(row.get("members", 0))):
        lines.append([number(row.get("members", "?")), Measured(number(row.get("seconds", "not measured")))])
    return Block(lines)
