"""Real-time pacing: show a rollout's decision steps at the speed they happen in simulated time.

An env steps far faster than real time (LaneKeep decides 20 times per simulated second, and steps
hundreds of times per wall-clock second even in the PyBullet GUI), so a loop that shows every step
must wait between them.
:class:`RealTimePacer` schedules step ``k`` at ``start + k * period_s / speed`` on a monotonic clock:
each wait is measured from the start, not from the previous call, so the time spent stepping and
drawing never adds up into drift, and a loop that falls behind (a slow frame) catches up by not
sleeping until it is back on schedule.

No heavy imports: usable by any command that shows a rollout (``drivelab drive --render human``).
"""

from __future__ import annotations

import math
import time
from typing import Callable


def check_speed(speed: object) -> float:
    """``speed`` as a float, or a one-line ``ValueError``: a finite number >= 0 (0: as fast as it goes)."""
    if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not math.isfinite(speed) or speed < 0:
        raise ValueError(f"speed must be a finite number >= 0 (1 = real time, 2 = twice as fast, 0 = as fast as it goes), "
                         f"got {speed!r}")
    return float(speed)


class RealTimePacer:
    """Sleeps so that decision step ``k`` is shown no earlier than ``start + k * period_s / speed``.

    :param period_s: simulated time between two decision steps (an env's ``decision_dt_s``), > 0.
    :param speed: simulated seconds per wall-clock second: 1 is real time, 2 twice as fast, 0 never sleeps.
    :param clock: a monotonic clock in seconds (``time.monotonic``; tests give a fake one).
    :param sleep: sleeps for the given seconds (``time.sleep``).

    Call :meth:`start` (or :meth:`reset`, the same) when step 0 is on screen, an episode's first
    observation, and :meth:`wait` once after each step; the first :meth:`wait` after a start waits
    for step 1. A :meth:`wait` before any start starts the schedule there, as step 0.
    """

    def __init__(self, period_s: float, speed: float = 1.0, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if isinstance(period_s, bool) or not isinstance(period_s, (int, float)) or not (math.isfinite(period_s) and period_s > 0):
            raise ValueError(f"period_s must be a positive number of seconds, got {period_s!r}")
        self.period_s = float(period_s)
        self.speed = check_speed(speed)
        self._clock, self._sleep = clock, sleep
        self._start: float | None = None
        self.steps = 0
        self.slept_s = 0.0  # total time slept since the start (what pacing added to the loop)

    def start(self) -> None:
        """Step 0 is shown now: the schedule starts from this moment."""
        self._start = self._clock()
        self.steps = 0
        self.slept_s = 0.0

    reset = start

    @property
    def started(self) -> bool:
        return self._start is not None

    def due_s(self, step: int) -> float:
        """When step ``step`` is due on the clock (the start when ``speed`` is 0)."""
        if self._start is None:
            raise RuntimeError("RealTimePacer: call start() first")
        return self._start if self.speed == 0 else self._start + step * self.period_s / self.speed

    def wait(self) -> float:
        """One more step is done: sleep until it is due. Returns the seconds slept (0 when behind schedule)."""
        if self._start is None:
            self.start()
            return 0.0
        self.steps += 1
        if self.speed == 0:
            return 0.0
        delay = self.due_s(self.steps) - self._clock()
        if delay <= 0:
            return 0.0  # behind schedule: go on at once, and catch up
        self._sleep(delay)
        self.slept_s += delay
        return delay
