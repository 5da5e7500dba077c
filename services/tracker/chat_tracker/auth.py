"""The server password: where it may travel, and how it is checked.

Compared in constant time on the SHA-256 of its UTF-8 bytes, so neither its
content nor its length leaks through timing, and non-ASCII passwords work
(``secrets.compare_digest`` refuses non-ASCII ``str``). An empty password is
never configured, so an empty guess never matches.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac

from .addresses import address_key
from .ratelimit import AuthThrottle


def _digest(password: str) -> bytes:
    return hashlib.sha256(password.encode("utf-8", errors="surrogatepass")).digest()


def password_from_authorization(header: str | None) -> str | None:
    """The password in ``Authorization: Bearer <pw>`` or Basic ``<any user>:<pw>``; None if absent or garbled."""
    if not header:
        return None
    scheme, _, credentials = header.strip().partition(" ")
    scheme = scheme.lower()
    credentials = credentials.strip()
    if scheme == "bearer":
        return credentials or None
    if scheme == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        _user, colon, password = decoded.partition(":")
        return password if colon else None
    return None


class PasswordGate:
    """Checks passwords, slowing down an address that keeps guessing wrong."""

    def __init__(self, password: str, throttle: AuthThrottle | None = None) -> None:
        if not password:
            raise ValueError("the server password must not be empty")
        self._digest = _digest(password)
        self.throttle = throttle or AuthThrottle()
        self.failures = 0

    def matches(self, candidate: str) -> bool:
        """Constant-time comparison, no throttling (for tests and the REST fast path)."""
        return hmac.compare_digest(_digest(candidate), self._digest)

    async def check(self, address: str, candidate: str | None) -> bool:
        """Wait for this address's turn, then compare; records the outcome.

        ``None`` (no credentials at all, as a browser's first request to a REST
        endpoint) is refused without counting as a guess: nothing was guessed.
        """
        if candidate is None:
            self.failures += 1
            return False
        address = address_key(address)  # an IPv6 guesser by its /64: it cannot take a fresh address per guess
        delay = self.throttle.reserve(address)
        if delay > 0:
            await asyncio.sleep(delay)
        if candidate and self.matches(candidate):
            self.throttle.succeeded(address)
            return True
        self.failures += 1
        self.throttle.failed(address)
        return False
