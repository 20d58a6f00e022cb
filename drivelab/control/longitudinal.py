"""Speed control: a PID on the speed error whose signed output becomes throttle or brake."""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

from drivelab.control.pid import PID

# One signed command u in [-1, 1]: u >= 0 is throttle, u < 0 is brake.
COMMAND_LIMITS = (-1.0, 1.0)


class LongitudinalCommand(NamedTuple):
    """Pedal positions; at most one of them is non-zero. (A named tuple: the speed loop makes one
    every physics step.)

    :param throttle: fraction of full throttle, in [0, 1].
    :param brake: fraction of full brake, in [0, 1].
    """

    throttle: float = 0.0
    brake: float = 0.0


def command_from_signed(u: float, brake_deadband: float = 0.0) -> LongitudinalCommand:
    """Split a signed command into throttle (``u > 0``) or brake (``u < 0``).

    :param u: signed command; clipped to [-1, 1].
    :param brake_deadband: small negative commands, ``-brake_deadband < u < 0``, coast (neither
        pedal) instead of braking: drag alone slows the car and the pedals do not chatter.
    """
    u = max(COMMAND_LIMITS[0], min(COMMAND_LIMITS[1], u))
    return LongitudinalCommand(*_pedals(u, brake_deadband))


def _pedals(u: float, brake_deadband: float) -> tuple[float, float]:
    """``(throttle, brake)`` of :func:`command_from_signed` for a finite ``u``, as a plain tuple: speed loops
    call it at physics rate. Comparisons rather than min/max, for the same reason."""
    if u >= 0.0:
        return (u if u < 1.0 else 1.0), 0.0
    if -u < brake_deadband:
        return 0.0, 0.0
    return 0.0, (-u if u > -1.0 else 1.0)


class SpeedController:
    """Holds a target speed with throttle and brake.

    A PID (``self.pid``, output limited to [-1, 1], anti-windup included) maps the speed error to
    one signed command: ``u >= 0`` is throttle, ``u < 0`` is brake, so the two pedals are never
    pressed together.

    Default gains: tuned on ``plants.LongitudinalPlant``'s defaults (1500 kg, 6000 N drive,
    9000 N brake, drag and rolling resistance), where full throttle gives about 4 m/s**2, so the
    loop is close to an integrator ``v' = 4 u``. With ``kp = 1.0`` the linear range is +-1 m/s of
    error with a 0.25 s time constant; ``ki = 0.1`` (damping ratio ``kp / sqrt(ki)`` = 3.2 for that
    integrator) removes the few per cent of throttle that drag needs. A large step saturates the
    throttle, and anti-windup stops the integral meanwhile, so 0 -> 10 m/s does not overshoot; a
    1 m/s step overshoots by under 2 % (the PI zero). A larger ``ki`` settles the drag offset
    sooner but overshoots more on small steps. No derivative: it would differentiate a noisy speed
    for little gain on an integrating plant.

    :param kp: proportional gain, command per m/s of speed error.
    :param ki: integral gain, command per (m/s * s).
    :param kd: derivative gain, command per m/s**2.
    :param brake_deadband: commands in ``(-brake_deadband, 0)`` coast instead of braking.
    :param derivative_filter_tau_s: low-pass time constant of the derivative term, s; ``None``
        for none.
    """

    def __init__(
        self,
        kp: float = 1.0,
        ki: float = 0.1,
        kd: float = 0.0,
        *,
        brake_deadband: float = 0.0,
        derivative_filter_tau_s: float | None = None,
    ) -> None:
        if not (math.isfinite(brake_deadband) and 0.0 <= brake_deadband < 1.0):
            raise ValueError(f"brake_deadband must be in [0, 1), got {brake_deadband!r}")
        self.brake_deadband = brake_deadband
        self.pid = PID(kp, ki, kd, output_limits=COMMAND_LIMITS, derivative_filter_tau_s=derivative_filter_tau_s)
        self.last_command = LongitudinalCommand()

    def update(
        self, target_speed_mps: float, speed_mps: float, dt_s: float, feedforward: float = 0.0
    ) -> LongitudinalCommand:
        """Pedal positions for one control step.

        :param target_speed_mps: desired speed in m/s.
        :param speed_mps: measured speed in m/s.
        :param dt_s: time since the previous update in s (> 0).
        :param feedforward: signed command added before the limits, e.g. the throttle known to
            hold the target speed, or a planned acceleration converted to a command.
        """
        u = self.pid.update(target_speed_mps, speed_mps, dt_s, feedforward)
        self.last_command = command_from_signed(u, self.brake_deadband)
        return self.last_command

    def run(self, target_speed_mps: float, speed_mps: float, dt_s: float, steps: int,
            measure_speed: Callable[[], float], apply_pedals: Callable[[float, float], None],
            advance: Callable[[], None]) -> LongitudinalCommand:
        """Close the loop around a plant for ``steps`` control periods of ``dt_s``: update, apply the pedals,
        advance the plant, measure its speed, and again. The same commands as :meth:`update` called step by
        step, with less Python per period (a simulator runs this at its physics rate).

        :param speed_mps: the speed measured now, for the first period.
        :param measure_speed: the plant's speed after it advanced.
        :param apply_pedals: ``apply_pedals(throttle, brake)``.
        :param advance: advance the plant by one period.
        :return: the last command applied.
        """
        update, deadband = self.pid.update, self.brake_deadband
        throttle = brake = 0.0
        for period in range(steps):
            if period:
                speed_mps = measure_speed()
            throttle, brake = _pedals(update(target_speed_mps, speed_mps, dt_s), deadband)
            apply_pedals(throttle, brake)
            advance()
        self.last_command = LongitudinalCommand(throttle, brake)
        return self.last_command

    def reset(self, command: LongitudinalCommand | None = None, speed_mps: float | None = None) -> None:
        """Forget the controller's history; optionally continue bumplessly from ``command``.

        :param command: the pedals currently applied; the next update starts from them.
        :param speed_mps: the current speed, if known.
        """
        output = None if command is None else command.throttle - command.brake
        self.pid.reset(output=output, measurement=speed_mps)
        self.last_command = LongitudinalCommand() if command is None else command
