"""A Redis that asks for a password (the scale profile's): replicas and the archiver give it, from a file.

The password never appears in a URL, in ``ps`` or in a log line; without it each
process says so in one line and exits with status 2. And the archiver writes only
events a replica could have written: an entry put into the stream by anyone else
(a bad name or kind) is refused, not turned into a forged chat.log line.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import redis
from chat_tracker.core.events import EventKind
from chat_tracker.journal.redis_keys import Keys
from support.archiver import StartArchiver, all_lines, archiver_command, wait_until
from support.redis_server import RedisServer, add_events, event, running_redis
from support.replicas import ADMIN_PASSWORD, admin, join
from support.timing import UNIT
from support.tracker import PASSWORD, StartTracker

REDIS_PASSWORD = "redis-secret-7f3a9c"
pytestmark = pytest.mark.anyio


@pytest.fixture
def locked_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server with ``requirepass``, as deploy/redis/redis.conf sets it from the secret."""
    yield from running_redis(tmp_path / "locked", requirepass=REDIS_PASSWORD)


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "redis_password"
    path.write_text(REDIS_PASSWORD + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def run_to_exit(command: list[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKER_")}
    env["TRACKER_PASSWORD"] = PASSWORD
    return subprocess.run(command, env=env, check=False, capture_output=True, text=True, timeout=4 * UNIT)


def tracker_args(data_dir: Path) -> list[str]:
    return [sys.executable, "-m", "chat_tracker", "--host", "127.0.0.1", "--port", "0", "--data-dir", str(data_dir)]


async def test_a_replica_and_the_archiver_with_the_password_file_chat_and_never_log_it(
    locked_redis: RedisServer, password_file: Path, start_tracker: StartTracker, start_archiver: StartArchiver
) -> None:
    replica = start_tracker("--redis-url", locked_redis.url, "--redis-password-file", str(password_file))
    archiver = start_archiver(locked_redis.url, "--redis-password-file", str(password_file))
    member = await join(replica.url, "ann")
    await member.send(type="message", text="behind a password", id="m1")
    said = await member.wait_for(lambda f: f["type"] == "message", "her message")
    wait_until(lambda: any(line.endswith("msg ann behind a password") for line in archiver.log_lines()), "chat.log")
    assert said["seq"] == int(archiver.log_lines()[-1].split(" ", 1)[0])
    assert stat.S_IMODE(archiver.log_path.stat().st_mode) == 0o600, "the archiver's chat.log is private too"
    await member.close()
    async with httpx.AsyncClient(timeout=UNIT) as client:
        assert (await client.get(replica.http_url + "/healthz")).json()["redis"] is True
    replica.stop()
    archiver.stop()
    for process in (replica, archiver):
        assert process.output, "it logged something"
        assert not any(REDIS_PASSWORD in line for line in process.output), "the password is never logged"


def test_a_replica_without_the_password_says_so_and_exits_2(locked_redis: RedisServer, tmp_path: Path) -> None:
    done = run_to_exit([*tracker_args(tmp_path / "data"), "--redis-url", locked_redis.url])
    assert done.returncode == 2, done
    assert "requires a password" in done.stderr and "--redis-password-file" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_a_replica_with_a_wrong_password_says_so_and_exits_2(locked_redis: RedisServer, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password\n", encoding="utf-8")
    command = [*tracker_args(tmp_path / "data"), "--redis-url", locked_redis.url, "--redis-password-file", str(wrong)]
    done = run_to_exit(command)
    assert done.returncode == 2, done
    assert "refused this process's credentials" in done.stderr
    assert "not-the-password" not in done.stderr + done.stdout and "Traceback" not in done.stderr + done.stdout


def test_the_archiver_without_the_password_says_so_and_exits_2(locked_redis: RedisServer, tmp_path: Path) -> None:
    done = run_to_exit(archiver_command(locked_redis.url, tmp_path / "data"))
    assert done.returncode == 2, done
    assert "requires a password" in done.stderr and "--redis-password-file" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_a_password_in_the_url_is_never_logged(
    locked_redis: RedisServer, start_archiver: StartArchiver, tmp_path: Path
) -> None:
    """A password given in the URL instead still works, and the log shows the URL without it."""
    url = f"redis://:{REDIS_PASSWORD}@127.0.0.1:{locked_redis.port}/0"
    archiver = start_archiver(url)
    line = archiver.wait_for_output("Archiving ")
    assert f"redis://***@127.0.0.1:{locked_redis.port}/0" in line
    wait_until(lambda: httpx.get(archiver.http_url + "/healthz", timeout=UNIT).json()["redis"] is True, "Redis in")
    assert archiver.stop(signal.SIGTERM) == 0
    assert not any(REDIS_PASSWORD in seen for seen in archiver.output)


def forge(url: str, seq: int, body: dict[str, object]) -> None:
    """XADD an entry as anyone who can write to the stream could: not through a replica's script."""
    with redis.Redis.from_url(url, password=REDIS_PASSWORD) as client:
        client.xadd(Keys().events, {"t": "1800000000.5", "e": json.dumps(body)}, id=f"{seq}-0")
        client.hset(Keys().room, mapping={"epoch": "epoch-1", "seq": seq})


def test_the_archiver_refuses_forged_entries_and_writes_no_line_for_them(
    locked_redis: RedisServer, password_file: Path, start_archiver: StartArchiver
) -> None:
    url = locked_redis.url
    add_events(url, [event(1, "x", EventKind.START, "-"), event(2, "hello")], password=REDIS_PASSWORD)
    archiver = start_archiver(url, "--redis-password-file", str(password_file))
    wait_until(lambda: len(all_lines(archiver.data_dir)) == 2, "the two real events")
    forged_line = "3 2027-01-15T08:00:00.000Z msg admin everyone send me your password"
    forge(url, 3, {"k": "msg", "n": "mallory\n" + forged_line, "x": "hi"})  # a name with a newline: a forged line
    forge(url, 4, {"k": "root", "n": "mallory", "x": "not a kind of chat.log"})
    forge(url, 5, {"k": "msg", "n": "has space", "x": "a name no member can have"})
    add_events(url, [event(6, "after the forgeries")], password=REDIS_PASSWORD)
    wait_until(lambda: any("after the forgeries" in line for line in all_lines(archiver.data_dir)), "seq 6")
    lines = all_lines(archiver.data_dir)
    assert [int(line.split(" ", 1)[0]) for line in lines] == [1, 2, 6]
    assert not any("mallory" in line or "admin" in line or "root" in line for line in lines)
    for seq in (3, 4, 5):
        archiver.wait_for_output(f"Stream entry {seq}-0 is not a room event")
    assert not any("mallory" in line or "send me your password" in line for line in archiver.output), "no body logged"
    metrics = httpx.get(archiver.http_url + "/metrics", timeout=UNIT).text
    assert "chat_archive_invalid_entries_total 3.0" in metrics
    assert archiver.stop() == 0


async def test_an_address_ban_on_a_replica_is_shown_to_no_member_and_archived_without_the_address(
    locked_redis: RedisServer, password_file: Path, start_tracker: StartTracker, start_archiver: StartArchiver
) -> None:
    env = {"TRACKER_ADMIN_PASSWORD": ADMIN_PASSWORD}
    flags = ("--redis-url", locked_redis.url, "--redis-password-file", str(password_file))
    first, second = start_tracker(*flags, env=env), start_tracker(*flags, env=env)
    archiver = start_archiver(locked_redis.url, "--redis-password-file", str(password_file))
    ann = await join(second.url, "ann")
    made = await admin(first, "/admin/ban", {"address": "198.51.100.9", "reason": "flood"})
    assert made.status_code == 200 and made.json()["address"] == "198.51.100.9"
    notice = await ann.wait_for(lambda f: f["type"] == "moderation", "the ban")
    assert notice["id"] == made.json()["id"] and "198.51.100.9" not in json.dumps(notice)
    wait_until(lambda: any(" ban - " in line for line in archiver.log_lines()), "the ban in chat.log")
    assert not any("198.51.100.9" in line for line in archiver.log_lines())
    async with httpx.AsyncClient(timeout=UNIT) as client:
        for replica in (first, second):
            page = await client.get(replica.http_url + "/log?lines=50", auth=("", PASSWORD))
            assert page.status_code == 200 and made.json()["id"] in page.text and "198.51.100.9" not in page.text
        bans = await client.get(second.http_url + "/admin/bans", headers={"Authorization": f"Bearer {ADMIN_PASSWORD}"})
    assert [b["address"] for b in bans.json()["bans"]] == ["198.51.100.9"], "the other replica enforces it"
    await ann.close()
