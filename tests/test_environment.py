"""The suite tests the project it was given, never a copy installed elsewhere.

A fresh clone once failed because tests started ``chat-client`` by its bare name and
only passed where a global install happened to be on PATH. These tests fail if that
can happen again: the programs come from the environment under test (``VENV_BIN``),
the PATH scripts/test gives pytest holds no other copy, and the drivers start the
venv's programs even when a stray one is first on PATH.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import sys
from pathlib import Path

import pytest

from support.clients import run_client
from support.environment import PROGRAMS, VENV_BIN, program

TESTS = Path(__file__).parent
# Scripts that run inside the project's Docker image, where the image's own install is the one under test.
IN_IMAGE = {TESTS / "compose" / "member.py"}
BARE_START = re.compile(r"""\[\s*["'](chat-client|chat-tracker)["']\s*,|\}\s+(chat-client|chat-tracker)\s""")


@pytest.mark.parametrize("name", PROGRAMS)
def test_the_programs_are_the_venvs(name: str) -> None:
    path = Path(program(name))
    assert path.parent == VENV_BIN and os.access(path, os.X_OK)
    head = path.read_text(encoding="utf-8")[:400]
    assert sys.executable in head, f"{path} was installed for another interpreter: {head.splitlines()[0]}"


@pytest.mark.parametrize("name", PROGRAMS)
def test_no_other_copy_on_path(name: str) -> None:
    """Under scripts/test, PATH is the venv plus the system's own directories: no stray install."""
    found = []
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(directory or ".") / name
        if candidate.is_file() and Path(directory).resolve() != VENV_BIN.resolve():
            found.append(str(candidate))
    assert not found, f"{name} outside the venv is on PATH: {found}; run the suite with scripts/test"


def test_no_test_starts_a_program_by_its_bare_name() -> None:
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        if path in IN_IMAGE:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if BARE_START.search(line):
                offenders.append(f"{path.relative_to(TESTS)}:{number}: {line.strip()}")
    assert not offenders, "start programs with support.environment.program(name):\n" + "\n".join(offenders)


def test_drivers_start_the_venv_client_even_with_a_stray_one_first_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in PROGRAMS:
        stray = tmp_path / name
        stray.write_text("#!/bin/sh\necho 'stray copy' >&2\nexit 97\n", encoding="utf-8")
        stray.chmod(stray.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    assert shutil.which("chat-client") == str(tmp_path / "chat-client")  # the trap is armed
    client = run_client("--version")
    status, lines, stderr = client.finish()
    assert (status, stderr) == (0, ""), stderr
    assert lines and lines[0].startswith("chat-client "), lines


def test_no_two_test_modules_share_a_basename() -> None:
    """pytest imports test files outside packages by their basename: two of one name stop the whole run."""
    tests = Path(__file__).resolve().parent
    seen: dict[str, Path] = {}
    for path in sorted(tests.rglob("test_*.py")):
        if (path.parent / "__init__.py").exists():
            continue  # inside a package: imported by its dotted name
        assert path.name not in seen, f"{path} and {seen[path.name]} share a basename"
        seen[path.name] = path
