"""The browser tests' fixtures: Debian's chromium under Playwright, and real trackers.

The browser is the system's ``/usr/bin/chromium`` (``CHROMIUM`` overrides it), driven by
Playwright's Python package through ``executable_path``: nothing is downloaded at test
time. Each test gets a fresh profile directory. Without chromium the tests are skipped
locally and fail under any ``CI`` value, where they must run; Playwright is a test dependency.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.environment import require
from support.web import CHROMIUM, WAIT_MS, Browser, launch_chromium


@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Any]:
    """One Playwright driver per test module (a Node process shipped inside the Python package).

    Not per session: while it runs, the main thread has Playwright's event loop, which the
    other directories' asyncio and anyio tests must not find there.
    """
    require(os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)  # an expect() without its own timeout waits in the suite's unit too
    with sync_playwright() as driver:
        yield driver


@pytest.fixture
def browser(playwright_driver: Any, tmp_path: Path) -> Iterator[Browser]:
    """Factory of browser contexts, each with a fresh user-data-dir; all closed at the end."""
    opened: list[Any] = []

    def launch(viewport: dict[str, int] | None = None, **options: Any) -> Any:
        context = launch_chromium(playwright_driver, tmp_path / f"profile{len(opened)}", viewport, **options)
        opened.append(context)
        return context

    yield launch
    for context in opened:
        context.close()
