"""Figures of merit for controller tests: step-response metrics and tracking RMS."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

RISE_START_FRACTION = 0.1
RISE_END_FRACTION = 0.9


@dataclass(frozen=True)
class StepResponse:
    """Step-response figures; times are measured from the first sample ``t_s[0]`` (the step).

    :param overshoot_pct: how far the response went past the set-point, in per cent of the step
        (0 when it never passed it).
    :param rise_time_s: time from 10 % to 90 % of the step (linearly interpolated between
        samples); ``inf`` if the response never reaches 90 %.
    :param settling_time_s: time after which the response stays within ``settling_band`` of the
        step around the set-point until the last sample (interpolated); ``inf`` if the last sample
        is outside the band; 0 if every sample is inside.
    :param steady_state_error: ``setpoint - y[-1]`` (the last sample stands for steady state, so
        record long enough).
    :param peak: the extreme value of ``y`` in the direction of the step.
    """

    overshoot_pct: float
    rise_time_s: float
    settling_time_s: float
    steady_state_error: float
    peak: float


def _as_1d(name: str, values: Sequence[float] | np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of numbers, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must contain only finite numbers")
    return array


def _first_crossing_s(t_s: np.ndarray, fraction: np.ndarray, level: float) -> float:
    """Time at which ``fraction`` first reaches ``level`` (interpolated), or ``inf``."""
    reached = np.flatnonzero(fraction >= level)
    if reached.size == 0:
        return math.inf
    k = int(reached[0])
    if k == 0:
        return float(t_s[0])
    f0, f1 = fraction[k - 1], fraction[k]
    return float(t_s[k - 1] + (level - f0) / (f1 - f0) * (t_s[k] - t_s[k - 1]))


def step_response(
    t_s: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    setpoint: float,
    initial: float | None = None,
    settling_band: float = 0.02,
) -> StepResponse:
    """Overshoot, rise time, settling time, steady-state error and peak of a step response.

    Works for steps up and down: the response is normalised to ``(y - initial) / (setpoint -
    initial)``, which goes from 0 to 1 whatever the step's sign.

    :param t_s: sample times in s, strictly increasing; the step is applied at ``t_s[0]``.
    :param y: the response, one sample per time.
    :param setpoint: the value the step goes to.
    :param initial: the value before the step; ``None`` for ``y[0]``.
    :param settling_band: half-width of the settling band, as a fraction of the step size
        (0.02 is the usual 2 % band).
    :raises ValueError: on mismatched or non-finite inputs, non-increasing times, a step of size
        zero or a band outside (0, 1).
    """
    t_s = _as_1d("t_s", t_s)
    y = _as_1d("y", y)
    if t_s.shape != y.shape:
        raise ValueError(f"t_s and y must have the same length, got {t_s.size} and {y.size}")
    if t_s.size > 1 and not np.all(np.diff(t_s) > 0.0):
        raise ValueError("t_s must be strictly increasing")
    if not 0.0 < settling_band < 1.0:
        raise ValueError(f"settling_band must be a fraction in (0, 1), got {settling_band!r}")
    initial = float(y[0]) if initial is None else float(initial)
    step = setpoint - initial
    if step == 0.0 or not math.isfinite(step):
        raise ValueError(f"setpoint and initial must differ (finite), got setpoint={setpoint!r}, initial={initial!r}")

    fraction = (y - initial) / step
    peak_index = int(np.argmax(fraction))
    overshoot_pct = max(0.0, float(fraction[peak_index]) - 1.0) * 100.0

    t_start = _first_crossing_s(t_s, fraction, RISE_START_FRACTION)
    t_end = _first_crossing_s(t_s, fraction, RISE_END_FRACTION)
    rise_time_s = t_end - t_start if math.isfinite(t_end) else math.inf

    deviation = np.abs(fraction - 1.0)
    outside = np.flatnonzero(deviation > settling_band)
    if outside.size == 0:
        settling_time_s = 0.0
    elif outside[-1] == t_s.size - 1:
        settling_time_s = math.inf
    else:
        k = int(outside[-1])
        d0, d1 = deviation[k], deviation[k + 1]
        t_in = t_s[k] + (d0 - settling_band) / (d0 - d1) * (t_s[k + 1] - t_s[k])
        settling_time_s = float(t_in - t_s[0])

    return StepResponse(
        overshoot_pct=overshoot_pct,
        rise_time_s=float(rise_time_s),
        settling_time_s=settling_time_s,
        steady_state_error=float(setpoint - y[-1]),
        peak=float(y[peak_index]),
    )


def tracking_rms(errors: Sequence[float] | np.ndarray) -> float:
    """Root mean square of a tracking error signal (e.g. cross-track errors per step).

    :param errors: the error samples; uniformly sampled, so each counts the same.
    :raises ValueError: if empty or non-finite.
    """
    values = _as_1d("errors", errors)
    return float(np.sqrt(np.mean(values**2)))
