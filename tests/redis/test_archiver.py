"""The archiver against a real redis-server: chat.log in order, no gap, no repeat, through faults.

Each test writes stream entries the way the replicas do (``support.redis_server.add_events``)
and runs the archiver as its own process, so a SIGKILL is a real one.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import httpx
import pytest

import redis
from chat_tracker.core.events import EventKind
from chat_tracker.journal.redis_keys import Keys, seq_of
from chat_tracker.runtime import archive_cli
from support.archiver import StartArchiver, all_lines, wait_until
from support.redis_server import RedisServer, add_control, add_events, event
from support.timing import UNIT
from support.tracker import PASSWORD, RunningTracker

KEYS = Keys()


def seqs(data_dir: Path) -> list[int]:
    return [int(line.split(" ", 1)[0]) for line in all_lines(data_dir)]


def archived(url: str) -> int:
    with redis.Redis.from_url(url) as client:
        value = client.get(KEYS.archived)
    return int(value) if value is not None else 0


def health(archiver: RunningTracker) -> dict[str, object]:
    reply = httpx.get(f"{archiver.http_url}/healthz", timeout=UNIT)
    assert reply.status_code == 200
    body: dict[str, object] = reply.json()
    return body


def test_archives_in_order_in_todays_format(redis_server: RedisServer, start_archiver: StartArchiver) -> None:
    """Every event becomes its chat.log line, in seq order; archived and the alive key are set."""
    events = [event(1, "x", EventKind.START, "-"), event(2, "", EventKind.JOIN), event(3, "héllo\nthere")]
    events += [event(seq) for seq in range(4, 51)]
    add_events(redis_server.url, events)
    archiver = start_archiver(redis_server.url)
    wait_until(lambda: archived(redis_server.url) == 50, "archived = 50")
    assert all_lines(archiver.data_dir) == [e.log_line().decode().rstrip("\n") for e in events]
    with redis_server.client() as client:
        assert client.pttl(KEYS.archiver) > 0
    assert archiver.stop(signal.SIGTERM) == 0


def test_control_entries_are_skipped(redis_server: RedisServer, start_archiver: StartArchiver) -> None:
    """Entries ``<seq>-1`` are for the replicas: chat.log has the room events only, once each."""
    add_events(redis_server.url, [event(1), event(2)])
    add_control(redis_server.url, 2, 1)
    add_events(redis_server.url, [event(3)])
    add_control(redis_server.url, 3, 1)
    add_control(redis_server.url, 3, 2)
    archiver = start_archiver(redis_server.url)
    wait_until(lambda: archived(redis_server.url) == 3, "archived = 3")
    add_events(redis_server.url, [event(4)])
    wait_until(lambda: archived(redis_server.url) == 4, "archived = 4")
    assert seqs(archiver.data_dir) == [1, 2, 3, 4]


def first_in_stream_and_archived(client: redis.Redis) -> tuple[int | None, int]:
    """The stream's first seq and ``archived``, read in one transaction."""
    pipe = client.pipeline(transaction=True)
    pipe.xrange(KEYS.events, "-", "+", count=1)
    pipe.get(KEYS.archived)
    first, done = pipe.execute()
    return (seq_of(first[0][0])[0] if first else None), int(done or 0)


def test_trimming_never_passes_archived(redis_server: RedisServer, start_archiver: StartArchiver) -> None:
    """While events pour in, the stream always holds every event after ``archived``; then the last ``keep``."""
    archiver = start_archiver(redis_server.url, "--keep-in-redis", "10")
    with redis_server.client() as client:
        for start in range(1, 2001, 20):
            add_events(redis_server.url, [event(seq) for seq in range(start, start + 20)])
            first, done = first_in_stream_and_archived(client)
            assert first is not None and first <= done + 1, (first, done)
        # archived is set first, the stream trimmed next: the last 10 stay
        wait_until(lambda: first_in_stream_and_archived(client) == (1991, 2000), "the stream trimmed to 1991-2000")
    assert seqs(archiver.data_dir) == list(range(1, 2001))


