"""Real-time pacing (drivelab.viewer.pacing.RealTimePacer) on a fake clock and on the real one, and ``drive --speed``."""

from __future__ import annotations

import math
import time

import pytest

from drivelab.viewer.pacing import RealTimePacer, check_speed


class FakeClock:
    """A clock that only moves when slept on, or when the test says work took time."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds

    def work(self, seconds: float) -> None:
        self.now += seconds


def fake_pacer(period_s: float = 0.05, speed: float = 1.0) -> tuple[RealTimePacer, FakeClock]:
    clock = FakeClock()
    return RealTimePacer(period_s, speed, clock=clock, sleep=clock.sleep), clock


def test_step_k_is_due_k_periods_after_the_start_whatever_each_step_cost():
    pacer, clock = fake_pacer(0.05)
    pacer.start()
    start = clock.now
    for k, cost in enumerate([0.0, 0.01, 0.049, 0.03, 0.0, 0.02] * 30, start=1):
        clock.work(cost)
        pacer.wait()
        assert clock.now == pytest.approx(start + k * 0.05, abs=1e-9)  # no drift: the schedule is kept from the start
    assert pacer.steps == 180


def test_speed_scales_the_schedule():
    for speed, expected in ((2.0, 0.025), (0.5, 0.1), (4, 0.0125)):
        pacer, clock = fake_pacer(0.05, speed)
        pacer.start()
        start = clock.now
        for _ in range(40):
            clock.work(0.001)
            pacer.wait()
        assert clock.now - start == pytest.approx(40 * expected)


def test_a_loop_that_falls_behind_goes_on_without_sleeping_and_catches_up():
    pacer, clock = fake_pacer(0.05)
    pacer.start()
    start = clock.now
    clock.work(0.3)  # a stall: steps 1..5 are already late when step 1 ends
    assert pacer.wait() == 0.0
    for _ in range(4):
        clock.work(0.01)
        assert pacer.wait() == 0.0  # still behind: no sleep
    assert clock.sleeps == []
    pacer.wait()  # step 6, due at 0.30 s, ends at 0.34 s: still behind
    pacer.wait()  # step 7 is due at 0.35 s: on schedule again, the same schedule as before the stall
    assert clock.sleeps == [pytest.approx(0.01)] and clock.now == pytest.approx(start + 7 * 0.05)


def test_speed_zero_never_sleeps():
    pacer, clock = fake_pacer(0.05, 0)
    pacer.start()
    for _ in range(100):
        assert pacer.wait() == 0.0
    assert clock.sleeps == [] and pacer.slept_s == 0.0


def test_start_and_reset_begin_a_new_schedule_and_a_first_wait_starts_one():
    pacer, clock = fake_pacer(0.05)
    assert pacer.wait() == 0.0 and pacer.started  # the first wait marks step 0
    pacer.wait()
    assert pacer.steps == 1 and clock.sleeps == [pytest.approx(0.05)]
    clock.work(10.0)  # a pause between episodes
    pacer.reset()
    start = clock.now
    pacer.wait()
    assert pacer.steps == 1 and clock.now == pytest.approx(start + 0.05)  # not 10 s behind: a new schedule


def test_real_clock_keeps_real_time_without_drift():
    pacer = RealTimePacer(0.01)
    pacer.start()
    start = time.monotonic()
    for _ in range(50):
        time.sleep(0.004)  # the loop's own work
        pacer.wait()
    elapsed = time.monotonic() - start
    # 50 steps of 10 ms: never early, and late by one sleep's overshoot at most; pacing that waited a period
    # after each step instead of scheduling from the start would take 50 x 14 ms = 0.7 s and more.
    assert 0.5 <= elapsed < 0.65, elapsed


@pytest.mark.parametrize("bad", [-1, -0.5, math.nan, math.inf, -math.inf, "1", None, True])
def test_bad_speeds_raise_one_line(bad):
    with pytest.raises(ValueError) as error:
        RealTimePacer(0.05, bad)
    assert "speed must be a finite number >= 0" in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(ValueError):
        check_speed(bad)


@pytest.mark.parametrize("bad", [0, -0.05, math.nan, math.inf])
def test_bad_periods_raise(bad):
    with pytest.raises(ValueError, match="period_s must be a positive number"):
        RealTimePacer(bad)


@pytest.mark.parametrize("value, shown", [("-1", "-1.0"), ("nan", "nan"), ("inf", "inf")])
def test_drive_refuses_a_bad_speed_with_one_line_and_status_2(value, shown, capsys):
    from drivelab.cli import main

    assert main(["drive", "--episodes", "1", "--speed", value]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("drivelab: --speed must be a finite number >= 0") and err.strip().endswith(f"got {shown}")


def test_drive_refuses_a_speed_that_is_not_a_number(capsys):
    from drivelab.cli import main

    assert main(["drive", "--speed", "fast"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--speed: invalid float value: 'fast'" in err
