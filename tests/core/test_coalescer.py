"""The window: short in a quiet room, longer while the tracker is busy, up to --coalesce-ms only when saturated."""

from __future__ import annotations

import pytest

from chat_tracker.core.coalescer import BUSY, BUSY_WINDOW, CALM, RATE_SECONDS, SATURATED, Coalescer, replica_gather
from support.fakes import FakeClock


class Writes:
    """A held outbox that writes ``frames`` at each flush."""

    def __init__(self, frames: int) -> None:
        self.frames = frames

    def flush(self) -> int:
        return self.frames


def windows(coalescer: Coalescer, clock: FakeClock, frames_per_second: int, seconds: float) -> None:
    """Steady traffic: every window, each of 10 members gets a frame at once and more held for the window's end."""
    per_window = 0.005
    for _ in range(round(seconds / per_window)):
        for _ in range(10):
            coalescer.open()
        coalescer.hold(Writes(max(0, round(frames_per_second * per_window) - 10)))
        clock.advance(per_window)
        coalescer.flush()


@pytest.mark.anyio
async def test_a_busy_tracker_lets_the_window_grow_to_30_ms() -> None:
    clock = FakeClock()
    coalescer = Coalescer(0.030, clock=clock)
    assert coalescer.ceiling == CALM
    windows(coalescer, clock, 2 * BUSY, 3 * RATE_SECONDS)
    assert coalescer.ceiling == pytest.approx(0.030)
    windows(coalescer, clock, 2 * BUSY, 3 * RATE_SECONDS)
    assert coalescer.window == pytest.approx(0.030)  # steady traffic: grown a step at a time to the ceiling


@pytest.mark.anyio
async def test_a_saturated_tracker_lets_the_window_grow_to_a_longer_coalesce_ms_and_back_when_it_quietens() -> None:
    """60 ms (the default): 30 at most while busy, all 60 only from SATURATED frames a second, 10 once calm again."""
    clock = FakeClock()
    coalescer = Coalescer(0.060, clock=clock)
    windows(coalescer, clock, (BUSY + SATURATED) // 2, 3 * RATE_SECONDS)
    assert coalescer.ceiling == pytest.approx(BUSY_WINDOW) == pytest.approx(0.030)
    windows(coalescer, clock, 2 * SATURATED, 3 * RATE_SECONDS)
    assert coalescer.ceiling == pytest.approx(0.060)
    windows(coalescer, clock, 2 * SATURATED, 6 * RATE_SECONDS)
    assert coalescer.window == pytest.approx(0.060)  # grown a step at a time to the ceiling
    windows(coalescer, clock, (BUSY + SATURATED) // 2, 3 * RATE_SECONDS)
    assert coalescer.ceiling == pytest.approx(0.030) and coalescer.window <= 0.030
    windows(coalescer, clock, BUSY // 4, 3 * RATE_SECONDS)
    assert coalescer.ceiling == CALM and coalescer.window <= CALM


@pytest.mark.anyio
async def test_a_calm_tracker_keeps_the_window_at_ten_ms_whatever_coalesce_ms_says() -> None:
    clock = FakeClock()
    coalescer = Coalescer(0.030, clock=clock)
    windows(coalescer, clock, 2 * BUSY, 3 * RATE_SECONDS)
    windows(coalescer, clock, BUSY // 4, 3 * RATE_SECONDS)  # the room quietened
    assert coalescer.ceiling == CALM and coalescer.window <= CALM


@pytest.mark.anyio
async def test_a_short_coalesce_ms_is_never_exceeded_busy_or_not() -> None:
    clock = FakeClock()
    coalescer = Coalescer(0.004, clock=clock)
    windows(coalescer, clock, 4 * BUSY, 3 * RATE_SECONDS)
    assert coalescer.ceiling == pytest.approx(0.004) and coalescer.window <= 0.004


@pytest.mark.anyio
async def test_frames_a_little_more_than_a_window_apart_keep_gathering_only_when_busy() -> None:
    """A busy room's batches come irregularly; one 20 ms after the last window still waits for the next."""
    busy, calm = FakeClock(), FakeClock()
    coalescers = {"busy": Coalescer(0.030, clock=busy), "calm": Coalescer(0.030, clock=calm)}
    windows(coalescers["busy"], busy, 2 * BUSY, 3 * RATE_SECONDS)
    windows(coalescers["calm"], calm, BUSY // 4, 3 * RATE_SECONDS)
    for coalescer in coalescers.values():
        coalescer.window = coalescer.shortest  # as after windows in which holding did not pay
    busy.advance(0.020)
    calm.advance(0.020)
    assert coalescers["busy"].steady() and not coalescers["calm"].steady()


@pytest.mark.anyio
async def test_replicas_gather_a_quarter_of_the_ceiling_so_a_longer_coalesce_ms_lengthens_only_a_busy_ones_wait() -> (
    None
):
    """Calm, a replica waits a quarter of the calm window before Redis whatever --coalesce-ms is; busy or saturated,
    a quarter of the busy ceiling (fewer script calls and reads per message); no window, no wait."""
    for ms, calm_wait, busy_wait in (
        (10, 0.0025, 0.0025),
        (30, 0.0025, 0.0075),
        (60, 0.0025, 0.0075),
        (4, 0.001, 0.001),
    ):
        clock = FakeClock()
        coalescer = Coalescer(ms / 1000, clock=clock)
        gather = replica_gather(coalescer)
        assert gather() == pytest.approx(calm_wait)
        windows(coalescer, clock, 2 * BUSY, 3 * RATE_SECONDS)
        assert gather() == pytest.approx(busy_wait)
        windows(coalescer, clock, 2 * SATURATED, 3 * RATE_SECONDS)
        assert gather() == pytest.approx(busy_wait)  # saturated: the window waits longer, the gathering does not
        windows(coalescer, clock, BUSY // 4, 3 * RATE_SECONDS)
        assert gather() == pytest.approx(calm_wait)
    assert replica_gather(None)() == 0
