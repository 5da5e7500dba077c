"""The codes an ``error`` frame carries (docs/protocol.md has the table, and a test checks it against this one)."""

from __future__ import annotations

from .accounts import ACCOUNT_ERROR_CODES
from .rooms import ROOM_ERROR_CODES

# Error codes carried by ``error`` frames.
ERROR_CODES = (
    "bad_password",
    "password_in_url",
    "handshake_timeout",
    "server_full",
    "address_busy",
    "name_invalid",
    "name_reserved",
    "name_taken",
    "empty",
    "too_long",
    "invalid_text",
    "rate_limited",
    "flooding",
    "malformed",
    "unknown_type",
    "not_authenticated",
    "already_authenticated",
    "not_joined",
    "already_joined",
    "binary_not_accepted",
    "log_unavailable",
    "shutting_down",
    "resume_bad_token",
    "resume_wrong_epoch",
    "resume_expired",
    "resume_beyond_end",
    "replaced",
    "muted",
    "banned",
    "too_many_guesses",
    "too_many_joins",
    *ACCOUNT_ERROR_CODES,
    *ROOM_ERROR_CODES,
)

__all__ = ["ERROR_CODES"]
