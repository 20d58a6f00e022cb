"""A PID controller that runs on simulation time.

``PID.update(setpoint, measurement, dt_s)`` takes the time step explicitly, so a run is
reproducible whatever the wall clock does (a physics engine at 240 Hz, a replayed log, a unit
test that runs in microseconds). Features, each of which can be switched off:

- output limits with anti-windup by conditional integration (clamping): the integral never grows
  in a direction in which the output is already saturated;
- derivative on measurement (default; no derivative kick when the set-point steps) or on error;
- a first-order low-pass filter on the derivative term;
- a feed-forward input, added to the output and included in the saturation test;
- proportional on measurement (as in simple-pid), an error map (e.g. angle wrapping);
- bumpless (re)start: ``reset(output=u0)`` or ``set_auto_mode(True, last_output=u0)`` makes the
  first update after the restart return exactly ``u0``;
- ``components`` with the P, I, D and feed-forward terms of the last update, for dashboards.

Sign convention (the usual one, and simple-pid's): ``error = setpoint - measurement`` and a
positive gain drives the output up when the measurement is below the set-point.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

Limits = tuple[float | None, float | None]

NO_LIMITS: Limits = (None, None)
_ZERO_TERMS = (0.0, 0.0, 0.0, 0.0)


class PIDTerms(NamedTuple):
    """The terms of one PID update; ``output`` is their sum clipped to the output limits.

    :param proportional: the P term (``kp * error``, or the accumulated term on measurement).
    :param integral: the I term (the accumulated ``ki * error * dt_s``, after anti-windup).
    :param derivative: the D term after the optional low-pass filter.
    :param feedforward: the feed-forward passed to the update.
    """

    proportional: float = 0.0
    integral: float = 0.0
    derivative: float = 0.0
    feedforward: float = 0.0


def _clamp(value: float, limits: Limits) -> float:
    lower, upper = limits
    if upper is not None and value > upper:
        return upper
    if lower is not None and value < lower:
        return lower
    return value


def _check_limits(name: str, limits: Limits | None) -> Limits:
    if limits is None:
        return NO_LIMITS
    lower, upper = limits
    for bound in (lower, upper):
        if bound is not None and math.isnan(bound):
            raise ValueError(f"{name} must be numbers or None, got {limits!r}")
    if lower is not None and upper is not None and lower > upper:
        raise ValueError(f"{name} must be (lower, upper) with lower <= upper, got {limits!r}")
    return (lower, upper)


def _check_finite(**values: float) -> None:
    for name, value in values.items():
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")


def check_dt(dt_s: float) -> None:
    """Raise a one-line ``ValueError`` unless ``dt_s`` is a finite, positive number of seconds.

    :param dt_s: the time step in seconds.
    """
    if not (math.isfinite(dt_s) and dt_s > 0.0):
        raise ValueError(f"dt_s must be a finite time step > 0 seconds, got {dt_s!r}")


class PID:
    """A PID controller with explicit time step, anti-windup, filtered derivative and feed-forward.

    ``u = P + I + D + feedforward``, clipped to ``output_limits``, with ``e = setpoint - y``::

        P = kp * e                       (or -kp * accumulated change of y, proportional_on_measurement)
        I = sum(ki * e * dt_s)           (never grows while u is saturated in that direction)
        D = -kd * dy/dt                  (derivative_on_measurement, default) or kd * de/dt
            low-pass filtered: D_k = a * D_(k-1) + (1 - a) * D_raw, a = tau / (tau + dt_s)

    The integral stores ``ki * e * dt_s`` summed (not the bare error sum), so changing ``ki`` between
    updates does not make the output jump. The first update after construction or ``reset()`` has
    no previous measurement, so its derivative term is zero.

    :param kp: proportional gain (output units per measurement unit).
    :param ki: integral gain (output units per measurement unit per second).
    :param kd: derivative gain (output units per measurement unit per 1/second).
    :param output_limits: ``(lower, upper)``; either may be ``None`` for no limit on that side.
    :param derivative_filter_tau_s: time constant of the first-order low-pass filter on the
        derivative term, in seconds; ``None`` for no filter. A common choice is ``kd / kp / N``
        with ``N`` between 2 and 20.
    :param derivative_on_measurement: differentiate ``-measurement`` (no kick when the set-point
        steps) instead of the error. The two are equal while the set-point is constant.
    :param integral_limits: ``(lower, upper)`` bounds on the integral term itself, on top of the
        anti-windup that ``output_limits`` gives; ``None`` for none.
    :param proportional_on_measurement: compute the P term from the change of the measurement
        instead of from the error (as simple-pid's option of the same name); reduces overshoot on
        set-point steps for integrating plants.
    :param error_map: a function applied to the error before the P and I terms, e.g. an angle
        wrap; ``None`` for none.
    """

    def __init__(
        self,
        kp: float,
        ki: float = 0.0,
        kd: float = 0.0,
        *,
        output_limits: Limits | None = NO_LIMITS,
        derivative_filter_tau_s: float | None = None,
        derivative_on_measurement: bool = True,
        integral_limits: Limits | None = None,
        proportional_on_measurement: bool = False,
        error_map: Callable[[float], float] | None = None,
    ) -> None:
        _check_finite(kp=kp, ki=ki, kd=kd)
        if derivative_filter_tau_s is not None and not (
            math.isfinite(derivative_filter_tau_s) and derivative_filter_tau_s > 0.0
        ):
            raise ValueError(
                f"derivative_filter_tau_s must be > 0 seconds or None, got {derivative_filter_tau_s!r}"
            )
        self.kp = kp
        self.ki = ki
        self.kd = kd
        self.derivative_filter_tau_s = derivative_filter_tau_s
        self.derivative_on_measurement = derivative_on_measurement
        self.proportional_on_measurement = proportional_on_measurement
        self.error_map = error_map
        self._output_limits = _check_limits("output_limits", output_limits)
        self._integral_limits = _check_limits("integral_limits", integral_limits)
        self._auto_mode = True
        self.reset()

    # -- configuration -------------------------------------------------------------------------

    @property
    def output_limits(self) -> Limits:
        """``(lower, upper)`` bounds of the output; ``None`` means unbounded on that side."""
        return self._output_limits

    @output_limits.setter
    def output_limits(self, limits: Limits | None) -> None:
        self._output_limits = _check_limits("output_limits", limits)
        self._last_output = _clamp(self._last_output, self._output_limits)

    @property
    def integral_limits(self) -> Limits:
        """``(lower, upper)`` bounds of the integral term; ``None`` means unbounded on that side."""
        return self._integral_limits

    @integral_limits.setter
    def integral_limits(self, limits: Limits | None) -> None:
        self._integral_limits = _check_limits("integral_limits", limits)
        self._integral = _clamp(self._integral, self._integral_limits)

    @property
    def tunings(self) -> tuple[float, float, float]:
        """The gains ``(kp, ki, kd)``."""
        return self.kp, self.ki, self.kd

    @tunings.setter
    def tunings(self, gains: tuple[float, float, float]) -> None:
        self.kp, self.ki, self.kd = gains

    # -- state ---------------------------------------------------------------------------------

    @property
    def components(self) -> PIDTerms:
        """The P, I, D and feed-forward terms of the last update (all zero before the first)."""
        return PIDTerms(*self._terms)  # made when asked: updates run at physics rate, readers at display rate

    @property
    def last_output(self) -> float:
        """The output of the last update (after the limits), or the restart output after a reset."""
        return self._last_output

    @property
    def auto_mode(self) -> bool:
        """``True`` while the controller computes outputs; ``False`` in manual mode."""
        return self._auto_mode

    def reset(self, output: float | None = None, measurement: float | None = None) -> None:
        """Forget the controller's history; optionally prepare a bumpless start.

        :param output: if given, the first update after the reset returns exactly this value
            (clipped to the output limits): the integral is set to ``output - P - D - feedforward``
            at that update, so the output continues from ``output`` without a jump and then moves
            smoothly. If ``None``, the integral starts at zero (a cold start).
        :param measurement: the current measurement, if known; it becomes the previous sample of
            the derivative (and of proportional-on-measurement), so their first update is not zero.
        """
        if output is not None:
            _check_finite(output=output)
        if measurement is not None:
            _check_finite(measurement=measurement)
        self._integral = 0.0
        self._derivative = 0.0
        self._proportional_on_measurement = 0.0
        self._last_measurement = measurement
        self._last_error: float | None = None
        self._start_output = None if output is None else _clamp(output, self._output_limits)
        self._last_output = 0.0 if self._start_output is None else self._start_output
        self._terms = _ZERO_TERMS

    def set_auto_mode(self, enabled: bool, last_output: float | None = None) -> None:
        """Switch between automatic (PID computes the output) and manual mode.

        In manual mode ``update`` returns ``last_output`` unchanged but keeps following the
        measurement. Switching back to automatic resets the controller; pass the output that was
        applied manually as ``last_output`` for a bumpless transfer (see ``reset``).

        :param enabled: ``True`` for automatic mode, ``False`` for manual mode.
        :param last_output: the output to continue from when switching to automatic mode; ignored
            if the controller already is in automatic mode.
        """
        if enabled and not self._auto_mode:
            self.reset(output=last_output, measurement=self._last_measurement)
        self._auto_mode = enabled

    # -- the control law -----------------------------------------------------------------------

    def update(self, setpoint: float, measurement: float, dt_s: float, feedforward: float = 0.0) -> float:
        """Compute the output for one time step.

        :param setpoint: the desired value of the measurement.
        :param measurement: the measured value.
        :param dt_s: simulation time since the previous update, in seconds (> 0).
        :param feedforward: a value added to the output before the limits (e.g. the input known
            to hold the set-point); saturation and anti-windup take it into account.
        :return: the output, within ``output_limits``.
        """
        # One comparison chain for the valid case; the helpers only build the error message.
        if not (0.0 < dt_s < math.inf):
            check_dt(dt_s)
        total = setpoint + measurement + feedforward
        if total - total != 0.0:  # NaN or inf among them (or a sum that overflowed): find which, if any
            _check_finite(setpoint=setpoint, measurement=measurement, feedforward=feedforward)
        error = setpoint - measurement
        if self.error_map is not None:
            error = self.error_map(error)
        previous_measurement, previous_error = self._last_measurement, self._last_error
        self._last_measurement, self._last_error = measurement, error
        if not self._auto_mode:
            return self._last_output

        if self.proportional_on_measurement:
            if previous_measurement is not None:
                self._proportional_on_measurement -= self.kp * (measurement - previous_measurement)
            proportional = self._proportional_on_measurement
        else:
            proportional = self.kp * error

        derivative = self._derivative_term(measurement, error, previous_measurement, previous_error, dt_s)
        others = proportional + derivative + feedforward

        if self._start_output is not None:
            # Bumpless start: choose the integral that makes this output equal the restart output.
            integral = _clamp(self._start_output - others, self._integral_limits)
            self._start_output = None
        else:
            integral = self._anti_windup(self._integral + self.ki * error * dt_s, others)

        self._integral = integral
        self._last_output = _clamp(others + integral, self._output_limits)
        self._terms = (proportional, integral, derivative, feedforward)
        return self._last_output

    def _derivative_term(
        self,
        measurement: float,
        error: float,
        previous_measurement: float | None,
        previous_error: float | None,
        dt_s: float,
    ) -> float:
        if self.derivative_on_measurement:
            change = 0.0 if previous_measurement is None else -(measurement - previous_measurement)
        else:
            change = 0.0 if previous_error is None else error - previous_error
        raw = self.kd * change / dt_s
        tau_s = self.derivative_filter_tau_s
        if tau_s is None:
            self._derivative = raw
        else:
            # Backward-Euler discretisation of 1 / (tau s + 1): stable for every dt_s.
            smoothing = tau_s / (tau_s + dt_s)
            self._derivative = smoothing * self._derivative + (1.0 - smoothing) * raw
        return self._derivative

    def _anti_windup(self, candidate: float, others: float) -> float:
        """Conditional integration: the integral may grow only while the output is not saturated
        in that direction, and stops exactly where the output reaches the limit."""
        previous = self._integral
        lower, upper = self._output_limits
        if upper is not None and candidate > previous:
            candidate = min(candidate, max(previous, upper - others))
        if lower is not None and candidate < previous:
            candidate = max(candidate, min(previous, lower - others))
        return _clamp(candidate, self._integral_limits)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(kp={self.kp!r}, ki={self.ki!r}, kd={self.kd!r}, "
            f"output_limits={self._output_limits!r}, "
            f"derivative_filter_tau_s={self.derivative_filter_tau_s!r}, "
            f"derivative_on_measurement={self.derivative_on_measurement!r}, "
            f"integral_limits={self._integral_limits!r})"
        )
