"""Rotating resume tokens: every resume spends its token and hands out the next; the key rotates.

The token logic (``resume.py``) and the room's use of it, with fake clocks and no
sockets: a resume returns a new token and the old one is refused; the count
survives a restart through ``resume.counts``; a token under the previous key still
resumes, and the new one is made under the new key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import stat
from pathlib import Path

import pytest

from chat_protocol import Welcome
from chat_tracker.core.outbox import Outbox
from chat_tracker.core.room import Member, MemberState, Refused
from chat_tracker.core.tokens import ResumeTokens, TokenClaim
from chat_tracker.errors import BadToken
from chat_tracker.records import Present
from chat_tracker.storage.resume_keys import (
    COUNTS_FILE,
    KEY_FILE,
    PREVIOUS_KEY_FILE,
    ResumeCounts,
    load_key,
    load_previous_key,
    rotate_key,
)
from support.roomkit import RoomKit

OLD_KEY, NEW_KEY = b"o" * 32, b"n" * 32


@pytest.fixture
def kit(tmp_path: Path) -> RoomKit:
    return RoomKit.create(tmp_path, grace=60)


def _joined(kit: RoomKit, name: str) -> tuple[Member, str]:
    member = kit.join(name)
    kit.flush()
    (welcome,) = [m for m in kit.received(member) if isinstance(m, Welcome)]
    return member, welcome.token


def _resume(kit: RoomKit, token: str) -> Member:
    return kit.room.resume(token, "e1", 0, Outbox(10_000), "127.0.0.2").member


def _refused_code(kit: RoomKit, token: str) -> str:
    with pytest.raises(Refused) as refused:
        _resume(kit, token)
    return refused.value.code


def test_a_token_names_the_join_and_the_resume_count_and_checks_under_its_key() -> None:
    tokens = ResumeTokens(OLD_KEY, "e1")
    token = tokens.issue("ann", 7, 3)
    assert token.startswith("v2:7:3:ann:")
    assert tokens.check(token) == TokenClaim("ann", 7, 3)
    for forged in (token.replace("v2:7:3:", "v2:7:4:"), token.replace(":ann:", ":bob:"), token[:-2] + "xx"):
        with pytest.raises(BadToken):
            tokens.check(forged)
    for malformed in ("", "v2:7:3:ann", "v2:x:3:ann:mac", "v3:7:3:ann:mac", "v2:7:-1:ann:mac", "v2:7:٣:ann:mac"):
        with pytest.raises(BadToken, match="malformed"):
            tokens.check(malformed)
    with pytest.raises(BadToken):  # another epoch's key material does not carry over
        ResumeTokens(OLD_KEY, "e2").check(token)


def test_a_resume_hands_out_a_new_token_and_the_old_one_is_refused_after(kit: RoomKit) -> None:
    alpha, first = _joined(kit, "alpha")
    assert _resume(kit, first) is alpha and alpha.resumes == 1
    second = kit.room.token_for(alpha)
    assert second != first
    assert _refused_code(kit, first) == "resume_bad_token"  # spent: even while its owner is connected
    assert _resume(kit, second) is alpha and alpha.state is MemberState.RESUMING
    third = kit.room.token_for(alpha)
    assert _refused_code(kit, second) == "resume_bad_token"
    assert _resume(kit, third) is alpha and alpha.resumes == 3


def test_two_resumes_with_one_token_let_only_the_first_in(kit: RoomKit) -> None:
    _, token = _joined(kit, "alpha")
    _resume(kit, token)
    assert _refused_code(kit, token) == "resume_bad_token"
    assert kit.room.stats.resumes == 1 and kit.room.stats.resumes_refused == 1


def test_a_spent_token_is_reported_before_it_is_used_for_the_count(kit: RoomKit) -> None:
    alpha, token = _joined(kit, "alpha")
    spent: list[tuple[int | None, int]] = []
    kit.room.on_token_spent = lambda member: spent.append((member.since_seq, member.resumes))
    _resume(kit, token)
    assert spent == [(alpha.since_seq, 1)]
    _refused_code(kit, token)
    assert spent == [(alpha.since_seq, 1)]  # a refused resume persists nothing


def test_a_restored_member_resumes_only_with_its_latest_token(kit: RoomKit) -> None:
    tokens = kit.room.tokens
    assert tokens is not None
    kit.room.restore([Present("alpha", 7, 1_795_485_000.0)], {7: 2})
    assert _refused_code(kit, tokens.issue("alpha", 7, 0)) == "resume_bad_token"
    assert _refused_code(kit, tokens.issue("alpha", 7, 1)) == "resume_bad_token"
    assert _resume(kit, tokens.issue("alpha", 7, 2)).resumes == 3


def test_a_v1_token_from_before_the_upgrade_resumes_once_as_a_count_of_0() -> None:
    tokens = ResumeTokens(OLD_KEY, "e1")
    message = b"e1\n7\nann\nann"
    mac = base64.urlsafe_b64encode(hmac.new(OLD_KEY, message, hashlib.sha256).digest()[:16]).rstrip(b"=").decode()
    assert tokens.check(f"v1:7:ann:{mac}") == TokenClaim("ann", 7, 0)


def test_a_token_under_the_previous_key_resumes_and_the_next_is_under_the_new_key() -> None:
    old = ResumeTokens(OLD_KEY, "e1")
    token = old.issue("ann", 7, 1)
    rotated = old.rotated(NEW_KEY)
    assert rotated.check(token) == TokenClaim("ann", 7, 1)
    fresh = rotated.issue("ann", 7, 2)
    assert ResumeTokens(NEW_KEY, "e1").check(fresh) == TokenClaim("ann", 7, 2)
    with pytest.raises(BadToken):
        old.check(fresh)
    rotated.forget_previous()  # the grace is over
    with pytest.raises(BadToken):
        rotated.check(token)


def test_rotate_key_keeps_the_old_key_as_previous_and_both_files_are_0600(tmp_path: Path) -> None:
    first = load_key(tmp_path)
    assert load_previous_key(tmp_path) is None
    rotate_key(tmp_path)
    second = load_key(tmp_path)
    assert second != first and load_previous_key(tmp_path) == first
    for name in (KEY_FILE, PREVIOUS_KEY_FILE):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600


def test_resume_counts_keep_the_last_count_of_each_join_of_this_epoch(tmp_path: Path) -> None:
    counts = ResumeCounts(tmp_path, "e1")
    assert counts.read() == {}
    counts.record(7, 1)
    counts.record(9, 1)
    counts.record(7, 2)
    counts.close()
    with (tmp_path / COUNTS_FILE).open("a", encoding="ascii") as file:
        file.write("e0 7 99\ne1 9 x\ne1 9")  # another epoch, a bad line, a torn last line
    assert ResumeCounts(tmp_path, "e1").read() == {7: 2, 9: 1}
    assert stat.S_IMODE((tmp_path / COUNTS_FILE).stat().st_mode) == 0o600


def test_rewriting_the_counts_keeps_only_the_members_still_in(tmp_path: Path) -> None:
    counts = ResumeCounts(tmp_path, "e1")
    for since in range(1, 50):
        counts.record(since, 1)
    counts.rewrite([(7, 3), (8, 0)])
    counts.record(8, 1)
    counts.close()
    assert (tmp_path / COUNTS_FILE).read_text(encoding="ascii") == "e1 7 3\ne1 8 1\n"
    assert ResumeCounts(tmp_path, "e1").read() == {7: 3, 8: 1}


def test_rotate_key_command_rotates_a_data_dir_and_says_what_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from chat_tracker.runtime.cli import main

    assert main(["rotate-key", "--data-dir", str(tmp_path / "missing")], {}) == 1
    assert "no data dir" in capsys.readouterr().err
    first = load_key(tmp_path)
    assert main(["rotate-key", "--data-dir", str(tmp_path)], {}) == 0
    assert "restart the tracker" in capsys.readouterr().out
    assert load_previous_key(tmp_path) == first and load_key(tmp_path) != first
    assert main(["rotate-key"], {"TRACKER_DATA_DIR": str(tmp_path), "TRACKER_REDIS_URL": "redis://127.0.0.1:1/0"}) == 1
    assert "Redis" in capsys.readouterr().err