def test_sigkill_mid_stream_then_restart_repeats_and_loses_nothing(
    redis_server: RedisServer, start_archiver: StartArchiver, tmp_path: Path
) -> None:
    """The archiver SIGKILLed three times while events keep coming: chat.log has every seq exactly once."""
    total, stop = 6000, threading.Event()

    def writer() -> None:
        for start in range(1, total + 1, 10):
            add_events(redis_server.url, [event(seq) for seq in range(start, start + 10)])
            if stop.wait(0.002):  # a steady pace, so the kills land while events arrive
                return

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    data_dir = tmp_path / "data"
    try:
        for _round in range(3):
            archiver = start_archiver(redis_server.url, data_dir=data_dir)
            reached = archived(redis_server.url)
            wait_until(lambda: archived(redis_server.url) > reached, "the archiver to make progress")  # noqa: B023
            archiver.kill()
        thread.join(timeout=6 * UNIT)
        assert not thread.is_alive()
        archiver = start_archiver(redis_server.url, data_dir=data_dir)
        wait_until(lambda: archived(redis_server.url) == total, f"archived = {total}")
    finally:
        stop.set()
    assert seqs(data_dir) == list(range(1, total + 1))
    assert archiver.stop(signal.SIGTERM) == 0


def test_a_trimmed_gap_is_logged_as_an_error(
    redis_server: RedisServer, start_archiver: StartArchiver, tmp_path: Path
) -> None:
    """Events trimmed before they were archived: an ERROR names the missing seqs; the rest is archived."""
    data_dir = tmp_path / "data"
    add_events(redis_server.url, [event(seq) for seq in range(1, 11)])
    archiver = start_archiver(redis_server.url, data_dir=data_dir)
    wait_until(lambda: archived(redis_server.url) == 10, "archived = 10")
    assert archiver.stop(signal.SIGTERM) == 0
    add_events(redis_server.url, [event(seq) for seq in range(11, 31)])
    with redis_server.client() as client:
        client.xtrim(KEYS.events, minid=21, approximate=False)
    archiver = start_archiver(redis_server.url, data_dir=data_dir)
    wait_until(lambda: archived(redis_server.url) == 30, "archived = 30")
    archiver.wait_for_output(r"ERROR .*gap: seqs 11-20")
    assert seqs(data_dir) == [*range(1, 11), *range(21, 31)]


@pytest.mark.parametrize("restart_archiver", [False, True], ids=["running", "restarted"])
def test_redis_restarted_empty_never_reuses_a_seq(
    redis_server: RedisServer, start_archiver: StartArchiver, tmp_path: Path, restart_archiver: bool
) -> None:
    """A new epoch from an emptied Redis: loudly logged, and its seqs chat.log holds are not written again."""
    data_dir = tmp_path / "data"
    add_events(redis_server.url, [event(seq, f"old {seq}") for seq in range(1, 21)], epoch="A")
    archiver = start_archiver(redis_server.url, data_dir=data_dir)
    wait_until(lambda: archived(redis_server.url) == 20, "archived = 20")
    if restart_archiver:
        assert archiver.stop(signal.SIGTERM) == 0
    redis_server.wipe()
    redis_server.start()
    add_events(redis_server.url, [event(seq, f"new {seq}") for seq in range(1, 31)], epoch="B")
    if restart_archiver:
        archiver = start_archiver(redis_server.url, data_dir=data_dir)
    wait_until(lambda: seqs(data_dir)[-1:] == [30], "seq 30 in chat.log")
    archiver.wait_for_output(r"ERROR .*Redis lost the room: a new epoch B")
    archiver.wait_for_output(r"ERROR .*Skipped 20 event")
    lines = all_lines(data_dir)
    assert seqs(data_dir) == list(range(1, 31))
    assert [line.rsplit(" ", 2)[-2] for line in lines] == ["old"] * 20 + ["new"] * 10


