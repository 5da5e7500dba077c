"""The reliability campaign: real tracker processes, real faults, counted (see docs/reliability.md).

The ``start_tracker`` and ``tracker`` fixtures come from tests/conftest.py, the helpers from
tests/support (``support.bots``, ``support.campaign``, ...); ``small_disk`` is here, for the
disk-full tests of test_disk_full.py and test_rotation_faults.py.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.environment import require


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "reliability: the reliability campaign (tests/reliability)")
    config.addinivalue_line("markers", "long: longer in its full form (RELIABILITY_FULL=1); the CI form stays short")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs, unmounted at the end."""
    require(os.geteuid() == 0, "mounting a tmpfs needs root")
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    require(result.returncode == 0, f"cannot mount a tmpfs: {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)
