"""The reliability campaign: real tracker processes, real faults, counted (see docs/reliability.md).

``tests/tracker`` is put on the import path for its peers (``peers.py``); the
``start_tracker`` and ``tracker`` fixtures come from ``tests/conftest.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for directory in (HERE, HERE.parent / "tracker"):
    if str(directory) not in sys.path:
        sys.path.insert(0, str(directory))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "reliability: the reliability campaign (tests/reliability)")
    config.addinivalue_line("markers", "long: longer in its full form (RELIABILITY_FULL=1); the CI form stays short")
