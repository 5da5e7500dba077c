"""Registered names on a real tracker: registering, signing in, impostors and lookalikes refused, guessing throttled.

Real ``chat-tracker`` processes on loopback, real WebSocket members in both dialects, the real
``accounts.db``; the operator's ``chat-tracker accounts add`` works against a running tracker.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from chat_protocol import CloseCode
from support.peers import plain_peer
from support.signin import PASSPHRASE, joined, plain_name, register
from support.timing import UNIT
from support.tracker import launch_tracker

pytestmark = pytest.mark.anyio


async def test_a_registered_name_is_refused_to_impostors_and_lookalikes_and_signs_in_its_owner(tmp_path: Path) -> None:
    tracker = launch_tracker(tmp_path / "data")
    try:
        assert await register(tracker, "alpha") == {"type": "registered", "name": "alpha"}
        for impostor in ("alpha", "ALPHA", "a1pha", "al.pha"):
            bot, answer = await joined(tracker, impostor)
            assert (answer["type"], answer["code"]) == ("error", "passphrase_required"), answer
            if impostor in ("a1pha", "al.pha"):  # within the throttle's free mistakes, so the owner gets in
                await bot.ws.send(json.dumps({"type": "join", "name": impostor, "passphrase": "not the one"}))
                wrong = await bot.recv(2 * UNIT)
                assert (wrong["type"], wrong["code"]) == ("error", "bad_passphrase"), wrong
            await bot.ws.close()
        owner, welcome = await joined(tracker, "Alpha", PASSPHRASE)
        assert (welcome["type"], welcome["name"], welcome["registered"]) == ("welcome", "alpha", True), welcome
        await owner.ws.close()
    finally:
        tracker.kill()
    assert not any(PASSPHRASE in line or "not the one" in line for line in tracker.output), "a passphrase was logged"
    assert not any(PASSPHRASE in line for line in tracker.log_lines())
    accounts_db = tmp_path / "data" / "accounts.db"
    assert stat.S_IMODE(accounts_db.stat().st_mode) == 0o600


async def test_an_account_outlives_a_sigkill_and_a_guest_keeps_todays_dialogue(tmp_path: Path) -> None:
    data = tmp_path / "data"
    tracker = launch_tracker(data)
    try:
        await register(tracker, "beta")
        tracker.process.send_signal(signal.SIGKILL)
        tracker.process.wait(timeout=2 * UNIT)
        tracker = launch_tracker(data)
        _, refused = await joined(tracker, "beta")
        assert refused["code"] == "passphrase_required", refused
        guest, welcome = await joined(tracker, "gamma")
        assert (welcome["type"], welcome["registered"]) == ("welcome", False), welcome
        await guest.ws.close()
    finally:
        tracker.kill()


async def test_the_plain_dialect_asks_for_the_passphrase_and_registers_with_a_command(tmp_path: Path) -> None:
    tracker = launch_tracker(tmp_path / "data")
    try:
        async with plain_peer(tracker.url) as peer:
            assert (await plain_name(peer, "delta"))[0] == "Hi delta, You have been added to the server."
            await peer.lines(3, 2 * UNIT)  # who is online, the limits, how to leave
            await peer.send(f"/register {PASSPHRASE}")
            assert (await peer.line(2 * UNIT)).startswith("Registered: delta is yours now")
        async with plain_peer(tracker.url) as peer:
            prompt = await plain_name(peer, "DELTA")
            assert "passphrase" in prompt[0], prompt
            await peer.send("wrong words here")
            assert await peer.lines(2, 2 * UNIT) == ["! wrong passphrase", "Enter your username..."]
            await peer.send("delta")
            assert "passphrase" in await peer.line(2 * UNIT)
            await peer.send(PASSPHRASE)
            assert await peer.lines(2, 2 * UNIT) == [
                "Hi delta, You have been added to the server.",
                "Signed in: delta is your registered name.",
            ]
    finally:
        tracker.kill()
    assert [line.split(" ", 2)[2] for line in tracker.log_lines() if " msg " in line] == [], "a command was said"


async def test_wrong_passphrases_are_throttled_and_then_refused_unchecked(tmp_path: Path) -> None:
    tracker = launch_tracker(tmp_path / "data")
    try:
        await register(tracker, "eps1lon")
        codes = []
        for _ in range(6):
            bot, answer = await joined(tracker, "epsilon", "guess guess guess")
            codes.append(answer["code"])
            if answer["code"] == "too_many_guesses":
                assert answer["retry_after"] >= 1
                assert await bot.close_code(2 * UNIT) == CloseCode.TOO_MANY_GUESSES
                break
            await bot.ws.close()
        assert codes[:3] == ["bad_passphrase"] * 3 and codes[-1] == "too_many_guesses", codes
    finally:
        tracker.kill()


@pytest.mark.parametrize("mode", ["admin", "off"])
async def test_registration_can_be_left_to_operators_or_closed(tmp_path: Path, mode: str) -> None:
    tracker = launch_tracker(tmp_path / "data", "--registration", mode)
    try:
        answer = await register(tracker, "zeta")
        assert (answer["type"], answer["code"]) == ("error", "registration_closed"), answer
    finally:
        tracker.kill()


async def test_an_operator_adds_an_account_while_the_tracker_runs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    tracker = launch_tracker(data, "--registration", "admin")
    try:
        env = {**os.environ, "CHAT_PASSPHRASE": PASSPHRASE}
        add = [sys.executable, "-m", "chat_tracker", "accounts", "add", "theta", "--data-dir", str(data)]
        result = subprocess.run(
            add, check=False, env=env, capture_output=True, text=True, timeout=4 * UNIT, stdin=subprocess.DEVNULL
        )
        assert result.returncode == 0, result.stderr
        _, refused = await joined(tracker, "theta")
        assert refused["code"] == "passphrase_required", refused
        owner, welcome = await joined(tracker, "theta", PASSPHRASE)
        assert welcome["registered"] is True, welcome
        await owner.ws.close()
    finally:
        tracker.kill()
