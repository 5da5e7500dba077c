"""Rotating resume tokens on real trackers: each token resumes once, across a SIGKILL too, and the key rotates.

What a member (or a thief) sees: a resume answers with a new token; the one it
replaces is refused with ``resume_bad_token``; after a SIGKILL and a restart on the
same data dir the latest token still resumes and the older ones do not; after
``chat-tracker rotate-key`` and a restart, members away in their grace resume with
tokens made under the old key and get tokens under the new one.
"""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chat_tracker.core.tokens import ResumeTokens
from chat_tracker.errors import BadToken
from chat_tracker.storage.resume_keys import COUNTS_FILE, KEY_FILE, PREVIOUS_KEY_FILE
from support.member_records import member_record, record_checked
from support.resume import Member, join, restart
from support.timing import UNIT
from support.tracker import launch_tracker

pytestmark = pytest.mark.anyio


async def _resume(member: Member, url: str, answers: list[dict[str, Any]], token: str | None = None) -> dict[str, Any]:
    """A resume on a new connection, its answer kept; a refused one's connection is closed (else left to join)."""
    answer = await member.resume(url, token=token)
    answers.append(answer)
    if answer["type"] != "resumed":
        await member.ws.close()
    return answer


def _checked(test: str, data_dir: Path, members: list[Member], answers: list[dict[str, Any]]) -> None:
    """The members against chat.log, and the test's ``resume`` row: each resume here answers a fault.

    (A drop, a kill, a restart with a rotated key, or a spent or stolen token.)
    """
    resumed = [answer for answer in answers if answer["type"] == "resumed"]
    figures = {"injected": len(answers), "resumed": len(resumed), "refused": len(answers) - len(resumed)}
    records = [member_record(member, [a for a in resumed if a["name"] == member.name]) for member in members]
    record_checked("resume", data_dir, records, test=test, **figures)


async def test_a_resume_hands_out_a_new_token_and_the_one_it_replaces_is_refused(tmp_path: Path) -> None:
    tracker = launch_tracker(tmp_path, resume_grace=60)
    answers: list[dict[str, Any]] = []
    try:
        alpha = await join(tracker.url, "alpha")
        first = alpha.token
        await alpha.drop()
        await asyncio.to_thread(tracker.wait_for_output, "alpha is away")
        answer = await _resume(alpha, tracker.url, answers)
        assert answer["type"] == "resumed" and answer["token"] != first
        second = alpha.token
        await alpha.drop()
        refused = await _resume(alpha, tracker.url, answers, token=first)
        assert (refused["type"], refused["code"]) == ("error", "resume_bad_token"), refused
        assert "used already" in str(refused["message"])
        again = await _resume(alpha, tracker.url, answers, token=second)
        assert again["type"] == "resumed" and again["token"] not in (first, second)
        await alpha.say("still me")
        await alpha.wait_for(lambda m: m.get("text") == "still me")
        stolen = await _resume(alpha, tracker.url, answers, token=second)  # a copy of a spent token takes nothing over
        assert stolen["type"] == "error" and stolen["code"] == "resume_bad_token"
    finally:
        tracker.stop()
    _checked("token_rotates", tmp_path, [alpha], answers)


async def test_after_a_sigkill_restart_the_latest_token_resumes_and_older_ones_do_not(tmp_path: Path) -> None:
    tracker = launch_tracker(tmp_path, resume_grace=60)
    alpha, beta = await join(tracker.url, "alpha"), await join(tracker.url, "beta")
    answers: list[dict[str, Any]] = []
    tokens = [alpha.token]
    for _ in range(2):
        await alpha.drop()
        assert (await _resume(alpha, tracker.url, answers))["type"] == "resumed"
        tokens.append(alpha.token)
    tracker.process.send_signal(signal.SIGKILL)
    tracker.process.wait(timeout=4 * UNIT)
    assert stat.S_IMODE((tmp_path / COUNTS_FILE).stat().st_mode) == 0o600
    restarted = restart(tracker, tmp_path)
    try:
        for old in tokens[:2]:
            answer = await _resume(alpha, restarted.url, answers, token=old)
            assert answer["type"] == "error" and answer["code"] == "resume_bad_token", answer
        latest = await _resume(alpha, restarted.url, answers, token=tokens[2])
        assert latest["type"] == "resumed" and latest["recovered"], latest
        assert (await _resume(beta, restarted.url, answers))["type"] == "resumed"  # never resumed: its welcome's token
        await beta.say("after the kill")
        await alpha.wait_for(lambda m: m.get("text") == "after the kill")
    finally:
        restarted.stop()
    _checked("token_after_sigkill", tmp_path, [alpha, beta], answers)


def _made_under(key: bytes, epoch: str, token: str) -> bool:
    try:
        ResumeTokens(key, epoch).check(token)
    except BadToken:
        return False
    return True


def _rotate_key(data_dir: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKER_")}
    done = subprocess.run(
        [sys.executable, "-m", "chat_tracker", "rotate-key", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=4 * UNIT,
        check=True,
    )
    return done.stdout


async def test_a_rotated_key_lets_members_away_in_their_grace_resume_under_the_new_key(tmp_path: Path) -> None:
    tracker = launch_tracker(tmp_path, resume_grace=60)
    alpha, beta = await join(tracker.url, "alpha"), await join(tracker.url, "beta")
    answers: list[dict[str, Any]] = []
    await alpha.drop()
    assert (await _resume(alpha, tracker.url, answers))["type"] == "resumed"  # a count of 1 under the old key
    old_key = (tmp_path / KEY_FILE).read_bytes()
    tracker.process.send_signal(signal.SIGTERM)
    assert tracker.process.wait(timeout=4 * UNIT) == 0
    assert "restart the tracker" in _rotate_key(tmp_path)
    new_key = (tmp_path / KEY_FILE).read_bytes()
    assert new_key != old_key and (tmp_path / PREVIOUS_KEY_FILE).read_bytes() == old_key
    grace = 2 * UNIT
    restarted = restart(tracker, tmp_path, grace=grace)
    try:
        for member in (alpha, beta):
            assert _made_under(old_key, member.epoch, member.token)
            answer = await _resume(member, restarted.url, answers)
            assert answer["type"] == "resumed" and answer["recovered"], answer
            assert _made_under(new_key, member.epoch, member.token)
            assert not _made_under(old_key, member.epoch, member.token)
        await alpha.drop()  # the new token resumes too
        assert (await _resume(alpha, restarted.url, answers))["type"] == "resumed"
        await asyncio.to_thread(restarted.wait_for_output, "previous resume key's grace is over", grace + 2 * UNIT)
        assert not (tmp_path / PREVIOUS_KEY_FILE).exists()
        await beta.say("under the new key")
        await alpha.wait_for(lambda m: m.get("text") == "under the new key")
    finally:
        restarted.stop()
    _checked("token_key_rotated", tmp_path, [alpha, beta], answers)
