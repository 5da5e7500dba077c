"""The security workload (``python -m bench --workloads security``) runs end to end at toy sizes against
this tree's tracker and writes its table; no figure is asserted beyond what today's tracker must show."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.benchrun import run_bench
from support.timing import UNIT


@pytest.mark.timeout(18 * UNIT)
def test_security_smoke_run_attacks_this_tree_and_writes_the_table(tmp_path: Path) -> None:
    """A body flood, a resume after a restart, token reuse and DNS rebinding, each against a fresh
    tracker: every attack gets a row with an answer (no harness error), printed and in security.md."""
    done = run_bench(
        "--smoke",
        "--workloads",
        "security",
        "--servers",
        "tracker",
        "--attacks",
        "1,3,6,7",
        "--results",
        str(tmp_path),
        timeout=16 * UNIT,
    )
    table = (tmp_path / "security.md").read_text()
    assert "## Security" in table and "## Security" in done.stdout
    rows = json.loads((tmp_path / "security.json").read_text())["rows"]
    assert [row["attack"] for row in rows] == ["1", "1", "3", "6", "7"]
    assert {row["server"] for row in rows} == {"tracker"}
    for row in rows:
        assert not row["summary"].startswith(("error", "incomplete")), row
        assert f"| {row['attack']} | {row['title']} |" in table
    body, _, resume, token, rebinding = (row["result"] for row in rows)
    assert body["body"]["status"] in (401, 404, 413, 422), body  # answered, whatever the version
    assert body["body"]["rss_peak_mb"] >= body["body"]["rss_before_mb"] > 0
    assert resume["one"]["answer"] == "resumed" and resume["one"]["read"] == resume["one"]["replayed"], resume
    assert token["first"] == "resumed", token  # the welcome's token resumes from another address
    assert isinstance(rebinding["ws"], int), rebinding
