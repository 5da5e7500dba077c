"""What a member may send: the text rules and the rate limit, with flooding as the last step.

A message over the rate is refused (``rate_limited``); a member that keeps sending
over it is removed (``flooding``, close 4006). ``MemberPolicy`` decides; the room
carries the decision out.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from chat_protocol import Limits, has_lone_surrogate
from chat_tracker.core.ratelimit import TokenBucket
from chat_tracker.errors import Refused


class Verdict(enum.Enum):
    """The policy's answer to one message."""

    ACCEPT = "accept"
    REFUSE = "refuse"  # not sent; the member is told why
    REMOVE = "remove"  # the member kept flooding: it is removed from the room


# ``who``: a few answers at once, then one every 10 s. An answer lists the whole room (about
# 1 MB and 40 ms of the loop for 10,000 members), so it is rationed apart from messages.
WHO_BURST = 3
WHO_EVERY_SECONDS = 10.0


class Allowance:
    """One member's rate state: the message bucket, the bucket of refusals it is forgiven, and ``who``.

    Each bucket is made the first time it is used: a bucket nobody takes from stays full, so one made
    full later is the same bucket, and an idle member keeps none (three buckets are about 0.3 KiB).
    """

    __slots__ = ("_messages", "_policy", "_refusals", "_who")

    def __init__(self, policy: MemberPolicy) -> None:
        self._policy = policy
        self._messages: TokenBucket | None = None
        self._refusals: TokenBucket | None = None
        self._who: TokenBucket | None = None

    @property
    def messages(self) -> TokenBucket:
        if self._messages is None:
            limits = self._policy.limits
            self._messages = self._policy.bucket(limits.rate_per_second, limits.rate_burst)
        return self._messages

    @property
    def refusals(self) -> TokenBucket:
        if self._refusals is None:
            self._refusals = self._policy.bucket(self._policy.flood_forgiveness, self._policy.flood_tolerance)
        return self._refusals

    @property
    def who(self) -> TokenBucket:
        if self._who is None:
            self._who = self._policy.bucket(1.0 / WHO_EVERY_SECONDS, WHO_BURST)
        return self._who


class MemberPolicy:
    """The per-member rules of a room, from its limits."""

    def __init__(
        self, limits: Limits, flood_tolerance: int, flood_forgiveness: float, monotonic: Callable[[], float]
    ) -> None:
        self.limits = limits
        self.flood_tolerance = flood_tolerance  # refused messages in a burst before a member is removed
        self.flood_forgiveness = flood_forgiveness  # refused messages forgiven per second
        self._monotonic = monotonic

    def allowance(self) -> Allowance:
        """A new member's full allowance."""
        return Allowance(self)

    def bucket(self, rate: float, burst: float) -> TokenBucket:
        """A full bucket on the room's clock."""
        return TokenBucket(rate, burst, self._monotonic)

    def check_text(self, text: str, writable: bool) -> Refused | None:
        """Why ``text`` cannot be sent (``writable``: whether the journal takes events now), or None."""
        if not text.strip():
            return Refused("empty", "empty message not sent")
        if len(text) > self.limits.max_message_chars:
            return Refused(
                "too_long", f"message too long: {len(text)} characters, the limit is {self.limits.max_message_chars}"
            )
        if has_lone_surrogate(text):
            return Refused("invalid_text", "message is not valid Unicode text")
        if not writable:
            return Refused("log_unavailable", "message not sent: chat.log cannot be written right now")
        return None

    def check_rate(self, allowance: Allowance) -> Verdict:
        """Spend one message from ``allowance``: accepted, refused, or removed for flooding."""
        if allowance.messages.take():
            return Verdict.ACCEPT
        if allowance.refusals.take():
            return Verdict.REFUSE
        return Verdict.REMOVE

    def who_refusal(self) -> Refused:
        return Refused(
            "rate_limited",
            f"slow down: at most one 'who' every {WHO_EVERY_SECONDS:g} s; the member list follows joins and leaves",
        )

    def rate_refusal(self) -> Refused:
        return Refused(
            "rate_limited", f"slow down: at most {self.limits.rate_per_second:g} messages/s; message not sent"
        )
