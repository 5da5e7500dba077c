"""``--admin`` without a network: commands as /admin calls, the tracker's answers as lines."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from chat_client import link
from chat_client.commands import Moderate, Verb
from chat_client.config import admin_base_url
from chat_client.errors import EXIT_REMOVED, RECONNECT_CODES, Banned, Removed, session_closed
from chat_client.moderator import Call, answer_lines, call_for, refusal_line
from chat_client.render import plain

NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
UNTIL = "2026-11-24T12:34:00.000Z"


@pytest.mark.parametrize(
    ("ws_url", "base"),
    [
        ("ws://127.0.0.1:8000/ws", "http://127.0.0.1:8000"),
        ("wss://chat.example.org/ws", "https://chat.example.org"),
        ("wss://example.org/chat/ws", "https://example.org/chat"),
        ("ws://tracker:8000/other", "http://tracker:8000/other"),
        ("ws://[::1]:9000/ws", "http://[::1]:9000"),
    ],
)
def test_admin_base_url(ws_url: str, base: str) -> None:
    """The /admin API lives beside the WebSocket: ws -> http, wss -> https, /ws dropped."""
    assert admin_base_url(ws_url) == base


@pytest.mark.parametrize(
    ("request_", "call"),
    [
        (Moderate(Verb.KICK, "beta", reason="spam"), Call("POST", "/admin/kick", {"name": "beta", "reason": "spam"})),
        (
            Moderate(Verb.MUTE, "beta", seconds=60.0),
            Call("POST", "/admin/mute", {"name": "beta", "seconds": 60.0, "reason": ""}),
        ),
        (Moderate(Verb.BAN, "beta"), Call("POST", "/admin/ban", {"name": "beta", "seconds": None, "reason": ""})),
        (
            Moderate(Verb.BAN, "10.0.0.0/8", seconds=5.0, reason="bots"),
            Call("POST", "/admin/ban", {"address": "10.0.0.0/8", "seconds": 5.0, "reason": "bots"}),
        ),
        (Moderate(Verb.UNBAN, "b1/../x"), Call("DELETE", "/admin/bans/b1%2F..%2Fx")),
        (Moderate(Verb.BANS), Call("GET", "/admin/bans")),
        (Moderate(Verb.ANNOUNCE, text="noon"), Call("POST", "/admin/announce", {"text": "noon"})),
    ],
)
def test_calls(request_: Moderate, call: Call) -> None:
    """Each command is one /admin call; a ban id cannot escape its path segment."""
    assert call_for(request_) == call


def said(request: Moderate, answer: Any) -> list[str]:
    return [plain(line) for line in answer_lines(request, answer, tz=UTC, now=NOW)]


def test_answers() -> None:
    """What each successful answer prints."""
    assert said(Moderate(Verb.KICK, "BETA"), {"action": "kick", "name": "beta"}) == ["* kicked beta"]
    assert said(Moderate(Verb.MUTE, "beta", seconds=60.0), {"name": "beta", "until": UNTIL}) == [
        "* muted beta for 60 s (until 12:34)"
    ]
    assert said(Moderate(Verb.MUTE, "beta", seconds=0.0), {"name": "beta"}) == ["* unmuted beta"]
    ban = {"id": "b1a2c3d4", "name": "beta", "address": None, "until": None, "reason": ""}
    assert said(Moderate(Verb.BAN, "beta"), ban) == ["* ban b1a2c3d4: beta, for good"]
    assert said(Moderate(Verb.UNBAN, "b1a2c3d4"), {"id": "b1a2c3d4", "lifted": True}) == ["* ban b1a2c3d4 lifted"]
    assert said(Moderate(Verb.ANNOUNCE, text="noon"), {"action": "announce"}) == ["* announced"]


def test_bans_list() -> None:
    """``/bans``: a heading and one line per ban with its expiry (and date when not today)."""
    bans = [
        {"id": "b1", "name": "beta", "address": None, "until": None, "reason": "trolling"},
        {"id": "b2", "name": None, "address": "10.0.0.0/8", "until": "2026-11-25T12:34:00.000Z", "reason": ""},
    ]
    assert said(Moderate(Verb.BANS), {"bans": bans}) == [
        "* bans in force (2):",
        "*   ban b1: beta, for good: trolling",
        "*   ban b2: 10.0.0.0/8, until 2026-11-25 12:34",
    ]
    assert said(Moderate(Verb.BANS), {"bans": []}) == ["* no bans in force"]


def test_tracker_text_in_answers_is_sanitised() -> None:
    """Names and reasons in the tracker's answers cannot drive the terminal."""
    ban = {"id": "\x1b[2J", "name": "\u202ebeta", "until": None, "reason": "\x07"}
    (shown,) = said(Moderate(Verb.BAN, "beta"), ban)
    assert shown.isprintable()


@pytest.mark.parametrize(
    ("status", "answer", "shown"),
    [
        (401, {"detail": "the admin password is required"}, "! wrong admin password"),
        (
            404,
            {"detail": "moderation is off: the tracker has no admin password"},
            "! moderation is off on this tracker",
        ),
        (404, {"detail": "no member named 'nobody' is in the room"}, "! no member named 'nobody' is in the room"),
        (
            422,
            {"detail": [{"loc": ["body", "seconds"], "msg": "Input should be less than or equal to 315360000"}]},
            "! refused: seconds: Input should be less than or equal to 315360000",
        ),
        (502, None, "! the tracker answered HTTP 502"),
    ],
)
def test_refusals(status: int, answer: Any, shown: str) -> None:
    """Refusals are ``!`` lines with the tracker's detail, in words."""
    assert plain(refusal_line(status, answer)) == shown


@pytest.mark.parametrize("code", [4011, 4012])
def test_kicks_and_bans_are_final(code: int) -> None:
    """A kick or a ban mid-session is exit 4, never a loss worth reconnecting after."""
    closed = session_closed(code, "you were removed by a moderator")
    assert isinstance(closed, Removed) and closed.exit_status == EXIT_REMOVED
    assert code not in RECONNECT_CODES


def test_a_ban_met_when_connecting_is_not_retried() -> None:
    """A ban at the handshake or the join is none of the failures a reconnection attempt retries."""
    refused = Banned("the name 'alpha' is banned by a moderator")
    assert refused.exit_status == EXIT_REMOVED and refused.code == 4012
    assert not isinstance(refused, link._RETRIED)
