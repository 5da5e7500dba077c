"""The figures' renderer and the docs check on hand-made rows (support.figures_docs, support.figures_check)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from support.figures_check import figure_files, ran_every_figure_test
from support.figures_docs import BLOCKS, differences, doc_blocks, rewritten

pytest_plugins = ["pytester"]

CHECKED = {"lost": 0, "duplicated": 0, "reordered": 0, "forged": 0, "gaps_announced": 0}
HARMLESS = {"crashes": 0, "server_errors": 0, "forged_lines": 0, "admitted": 0}
ROWS: list[dict[str, Any]] = [
    {"figure": "bad_inputs", "area": "names", "tried": 31, **HARMLESS},
    {"figure": "bad_inputs", "area": "flood", "tried": 10, **HARMLESS, "most_logged": 21, "burst": 20},
    {"figure": "bad_inputs", "area": "session_fuzz", "tried": 13120, **HARMLESS},
    {"figure": "faults", "fault": "sigkill", "injected": 24, **CHECKED, "torn_left": 0, "kills": 20},
    {"figure": "faults", "fault": "disk_full", "injected": 1, **CHECKED, "torn_left": 0},
    {"figure": "faults", "fault": "replica_sigkill", "injected": 10, **CHECKED, "acknowledged": 7475},
    {"figure": "nemesis", "seed": 1, "injected": 3, "kinds": {"kill_tracker": 2, "freeze": 1}, **CHECKED},
    {"figure": "nemesis", "seed": 2, "injected": 2, "kinds": {"kill_tracker": 2}, **CHECKED},
    {"figure": "resume", "test": "gone", "injected": 1, **CHECKED, "replayed": 40},
    {"figure": "resume", "test": "restart_together", "members": 200, "injected": 1, **CHECKED, "seconds": 0.58},
    {"figure": "rotation", "test": "size_under_load", "segments": 7, "messages": 4500},
    {"figure": "load", "members": 1000, "rate_per_s": 20.0, "chat_seconds": 30.1, "lost": 0, "latency_p50_ms": 8.5},
    {"figure": "connection_abuse", "test": "slowloris", "sockets": 2200, "echo_max_ms": 132.0},
]


def docs_of(rows: list[dict[str, Any]]) -> dict[Path, str]:
    """A document holding every block, written from ``rows``."""
    template = "\n\n".join(f"<!-- figures:{name} -->\n<!-- /figures:{name} -->" for name in BLOCKS)
    return {Path("reliability.md"): "# Figures\n\n" + rewritten(template, rows, full=False) + "\n"}


def changed(**change: Any) -> list[dict[str, Any]]:
    """ROWS with one row's keys changed: ``changed(row=3, lost=1)``."""
    rows = copy.deepcopy(ROWS)
    rows[change.pop("row")].update(change)
    return rows


def test_the_docs_written_from_a_run_match_that_run() -> None:
    assert differences(ROWS, False, docs_of(ROWS)) == []


def test_a_missing_row_fails() -> None:
    problems = differences([row for row in ROWS if row.get("fault") != "disk_full"], False, docs_of(ROWS))
    assert len(problems) == 2  # Figure 2 and its measured table
    assert "-| disk full under chat.log | 1 | 0 | 0 | 0 | 0 | _0_ | 0 |" in problems[0]


def test_a_changed_counted_cell_fails() -> None:
    (problem,) = [p for p in differences(changed(row=4, lost=1), False, docs_of(ROWS)) if "(faults)" in p]
    assert "+| disk full under chat.log | 1 | 1 |" in problem


def test_a_changed_measured_cell_passes() -> None:
    rows = changed(row=11, latency_p50_ms=250.0, chat_seconds=30.4)
    rows[2]["tried"] = 12_977  # a fuzzer's count: what Hypothesis generated this time
    rows[1]["most_logged"] = 23
    assert differences(rows, False, docs_of(ROWS)) == []


