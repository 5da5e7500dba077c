"""What the suite runs on: whether this is CI, the programs under test, and what a test needs to run.

``in_ci`` is the one place that reads the CI variable. ``require`` is the one way a test says
what it needs: missing, the test skips with the reason, except in CI, where it fails (and
``support.no_skips_in_ci`` fails the run on any skip left).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# The environment under test: the interpreter running pytest and the scripts installed beside it.
# Not resolved: a venv's python is a symlink, and its bin/ is where the venv's scripts live.
VENV_BIN = Path(sys.executable).parent
PROGRAMS = ("chat-client", "chat-tracker")
_CI_OFF = ("", "0", "false", "no")


def in_ci() -> bool:
    """Whether the tests run in CI, where every test must run: a missing tool fails, and
    support.no_skips_in_ci fails the run on any skip. Any CI value counts but empty, 0, false and
    no (case-insensitive): services set ``CI=true``, others ``CI=1``. The one place that reads CI."""
    return os.environ.get("CI", "").strip().lower() not in _CI_OFF


def require(condition: bool, why: str) -> None:
    """Skip locally when something the test needs is missing; fail in CI, where it must run."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"cannot run in CI: {why}")
    pytest.skip(why)


def program(name: str) -> str:
    """The absolute path of the project's program ``name`` in the environment under test.

    Never the bare name: whatever the caller's PATH holds (a global install, an old
    version) must not be what a test starts.
    """
    path = VENV_BIN / name
    if not path.is_file():
        raise AssertionError(f"{name} is not installed in {VENV_BIN}: run scripts/test (it installs the project)")
    return str(path)
