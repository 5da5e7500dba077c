"""Helpers for the container tests: tool checks, a Compose project, the scripted client in a container.

Used by tests/compose/conftest.py's fixtures and by the test modules. Timeouts are multiples of
``support.timing.UNIT``; the scripted members in the containers get theirs (MEMBER_STEP_TIMEOUT) in it too.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.process import Process
from support.timing import UNIT

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILES = ("docker-compose.yml", "docker-compose.test.yml")
PASSWORD = "compose-test-secret"
# The scale profile's own images (docker compose --profile scale), built by the scale_images fixture.
REDIS_TEST_IMAGE = os.environ.get("GROUPCHAT_TEST_REDIS_IMAGE", "groupchat-redis:test")
BALANCER_TEST_IMAGE = os.environ.get("GROUPCHAT_TEST_BALANCER_IMAGE", "groupchat-haproxy:test")

Event = dict[str, Any]


def _run_quietly(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=12 * UNIT, check=False)


@functools.cache
def docker_problem() -> str | None:
    """Why the Docker tests cannot run here, or None."""
    if shutil.which("docker") is None:
        return "the docker CLI is not installed"
    info = _run_quietly("docker", "info", "--format", "{{.ServerVersion}}")
    if info.returncode != 0:
        return f"no Docker engine answers `docker info`: {info.stderr.strip()[-300:]}"
    compose = _run_quietly("docker", "compose", "version", "--short")
    if compose.returncode != 0 or not compose.stdout.strip().lstrip("v").startswith("2"):
        return f"Docker Compose v2 (`docker compose`) is missing: {compose.stderr.strip()[-300:]}"
    return None


def tool_versions() -> str:
    """One line: the Docker engine's, Compose's and tmux's versions, as they answer."""
    engine = _run_quietly("docker", "version", "--format", "{{.Server.Version}}").stdout.strip() or "none"
    compose = _run_quietly("docker", "compose", "version", "--short").stdout.strip() or "none"
    tmux = _run_quietly("tmux", "-V").stdout.strip() if shutil.which("tmux") else "no tmux"
    return f"Docker engine {engine}, Compose {compose}, {tmux}"


@functools.cache
def tmux_problem() -> str | None:
    return None if shutil.which("tmux") else "tmux is not installed"


