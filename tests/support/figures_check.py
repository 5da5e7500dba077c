"""Pytest plugin: a run of every figure-producing test fails when the docs' figures are not its own.

When one pytest session ran every test that writes figures (``FIGURE_TESTS``: the whole suite in
CI, as ``scripts/test`` runs it) and each of them passed, the figures this session recorded (rows
written since it started) are rendered as ``scripts/reliability`` prints them and compared with
the generated blocks of docs/reliability.md and README.md (support.figures_docs): a counted cell
that differs, a row missing, a block missing fail the session, with a diff and the fix. A session
that ran only some of them (``scripts/test tests/core``, ``-k``, a node id) checks nothing.
tests/conftest.py calls ``pytest_configure`` from here.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.figures import load_rows
from support.figures_docs import DOCS, FIX, ROOT, differences, read_docs

FIGURE_TESTS = (
    "tests/core/test_session_fuzz.py",
    "tests/reliability/test_*.py",
    "tests/redis/test_replica_faults.py",
    "tests/redis/test_replicas.py",
    "tests/redis/test_replica_behind.py",
    "tests/redis/test_moderation_survives_wipe.py",
    "tests/*/test_nemesis*.py",
)
NOT_FIGURES = {"test_figures_render.py"}  # the renderer's own unit test writes no figures


def figure_files(root: Path = ROOT) -> set[Path]:
    """Every test file whose tests write the figures (or check what the figures claim)."""
    found = {path.resolve() for pattern in FIGURE_TESTS for path in root.glob(pattern)}
    return {path for path in found if path.name not in NOT_FIGURES}


def ran_every_figure_test(figures: set[Path], collected: set[Path], passed: bool, narrowed: bool) -> bool:
    """Whether this session's figures are a whole campaign: every figure file run, nothing left out."""
    return bool(figures) and figures <= collected and passed and not narrowed


def names_single_tests(args: Iterable[str]) -> bool:
    return any("::" in arg for arg in args)


@dataclass
class Campaign:
    """What a session checks: its figure test files, where its rows go, the docs, the form."""

    figures: set[Path]
    results: Path
    docs: tuple[Path, ...] = DOCS
    full: bool = False


def this_campaign() -> Campaign:
    from support.campaign import FIGURES, FULL  # only now: it imports the tracker

    return Campaign(figure_files(), FIGURES, DOCS, FULL)


class FiguresCheck:
    """Follows one session's figure tests; at its end compares their figures with the docs."""

    def __init__(self, config: pytest.Config, campaign: Campaign) -> None:
        self.config = config
        self.campaign = campaign
        self.started = time.time()
        self.collected: set[Path] = set()
        self.narrowed = names_single_tests(config.args)
        self.all_passed = True
        self.checked = False
        self.problems: list[str] = []

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.collected = {item.path.resolve() for item in session.items}

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self.narrowed = self.narrowed or any(item.path.resolve() in self.campaign.figures for item in items)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        in_figures = (self.config.rootpath / report.location[0]).resolve() in self.campaign.figures
        if in_figures and (report.failed or (report.skipped and not hasattr(report, "wasxfail"))):
            self.all_passed = False

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        ran = ran_every_figure_test(self.campaign.figures, self.collected, self.all_passed, self.narrowed)
        if not ran or session.exitstatus != pytest.ExitCode.OK or self.config.option.collectonly:
            return
        rows = load_rows(self.campaign.results, since=self.started)
        self.problems = differences(rows, self.campaign.full, read_docs(self.campaign.docs))
        self.checked = True
        if self.problems:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.checked:
            return
        if not self.problems:
            terminalreporter.line(
                "reliability figures: this run's counted figures are the docs' (support.figures_check)"
            )
            return
        terminalreporter.section("reliability figures differ from the docs", red=True)
        for problem in self.problems:
            terminalreporter.line(problem)
        terminalreporter.line(f"Counted figures must be the docs' (cells in _italics_ are measured). Fix: {FIX}")


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(FiguresCheck(config, this_campaign()), "figures_check_run")