def test_a_figure_no_row_counted_says_so_rather_than_zero() -> None:
    rows = copy.deepcopy(ROWS)
    del rows[4]["lost"]
    docs = docs_of(rows)
    (faults,) = [content for name, content in doc_blocks(docs[Path("reliability.md")], "figures") if name == "faults"]
    assert "| disk full under chat.log | 1 | not counted | 0 |" in faults
    assert differences(ROWS, False, docs) != []  # and a run that counted it no longer matches


def test_every_figure_must_be_in_the_docs() -> None:
    docs = {path: text.replace("<!-- figures:resume -->", "") for path, text in docs_of(ROWS).items()}
    assert "no <!-- figures:resume --> block in the docs" in differences(ROWS, False, docs)


def test_the_random_schedules_are_summed() -> None:
    (text,) = docs_of(ROWS).values()
    assert "| random schedules (nemesis): 2 | 5 | 0 | 0 | 0 | 0 | _0_ | - |" in text
    assert "| kill tracker | 4 |" in text and "| freeze | 1 |" in text
    assert "_13,161_ bad inputs tried: 0 crashes, 0 5xx, 0 forged lines, 0 admitted without the password;" in text
    assert "; _42_ faults injected, 5 of them in 2 random schedules: 0 lost, 0 duplicated," in text


def test_the_check_applies_only_to_a_session_that_ran_every_figure_test() -> None:
    files = figure_files()
    assert any(path.name == "test_session_fuzz.py" for path in files) and len(files) > 3
    assert ran_every_figure_test(files, files | {Path("tests/core/test_room.py")}, passed=True, narrowed=False)
    some = {path for path in files if path.parent.name == "core"}
    assert not ran_every_figure_test(files, some, passed=True, narrowed=False)
    assert not ran_every_figure_test(files, files, passed=False, narrowed=False)
    assert not ran_every_figure_test(files, files, passed=True, narrowed=True)


COUNTING_TEST = """
import json, time
from pathlib import Path

def test_counts():
    rows = json.loads(Path("rows.json").read_text())
    with Path("figures.jsonl").open("a") as file:
        file.writelines(json.dumps({**row, "at": time.time()}) + "\\n" for row in rows)
"""
CHECKING_CONFTEST = """
from pathlib import Path
from support.figures_check import Campaign, FiguresCheck

def pytest_configure(config):
    here = Path.cwd()
    campaign = Campaign({here / "test_counts.py"}, here / "figures.jsonl", (here / "reliability.md",))
    config.pluginmanager.register(FiguresCheck(config, campaign), "check")
"""


def run_campaign(pytester: pytest.Pytester, docs_rows: list[dict[str, Any]], *args: str) -> pytest.RunResult:
    """A session whose one figure test records ROWS, checked against docs written from ``docs_rows``."""
    (pytester.path / "rows.json").write_text(json.dumps(ROWS))
    (pytester.path / "reliability.md").write_text(next(iter(docs_of(docs_rows).values())))
    pytester.makepyfile(test_counts=COUNTING_TEST)
    pytester.makeconftest(CHECKING_CONFTEST)
    return pytester.runpytest(*args)


def test_a_session_of_every_figure_test_passes_when_its_counts_are_the_docs(pytester: pytest.Pytester) -> None:
    result = run_campaign(pytester, ROWS)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*counted figures are the docs'*"])


def test_a_session_of_every_figure_test_fails_when_a_count_is_not_the_docs(pytester: pytest.Pytester) -> None:
    result = run_campaign(pytester, changed(row=4, lost=1))
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*differ from the docs*", "*+| disk full under chat.log | 1 | 0 |*", "*Fix: *"])


def test_a_session_that_left_a_figure_test_out_checks_nothing(pytester: pytest.Pytester) -> None:
    result = run_campaign(pytester, changed(row=4, lost=1), "-k", "not counts")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    assert "figures" not in result.stdout.str()
