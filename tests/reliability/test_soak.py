"""Load held: 1,000 members with steady chat; accepted = logged = delivered, memory that does not grow, no errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from soak import soak
from support.campaign import FULL, record
from support.timing import UNIT

pytestmark = [pytest.mark.anyio, pytest.mark.long]

MEMBERS = int(os.environ.get("RELIABILITY_SOAK_MEMBERS", "1000"))
SECONDS = 600.0 if FULL else 30.0
RATE = 20.0
# Memory, over the samples taken once the in-memory history is full (soak.py's docstring):
# - the full form (about 420 samples over 7.5 minutes): the least-squares slope under 1 MiB a
#   minute. A leak of 1 KiB per message (20 KiB/s) would show as 1.2 MiB/min; sampling noise
#   of a few MiB moves a slope over that many minutes by a few hundredths (measured: 0.002).
# - the CI form (about 22 samples over 22 s): too short for a slope (the same noise moves it by
#   MiB/min), so the growth of the second half's mean over the first half's, under 8 MiB. A leak
#   of 40 bytes per delivery (1,000 members x 20 messages/s) would add 8 MiB in those 11 s
#   (measured: 0.17 MiB). The full form asserts that growth too.
SLOPE_BOUND_MIB_PER_MIN = 1.0
GROWTH_BOUND_MIB = 8.0


@pytest.mark.timeout((200 if FULL else 48) * UNIT)
async def test_soak_1000_members(tmp_path: Path) -> None:
    """1,000 members for 30 s (600 s with RELIABILITY_FULL=1) at 20 messages/s: nothing lost, no errors, no growth."""
    result = await soak(MEMBERS, RATE, SECONDS, tmp_path / "data")
    record("load", **{k: v for k, v in result.items() if k != "tracker_errors"}, full=FULL)
    assert result["tracker_errors"] == []
    assert result["refused"] == 0 and result["slow_drops"] == 0
    assert result["sent"] == result["accepted"] == result["logged"]
    assert result["kept_up"] == MEMBERS
    assert result["deliveries"] == result["expected_deliveries"] == result["accepted"] * MEMBERS
    assert result["exit_status"] == 0 and result["exit_seconds"] < UNIT
    assert result["rss_peak_mib"] < 512
    assert result["rss_growth_mib"] < GROWTH_BOUND_MIB, result
    if FULL:
        assert result["rss_slope_mib_per_min"] < SLOPE_BOUND_MIB_PER_MIN, result