def test_redis_stopped_and_started_the_archiver_reconnects(
    redis_server: RedisServer, start_archiver: StartArchiver
) -> None:
    """Redis away: /healthz says so; back from its AOF: the archiver goes on by itself, counted in /metrics."""
    add_events(redis_server.url, [event(seq) for seq in range(1, 11)])
    archiver = start_archiver(redis_server.url)
    wait_until(lambda: archived(redis_server.url) == 10, "archived = 10")
    redis_server.stop()
    wait_until(lambda: health(archiver)["redis"] is False, "/healthz redis false")
    assert health(archiver)["status"] == "degraded"
    redis_server.start()
    add_events(redis_server.url, [event(seq) for seq in range(11, 21)])
    wait_until(lambda: archived(redis_server.url) == 20, "archived = 20")
    assert seqs(archiver.data_dir) == list(range(1, 21))
    body = health(archiver)
    assert body["redis"] is True and body["status"] == "ok"
    metrics = httpx.get(f"{archiver.http_url}/metrics", timeout=UNIT).text
    assert "chat_archive_redis_reconnects_total 1.0" in metrics
    assert "chat_archive_events_total 20.0" in metrics
    assert len([line for line in archiver.output if "Redis is unavailable" in line]) == 1


def test_healthz_and_log_answer(redis_server: RedisServer, start_archiver: StartArchiver) -> None:
    """/healthz shows the position and lag; /log wants the server password and gives the last events."""
    add_events(redis_server.url, [event(seq) for seq in range(1, 31)])
    archiver = start_archiver(redis_server.url)
    wait_until(lambda: health(archiver)["archived_seq"] == 30, "archived_seq 30")
    wait_until(lambda: health(archiver)["stream_last_seq"] == 30, "stream_last_seq 30")
    body = health(archiver)
    assert body["status"] == "ok" and body["redis"] is True and body["lag_events"] == 0
    refused = httpx.get(f"{archiver.http_url}/log", timeout=UNIT)
    assert refused.status_code == 401 and "Bearer" in refused.headers["www-authenticate"]
    reply = httpx.get(f"{archiver.http_url}/log?lines=5", headers={"Authorization": f"Bearer {PASSWORD}"})
    assert [e["seq"] for e in reply.json()["events"]] == [26, 27, 28, 29, 30]
    basic = httpx.get(f"{archiver.http_url}/log", auth=("anyone", PASSWORD), timeout=UNIT)
    assert basic.status_code == 200 and basic.json()["events"][-1]["text"] == "message 30"


def test_rotation_flags_work_as_in_the_tracker(redis_server: RedisServer, start_archiver: StartArchiver) -> None:
    """--rotate-bytes rotates chat.log into segments; the seqs run on across them."""
    add_events(redis_server.url, [event(seq) for seq in range(1, 101)])
    archiver = start_archiver(redis_server.url, "--rotate-bytes", "2K")
    wait_until(lambda: archived(redis_server.url) == 100, "archived = 100")
    add_events(redis_server.url, [event(seq) for seq in range(101, 201)])
    wait_until(lambda: archived(redis_server.url) == 200, "archived = 200")
    assert list(archiver.data_dir.glob("chat.log.0*")), "no rotated segment"
    assert seqs(archiver.data_dir) == list(range(1, 201))


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """No Redis URL, or no password: exit 2 with one ``chat-tracker archive: error:`` line."""
    assert archive_cli.main(["--data-dir", str(tmp_path)], {"TRACKER_PASSWORD": "x"}) == 2
    assert capsys.readouterr().err.startswith("chat-tracker archive: error: --redis-url")
    assert archive_cli.main(["--redis-url", "redis://127.0.0.1:1"], {"TRACKER_KEEP_IN_REDIS": "many"}) == 2
    assert "TRACKER_KEEP_IN_REDIS" in capsys.readouterr().err
