"""The suite's own rules, checked on its files: helpers in tests/support, imported one way; waits in units.

A helper imported from a conftest.py, from another test module or through a ``sys.modules``
alias works in one pytest invocation and breaks in another (the conftest that won, the
directories given); a wait written in plain seconds is the one that fails on a slow machine
whatever TEST_TIMEOUT_SCALE says. Each test here names the lines that break its rule.
"""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
# The suites' own programs: run as processes, or in the app's image (tests/compose is mounted on
# /checks), and imported by their bare names only by the tests that run them in-process.
PROGRAMS = {
    "compose": {"checker.py", "conversation.py", "member.py"},
    "reliability": {
        "flooder.py",
        "half_frame_member.py",
        "netns_cut_client.py",
        "netns_vanish.py",
        "report.py",
        "soak.py",
    },
}
IN_IMAGE = {TESTS / "compose" / "checker.py", TESTS / "compose" / "member.py"}  # standard library only
BARE_HELPER = re.compile(r"^\s*(from|import)\s+(conftest|test_\w+|chat_testing|tls_testing)\b")
ALIAS = re.compile(r"sys\.modules\s*(\[|\.setdefault)")
NUMBER = r"\d+(?:\.\d+)?(?![\d.]|\s*\*\s*UNIT)"  # seconds, not a multiple of UNIT
SECONDS = re.compile(
    rf"(\btimeout|_timeout)\s*=\s*{NUMBER}"  # timeout=5, close_timeout=1
    rf"|mark\.timeout\(\s*{NUMBER}"  # @pytest.mark.timeout(240)
    rf"|monotonic\(\)\s*\+\s*{NUMBER}"  # time.monotonic() + 30
    rf"|set_default_timeout\(\s*{NUMBER}"  # Playwright's, in milliseconds
)


def _sources() -> list[Path]:
    return sorted(path for path in TESTS.rglob("*.py*") if "__pycache__" not in path.parts)


def _offending(pattern: re.Pattern[str], paths: list[Path]) -> list[str]:
    found = []
    for path in paths:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                found.append(f"{path.relative_to(TESTS)}:{number}: {line.strip()}")
    return found


def test_helpers_live_in_the_support_package() -> None:
    """Outside tests/support a directory holds test modules, its conftest.py and its suite's programs."""
    strays = []
    for path in _sources():
        relative = path.relative_to(TESTS)
        if relative.parts[0] == "support" or len(relative.parts) == 1:
            continue
        if path.name.startswith("test_") or path.name == "conftest.py":
            continue
        if path.name not in PROGRAMS.get(relative.parts[0], set()):
            strays.append(str(relative))
    assert not strays, f"helper modules outside tests/support (move them there): {strays}"


def test_helpers_are_imported_one_way() -> None:
    """``from support.x import y``: never from a conftest.py or a test module, never through an alias or a .pyi."""
    stubs = [str(path.relative_to(TESTS)) for path in _sources() if path.suffix == ".pyi"]
    assert not stubs, f"stub files stand in for modules pytest loads otherwise: {stubs}"
    offenders = _offending(BARE_HELPER, _sources()) + _offending(ALIAS, _sources())
    assert not offenders, "import helpers as `from support.<module> import <name>`:\n" + "\n".join(offenders)


def test_waits_are_multiples_of_the_timeout_unit() -> None:
    """No timeout, pytest-timeout budget or deadline in plain seconds: each is a multiple of support.timing.UNIT."""
    paths = [path for path in _sources() if path not in IN_IMAGE and path.name != Path(__file__).name]
    offenders = _offending(SECONDS, paths)
    assert not offenders, "write it as a multiple of UNIT (support.timing):\n" + "\n".join(offenders)
