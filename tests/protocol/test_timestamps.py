"""``format_ts``: every timestamp in chat.log and in the frames, written fast and exactly as datetime writes it."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from chat_protocol.timestamps import format_ts, parse_ts


def by_datetime(epoch_seconds: float) -> str:
    """What chat.log's timestamps always were: datetime's own rounding, milliseconds truncated."""
    moment = datetime.fromtimestamp(epoch_seconds, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@given(st.floats(min_value=-1e9, max_value=4e9, allow_nan=False))
def test_any_moment_is_written_as_datetime_writes_it(epoch_seconds: float) -> None:
    assert format_ts(epoch_seconds) == by_datetime(epoch_seconds)


@given(st.integers(min_value=0, max_value=4_000_000_000), st.sampled_from([0.0, 0.0005, 0.9994999, 0.9995, 0.9999995]))
def test_the_edges_of_a_second_and_of_a_millisecond(second: int, fraction: float) -> None:
    """Just below the next second a microsecond's rounding carries over into it, as in datetime."""
    assert format_ts(second + fraction) == by_datetime(second + fraction)


def test_a_timestamp_reads_back() -> None:
    assert format_ts(1_795_485_038.123) == "2026-11-24T01:50:38.123Z"
    assert parse_ts(format_ts(1_795_485_038.123)).timestamp() == 1_795_485_038.123
