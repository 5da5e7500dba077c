"""In CI a skipped test fails the run; locally it only skips (support/no_skips_in_ci.py, support.environment.in_ci).

Each case runs pytest on a small test directory of its own with the plugin, under a CI value
or none, and checks the run's outcome and exit status as CI would read them.
"""

from __future__ import annotations

import pytest

from support.environment import in_ci

pytest_plugins = ["pytester"]

SKIPPING = """
import pytest

def test_runs():
    assert True

def test_needs_a_missing_tool():
    pytest.skip("tool X is not installed")
"""
MODULE_SKIPPING = """
import pytest

pytest.skip("this module needs tool Y", allow_module_level=True)

def test_never_collected():
    assert True
"""


def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str | None) -> pytest.RunResult:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    return pytester.runpytest("-p", "support.no_skips_in_ci")


@pytest.mark.parametrize("ci", ["true", "1", "yes", "True", "github"])
def test_a_skip_fails_the_run_under_any_ci_value(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str
) -> None:
    pytester.makepyfile(test_skipping=SKIPPING)
    result = run(pytester, monkeypatch, ci)
    result.assert_outcomes(passed=1, skipped=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["*skipped in CI*", "*test_skipping.py::test_needs_a_missing_tool*tool X is not installed*"]
    )


def test_a_module_skipped_at_collection_fails_the_run_in_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_module_skipping=MODULE_SKIPPING)
    result = run(pytester, monkeypatch, "1")
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # not 5, "no tests collected"
    result.stdout.fnmatch_lines(["*skipped in CI*", "*test_module_skipping.py*this module needs tool Y*"])


@pytest.mark.parametrize("ci", [None, "", "0", "false", "FALSE", "no"])
def test_outside_ci_a_skip_only_skips(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str | None
) -> None:
    pytester.makepyfile(test_skipping=SKIPPING)
    result = run(pytester, monkeypatch, ci)
    result.assert_outcomes(passed=1, skipped=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.no_fnmatch_line("*skipped in CI*")


def test_in_ci_a_run_without_skips_passes(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_clean="def test_runs():\n    assert True\n")
    result = run(pytester, monkeypatch, "true")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK


@pytest.mark.parametrize(("value", "expected"), [("true", True), (" 1 ", True), ("No", False), ("", False)])
def test_in_ci_reads_the_ci_variable(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    monkeypatch.setenv("CI", value)
    assert in_ci() is expected
