"""Load held: 1,000 members with steady chat; accepted = logged = delivered, bounded memory, no errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from soak import soak
from support.campaign import FULL, record
from support.timing import UNIT

pytestmark = [pytest.mark.anyio, pytest.mark.long]

MEMBERS = int(os.environ.get("RELIABILITY_SOAK_MEMBERS", "1000"))
SECONDS = 300.0 if FULL else 30.0
RATE = 20.0


@pytest.mark.timeout((180 if FULL else 48) * UNIT)
async def test_soak_1000_members(tmp_path: Path) -> None:
    """1,000 members for 30 s (300 s with RELIABILITY_FULL=1) at 20 messages/s: nothing lost, no errors."""
    result = await soak(MEMBERS, RATE, SECONDS, tmp_path / "data")
    assert result["tracker_errors"] == []
    assert result["refused"] == 0 and result["slow_drops"] == 0
    assert result["sent"] == result["accepted"] == result["logged"]
    assert result["kept_up"] == MEMBERS
    assert result["deliveries"] == result["expected_deliveries"] == result["accepted"] * MEMBERS
    assert result["exit_status"] == 0 and result["exit_seconds"] < UNIT
    assert result["rss_peak_mib"] < 512
    record("load", **{k: v for k, v in result.items() if k != "tracker_errors"}, full=FULL)