class Compose:
    """One Compose project: ``docker compose -p NAME -f docker-compose.yml -f docker-compose.test.yml``."""

    def __init__(self, project: str, image: str, profiles: tuple[str, ...] = ()) -> None:
        self.project = project
        self.profiles = profiles  # --profile each, e.g. ("scale",)
        self.env = {
            **os.environ,
            "GROUPCHAT_IMAGE": image,
            "GROUPCHAT_REDIS_IMAGE": REDIS_TEST_IMAGE,
            "GROUPCHAT_BALANCER_IMAGE": BALANCER_TEST_IMAGE,
            "TRACKER_PASSWORD": PASSWORD,
            "MEMBER_STEP_TIMEOUT": f"{6 * UNIT:g}",  # member.py's wait for each step (30 s unscaled)
        }
        for name in (
            "TRACKER_PASSWORD_SECRET",
            "REDIS_PASSWORD_SECRET",
            "TRACKER_PUBLISH",
            "ARCHIVER_PUBLISH",
            "GROUPCHAT_SCALE_NET",
        ):
            self.env.pop(name, None)

    def argv(self, *args: str) -> list[str]:
        files = [arg for name in COMPOSE_FILES for arg in ("-f", str(ROOT / name))]
        # --env-file: a developer's own .env (their password, their port) must not leak into tests.
        options = ["--ansi", "never", "--env-file", os.devnull, "-p", self.project]
        options += [arg for profile in self.profiles for arg in ("--profile", profile)]
        return ["docker", "compose", *options, *files, *args]

    def run(self, *args: str, timeout: float = 12 * UNIT, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a compose command to its end; AssertionError with its output if check and it failed."""
        done = subprocess.run(
            self.argv(*args),
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"`docker compose {' '.join(args)}` exited {done.returncode}\n{done.stdout}\n{done.stderr}"
            )
        return done

    def popen(self, *args: str) -> Process:
        """A compose command left running, stdin piped, its stdout and stderr read apart as lines."""
        return Process(self.argv(*args), stdin=True, stderr="apart", env=self.env, cwd=ROOT)

    def up_tracker(self) -> None:
        """Start the tracker in the background and wait until it is healthy."""
        self.run("up", "--detach", "--wait", "tracker", timeout=12 * UNIT)

    def stop_tracker(self) -> float:
        """``docker compose stop tracker``; returns the seconds it took."""
        started = time.monotonic()
        self.run("stop", "tracker", timeout=12 * UNIT)
        return time.monotonic() - started

    def http_base(self, service: str = "tracker", port: int = 8000) -> str:
        """http://127.0.0.1:PORT of a service's published port (the tracker's 8000 by default)."""
        address = self.run("port", service, str(port)).stdout.strip().splitlines()[0]
        return f"http://127.0.0.1:{address.rsplit(':', 1)[1]}"

    def chat_log(self) -> list[str]:
        """chat.log's lines, read from the project's volume (the tracker may be stopped)."""
        done = self.run("run", "--rm", "--no-deps", "-T", "tracker", "cat", "/data/chat.log")
        return done.stdout.splitlines()

    def tracker_state(self) -> dict[str, Any]:
        """`docker inspect` of the tracker's container (running or not)."""
        container = self.run("ps", "--all", "--quiet", "tracker").stdout.split()[0]
        inspect = subprocess.run(
            ["docker", "inspect", container], capture_output=True, text=True, check=True, timeout=12 * UNIT
        )
        state: dict[str, Any] = json.loads(inspect.stdout)[0]
        return state

    def client(self, name: str, *, deps: bool = True) -> JsonClient:
        """The real chat-client, scripted (--json), in a container of the client service.

        ``deps=False`` is ``run --no-deps``: the scale profile's way, where ``tracker`` is the
        balancer's alias and the single tracker must not be started beside it.
        """
        options = ["run", "--rm", "-T"] + ([] if deps else ["--no-deps"])
        process = self.popen(*options, "-e", "TRACKER_PASSWORD", "client", "chat-client", "--json", "--username", name)
        return JsonClient(name, process)

    def down(self) -> None:
        self.run("down", "--volumes", "--remove-orphans", "--timeout", "5", timeout=24 * UNIT, check=False)


def get_json(url: str, password: str | None) -> tuple[int, Any]:
    """GET as ``curl -u :PASSWORD URL`` does; (status, parsed body or None)."""
    request = urllib.request.Request(url)
    if password is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(f":{password}".encode()).decode())
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=UNIT) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, None


class JsonClient:
    """A chat-client process printing one protocol event per line; its stdin sends messages."""

    def __init__(self, name: str, process: Process) -> None:
        self.name = name
        self.process = process
        self.events: list[Event] = []
        self.stderr = ""

    def expect(self, what: str, matches: Callable[[Event], bool], timeout: float = 6 * UNIT) -> Event:
        """The first event (already seen or coming) that ``matches``; AssertionError after timeout."""
        for event in self.events:
            if matches(event):
                return event
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.process.out.next_line(deadline)
            except TimeoutError:
                raise AssertionError(f"{self.name} did not see {what} in {timeout:g} s; saw {self.events}") from None
            if line is None:
                status = self.finish()
                raise AssertionError(
                    f"{self.name}'s client ended (status {status}) before {what}; saw {self.events}; {self.stderr}"
                )
            if not line.startswith("{"):
                continue  # compose's own progress lines, should any reach stdout
            received: dict[str, Any] = json.loads(line)
            self.events.append(received)
            if matches(received):
                return received

    def say(self, text: str) -> None:
        self.process.send(text)

    def close_input(self) -> None:
        self.process.close_stdin()

    def finish(self, timeout: float = 6 * UNIT) -> int:
        """Read all that is left, wait for the exit; the exit status (stderr kept in .stderr)."""
        deadline = time.monotonic() + timeout
        try:
            while (line := self.process.out.next_line(deadline)) is not None:
                if line.startswith("{"):
                    self.events.append(json.loads(line))
            status = self.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            self.stderr = self.process.err.text(max(0.1, deadline - time.monotonic()))
        except (TimeoutError, subprocess.TimeoutExpired):
            raise AssertionError(f"{self.name}'s client did not end within {timeout:g} s; saw {self.events}") from None
        return status

    def kill(self) -> None:
        self.process.end()
