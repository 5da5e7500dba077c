"""The suite's one timeout unit: every wait, deadline and timing threshold in the tests is a multiple of UNIT.

UNIT is 5 s times TEST_TIMEOUT_SCALE (1 unless set: ``TEST_TIMEOUT_SCALE=3 scripts/test`` on a slow
machine). The same scale stretches pytest-timeout's default budget (the hook below; a test's own
``@pytest.mark.timeout`` is written in units already) and Playwright's (``support.web``).
"""

from __future__ import annotations

import os

import pytest

SCALE = float(os.environ.get("TEST_TIMEOUT_SCALE", "1"))
UNIT = 5.0 * SCALE


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """pytest-timeout's configured budget (pyproject.toml's ``timeout``) times SCALE, for every test without its own.

    A budget given for the run (``--timeout``, PYTEST_TIMEOUT; 0 turns it off to debug) is taken as given.
    """
    if config.getoption("timeout", None) is not None or os.environ.get("PYTEST_TIMEOUT"):
        return
    configured = config.getini("timeout")
    if not configured:
        return
    budget = pytest.mark.timeout(float(configured) * SCALE)
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(budget)
