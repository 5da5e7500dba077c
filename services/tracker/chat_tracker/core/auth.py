"""The server password: where it may travel, and how it is checked.

Compared in constant time on the SHA-256 of its UTF-8 bytes, so neither its
content nor its length leaks through timing, and non-ASCII passwords work
(``secrets.compare_digest`` refuses non-ASCII ``str``). An empty password is
never configured, so an empty guess never matches.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import time
from dataclasses import dataclass

from chat_tracker.core.addresses import address_key
from chat_tracker.core.ratelimit import AuthThrottle, Wait, WarnLimiter

log = logging.getLogger("chat_tracker")


def _digest(password: str) -> bytes:
    return hashlib.sha256(password.encode("utf-8", errors="surrogatepass")).digest()


def password_from_authorization(header: str | None) -> str | None:
    """The password in ``Authorization: Bearer <pw>`` or Basic ``<any user>:<pw>``; None if absent or garbled."""
    if not header:
        return None
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() == "bearer":
        return credentials.strip() or None
    pair = _basic_pair(header)
    return pair[1] if pair is not None else None


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """The (user, password) of ``Authorization: Basic ...``; None if absent, garbled, of another scheme, or no user."""
    pair = _basic_pair(header)
    return pair if pair is not None and pair[0] else None


def _basic_pair(header: str | None) -> tuple[str, str] | None:
    """HTTP Basic's (user, password), the user maybe empty; None if not Basic or garbled."""
    if not header:
        return None
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None


@dataclass(frozen=True)
class Checked:
    """A password check's outcome.

    ``wait`` set: refused unchecked, too many guesses (``ok`` is False). When only the
    shared budgets (the /48, everyone's) refused it, ``hidden`` holds what the check
    would have said: a resume with a valid token may still get in (``session_entry.py``),
    while everyone else is refused the same way whatever the password was.
    """

    ok: bool
    wait: Wait | None = None
    hidden: bool | None = None


WRONG = Checked(ok=False)
RIGHT = Checked(ok=True)


class PasswordGate:
    """Checks passwords; an address that keeps guessing wrong is refused at once for a while, never parked."""

    def __init__(
        self,
        password: str,
        throttle: AuthThrottle | None = None,
        warnings: WarnLimiter | None = None,
        what: str = "password",
    ) -> None:
        if not password:
            raise ValueError("the server password must not be empty")
        self._digest = _digest(password)
        self.throttle = throttle or AuthThrottle()
        self.warnings = warnings or WarnLimiter()
        self.what = what  # "password" or "admin password", for the log
        self.failures = 0
        self.refused = 0  # guesses refused unchecked (too many)

    def matches(self, candidate: str) -> bool:
        """Constant-time comparison, no throttling."""
        return hmac.compare_digest(_digest(candidate), self._digest)

    def check(self, address: str, candidate: str | None) -> Checked:
        """Compare now, or refuse now: a guess the throttle would not admit is not checked and never waits.

        ``None`` (no credentials at all, as a browser's first request to a REST
        endpoint) is refused without counting as a guess: nothing was guessed.
        """
        if candidate is None:
            self.failures += 1
            return WRONG
        key = address_key(address)  # an IPv6 guesser by its /64: it cannot take a fresh address per guess
        wait = self.throttle.admit(key)
        if wait is not None:
            return self._refuse(address, key, candidate, wait)
        if candidate and self.matches(candidate):
            self.throttle.succeeded(key)
            return RIGHT
        self.failures += 1
        self.throttle.failed(key)
        self._warn(key, "wrong", "Wrong %s from %s", self.what, address)  # once a minute per address
        return WRONG

    def _refuse(self, address: str, key: str, candidate: str, wait: Wait) -> Checked:
        self.refused += 1
        self._warn(
            key,
            "throttled",
            "Refused %s guesses from %s: too many wrong ones (retry in %d s; logged once a minute per address)",
            self.what,
            address,
            wait.retry_after,
        )
        if wait.own:
            return Checked(ok=False, wait=wait)
        # Only the shared budgets are spent: compare anyway, and hide the answer (see Checked).
        right = bool(candidate) and self.matches(candidate)
        if right:
            self.throttle.succeeded(key)
        else:
            self.failures += 1
            self.throttle.failed(key, shared=False)  # the address's own budget still counts it
        return Checked(ok=False, wait=wait, hidden=right)

    def _warn(self, key: str, kind: str, message: str, *args: object) -> None:
        if self.warnings.should_warn(f"{self.what} {kind}", key, time.monotonic()):
            log.warning(message, *args)
