"""Pytest plugin: in CI (``support.environment.in_ci``) any skipped test fails the run.

A test that cannot run in CI must not let the run pass quietly: a skip while setting up, inside
the test, or while collecting a module (``pytest.skip(allow_module_level=True)``, ``importorskip``)
is listed in a "skipped in CI" section, and a passing exit status becomes 1 (tests failed).
tests/conftest.py calls ``pytest_configure`` from here; tests/test_no_skips_in_ci.py runs
pytest with ``-p support.no_skips_in_ci`` to check both sides.
"""

from __future__ import annotations

import pytest

from support.environment import in_ci

# Exit statuses a skip must not leave standing: success, and "nothing ran" (every module skipped).
_PASSING = (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)


class NoSkipsInCI:
    """Collects the skips of one pytest run and fails the run if there were any."""

    def __init__(self) -> None:
        self.skips: list[str] = []

    def _record(self, report: pytest.CollectReport | pytest.TestReport) -> None:
        # An expected failure reports as skipped too, but that test did run.
        if not report.skipped or hasattr(report, "wasxfail"):
            return
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        self.skips.append(f"{report.nodeid or '(collection)'}: {reason}")

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        self._record(report)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._record(report)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.skips and session.exitstatus in _PASSING:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.skips:
            return
        terminalreporter.section("skipped in CI", red=True)
        terminalreporter.line(f"{len(self.skips)} skipped under CI, which fails the run (a CI test must run):")
        for skip in self.skips:
            terminalreporter.line(f"  {skip}")


def pytest_configure(config: pytest.Config) -> None:
    """Only in CI: locally a test whose tool is missing still skips with its reason."""
    if in_ci():
        config.pluginmanager.register(NoSkipsInCI(), "no_skips_in_ci_run")
