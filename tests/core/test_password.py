"""The server password: where it is read from in the handshake, and how it is compared."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat_tracker.core.auth import PasswordGate, password_from_authorization
from chat_tracker.core.ratelimit import AuthThrottle
from support.fakes import FakeClock


def _basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode("utf-8")).decode("ascii")


@pytest.mark.parametrize(
    ("header", "password"),
    [
        ("Bearer alphonso", "alphonso"),
        ("bearer alphonso", "alphonso"),
        ("BEARER   alphonso  ", "alphonso"),
        ("Bearer pässwörd 🔑", "pässwörd 🔑"),
        (_basic("anyone:alphonso"), "alphonso"),
        (_basic(":alphonso"), "alphonso"),
        (_basic("user:pass:with:colons"), "pass:with:colons"),
        (_basic("ü:pässwörd"), "pässwörd"),
        ("basic " + base64.b64encode(b"x:y").decode(), "y"),
    ],
)
def test_password_is_read_from_bearer_or_basic(header: str, password: str) -> None:
    """Bearer <pw>, or Basic with any user name, carries the password (scheme in any case)."""
    assert password_from_authorization(header) == password


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer   ",
        "alphonso",
        "Token alphonso",
        "Basic",
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:pw").decode(),
        "Digest username=alpha",
    ],
)
def test_garbled_or_missing_authorization_gives_no_password(header: str | None) -> None:
    """A missing header, an unknown scheme or a garbled Basic value yields no password at all."""
    assert password_from_authorization(header) is None


@given(
    st.text(st.characters(blacklist_categories=["Cs"]), min_size=1), st.text(st.characters(blacklist_categories=["Cs"]))
)
def test_basic_round_trips_any_password(password: str, user: str) -> None:
    """Whatever the password (colons, non-ASCII), Basic with any colon-free user name delivers it intact."""
    user = user.replace(":", "")
    assert password_from_authorization(_basic(f"{user}:{password}")) == password


@pytest.mark.parametrize("password", ["alphonso", "pässwörd", "密码🔑", " spaced ", "a" * 10_000])
def test_gate_matches_only_the_exact_password(password: str) -> None:
    """Non-ASCII and long passwords match themselves and nothing close to them."""
    gate = PasswordGate(password)
    assert gate.matches(password)
    for other in (
        password.upper() if password.upper() != password else password + "x",
        password[:-1],
        password + " ",
        "",
    ):
        assert not gate.matches(other)


def test_gate_refuses_an_empty_password() -> None:
    """A gate cannot be built on an empty password, so an empty guess can never match."""
    with pytest.raises(ValueError, match="must not be empty"):
        PasswordGate("")


def test_gate_tolerates_lone_surrogates_in_a_guess() -> None:
    """A guess with a lone surrogate (possible through JSON) is simply wrong, not a crash."""
    assert not PasswordGate("alphonso").matches("alph\ud800nso")


@pytest.mark.parametrize("candidate", ["", "wrong"])
def test_check_refuses_and_counts_wrong_guesses(candidate: str) -> None:
    """check() refuses an empty or wrong password and records the failure for that address."""
    gate = PasswordGate("alphonso", AuthThrottle(clock=FakeClock()))
    checked = gate.check("10.0.0.1", candidate)
    assert not checked.ok and checked.wait is None
    assert gate.failures == 1 and gate.throttle.failures("10.0.0.1") == 1


def test_missing_credentials_are_refused_but_not_a_guess() -> None:
    """No credentials at all (a browser's first request) is a 401 but does not count against the address."""
    gate = PasswordGate("alphonso", AuthThrottle(clock=FakeClock()))
    for _ in range(10):
        assert not gate.check("10.0.0.1", None).ok
    assert gate.failures == 10 and gate.throttle.failures("10.0.0.1") == 0


def test_check_accepts_and_forgets_failures() -> None:
    """The right password is accepted and wipes the address's record of failures."""
    gate = PasswordGate("alphonso", AuthThrottle(clock=FakeClock()))
    assert not gate.check("10.0.0.1", "wrong").ok
    assert gate.check("10.0.0.1", "alphonso").ok
    assert gate.throttle.failures("10.0.0.1") == 0


def test_a_guessing_address_is_refused_unchecked_even_with_the_right_password() -> None:
    """Inside its delay an address is refused at once, right password or not, with a Retry-After."""
    gate = PasswordGate("alphonso", AuthThrottle(base_delay=2.0, free_failures=1, clock=FakeClock()))
    gate.check("10.0.0.1", "wrong")  # one free failure used: closed for 2 s
    checked = gate.check("10.0.0.1", "alphonso")
    assert not checked.ok and checked.wait is not None and checked.wait.own and checked.wait.retry_after == 2
    assert checked.hidden is None  # the address's own delay: not even compared
    assert gate.refused == 1 and gate.check("10.0.0.2", "alphonso").ok


def test_a_paused_check_hides_its_answer() -> None:
    """With the shared budget spent, a guess is refused either way; the answer is kept for a resume only."""
    gate = PasswordGate("alphonso", AuthThrottle(per_minute=2, clock=FakeClock()))
    gate.check("10.0.0.1", "wrong")
    gate.check("10.0.0.2", "wrong")
    right, wrong = gate.check("10.0.0.3", "alphonso"), gate.check("10.0.0.4", "wrong")
    assert not right.ok and not wrong.ok
    assert right.wait is not None and wrong.wait is not None and not right.wait.own
    assert (right.hidden, wrong.hidden) == (True, False)
    assert gate.throttle.failures("10.0.0.4") == 1  # its own budget still counts the wrong one
