"""Fixtures for the container tests: a real Docker engine, Compose v2 and tmux, really started.

- Tests marked ``docker`` or ``tmux`` need those tools. Outside CI a missing tool skips them with
  the reason; in CI (any ``CI`` value) it FAILS them: CI must prove the containers work.
- ``app_image``: the app image, built once per session with ``docker compose build`` (base image
  from PYTHON_IMAGE, as users build it), tagged ``groupchat:test`` unless GROUPCHAT_TEST_IMAGE says.
- ``scale_images``: the scale profile's Redis and HAProxy images (deploy/), built once per session
  on the same PYTHON_IMAGE, tagged ``groupchat-redis:test`` and ``groupchat-haproxy:test``.
- ``compose``: a Compose project of its own per test (``-p``, unique), on docker-compose.yml and
  docker-compose.test.yml; ``down -v`` always runs at the end, and the project's logs are printed
  (pytest shows them when the test failed).

The helpers themselves (Compose, JsonClient, get_json) are in tests/support/compose.py.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.compose import BALANCER_TEST_IMAGE, REDIS_TEST_IMAGE, Compose, docker_problem, tmux_problem, tool_versions
from support.environment import require
from support.timing import UNIT

# What the terminal summary tells about the container tests (CI's log shows it at the end).
_outcomes: dict[str, tuple[str, float]] = {}
_build_seconds: list[float] = []


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip (or, in CI, fail) a docker/tmux test whose tools are missing."""
    problems = []
    if item.get_closest_marker("docker") and (problem := docker_problem()):
        problems.append(problem)
    if item.get_closest_marker("tmux") and (problem := tmux_problem()):
        problems.append(problem)
    require(not problems, "; ".join(problems) + " (.ci/run provisions it)")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Remember each container test's outcome and time (setup, call and teardown together)."""
    if Path(report.location[0]).name not in ("test_compose_stack.py", "test_compose_tty.py", "test_compose_scale.py"):
        return
    outcome, seconds = _outcomes.get(report.nodeid, ("passed", 0.0))
    if report.outcome != "passed" and outcome == "passed":
        outcome = report.outcome if report.when == "call" else f"{report.outcome} in {report.when}"
    _outcomes[report.nodeid] = (outcome, seconds + report.duration)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """A section listing the Docker and tmux tests, so that a CI log shows they really ran."""
    if not _outcomes:
        return
    terminalreporter.section("container tests (real Docker engine, Compose v2, tmux)")
    terminalreporter.line(tool_versions())
    if _build_seconds:
        terminalreporter.line(f"image built in {_build_seconds[0]:.1f} s")
    for nodeid, (outcome, seconds) in _outcomes.items():
        terminalreporter.line(f"{outcome.upper():8} {seconds:6.1f} s  {nodeid}")
    terminalreporter.line(f"total {sum(seconds for _, seconds in _outcomes.values()):.1f} s")


@pytest.fixture(scope="session")
def app_image() -> str:
    """The app image, built once for the session exactly as `docker compose build` builds it."""
    problem = docker_problem()
    if problem is not None:  # pytest_runtest_setup has already failed or skipped the test
        pytest.skip(problem)
    image = os.environ.get("GROUPCHAT_TEST_IMAGE", "groupchat:test")
    builder = Compose("groupchat-build", image)
    started = time.monotonic()
    done = builder.run("build", "tracker", timeout=120 * UNIT, check=False)
    if done.returncode != 0:
        pytest.fail(
            f"building the image failed (base {os.environ.get('PYTHON_IMAGE', 'python:3.12-slim')}):\n"
            f"{(done.stdout + done.stderr)[-4000:]}\n"
            "No registry reachable? Build a local base first: export PYTHON_IMAGE=$(scripts/build-local-base)",
            pytrace=False,
        )
    _build_seconds.append(time.monotonic() - started)
    print(f"built {image} in {_build_seconds[-1]:.1f} s")
    return image


@pytest.fixture(scope="session")
def scale_images(app_image: str) -> tuple[str, str]:
    """The Redis and HAProxy images of the scale profile, built as `docker compose --profile scale build` does."""
    builder = Compose("groupchat-build", app_image, profiles=("scale",))
    started = time.monotonic()
    done = builder.run("build", "redis", "balancer", timeout=120 * UNIT, check=False)
    if done.returncode != 0:
        pytest.fail(
            f"building the scale profile's images (deploy/redis, deploy/haproxy) failed "
            f"(base {os.environ.get('PYTHON_IMAGE', 'python:3.12-slim')}; apt-get needs the Debian mirror):\n"
            f"{(done.stdout + done.stderr)[-4000:]}",
            pytrace=False,
        )
    print(f"built {REDIS_TEST_IMAGE} and {BALANCER_TEST_IMAGE} in {time.monotonic() - started:.1f} s")
    return REDIS_TEST_IMAGE, BALANCER_TEST_IMAGE


@pytest.fixture
def compose(app_image: str, request: pytest.FixtureRequest) -> Iterator[Compose]:
    """A fresh Compose project for one test; logs printed and ``down -v`` at the end, always."""
    project = f"gc-{request.node.name.lower().replace('_', '-')[:30]}-{uuid.uuid4().hex[:6]}"
    stack = Compose(project, app_image)
    try:
        yield stack
    finally:
        logs = stack.run("logs", "--no-color", "--timestamps", check=False)
        print(f"--- logs of compose project {project} ---\n{logs.stdout[-20000:]}{logs.stderr[-2000:]}")
        stack.down()
