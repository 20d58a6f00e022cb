"""Small, deterministic plant models to test controllers against (no simulator needed).

- ``FirstOrderLag``: ``tau * dy/dt = gain * u - y``, the textbook test plant for a PID.
- ``LongitudinalPlant``: a car's speed under throttle, brake, aerodynamic drag and rolling
  resistance; what ``SpeedController`` is tuned on.
- ``KinematicBicycle``: planar motion of a car (rear-axle reference point) under a steering angle,
  with an optional steering-rate limit and first-order steering lag; what the lateral trackers are
  tested on.

Every model has ``reset`` and a ``step`` that takes the time step explicitly; the same inputs
always give the same outputs.
"""

from __future__ import annotations

import math

import numpy as np

from drivelab.control.pid import check_dt

GRAVITY_MPS2 = 9.81


class FirstOrderLag:
    """``time_constant_s * dy/dt = gain * u - y``, discretised exactly for an input held over the step.

    The response to a unit step from rest is ``gain * (1 - exp(-t / time_constant_s))``.

    :param gain: steady-state gain ``y / u``.
    :param time_constant_s: time constant in seconds (> 0).
    :param initial_output: the output at the start and after ``reset()``.
    """

    def __init__(self, gain: float = 1.0, time_constant_s: float = 1.0, initial_output: float = 0.0) -> None:
        if not (math.isfinite(time_constant_s) and time_constant_s > 0.0):
            raise ValueError(f"time_constant_s must be > 0 seconds, got {time_constant_s!r}")
        self.gain = gain
        self.time_constant_s = time_constant_s
        self.initial_output = initial_output
        self.output = initial_output

    def reset(self, output: float | None = None) -> float:
        """Return to ``output`` (default: ``initial_output``) and return it.

        :param output: the new output, or ``None`` for ``initial_output``.
        """
        self.output = self.initial_output if output is None else output
        return self.output

    def step(self, u: float, dt_s: float) -> float:
        """Advance by ``dt_s`` with input ``u`` held constant; return the new output.

        :param u: the input over this step.
        :param dt_s: the time step in seconds (> 0).
        """
        check_dt(dt_s)
        blend = 1.0 - math.exp(-dt_s / self.time_constant_s)
        self.output += (self.gain * u - self.output) * blend
        return self.output


class LongitudinalPlant:
    """A car's forward speed under throttle and brake (forward motion only).

    ``mass_kg * dv/dt = throttle * max_drive_force_n - brake * max_brake_force_n
    - drag_coefficient * v**2 - rolling_resistance * mass_kg * g``, integrated with explicit Euler.
    Brake, drag and rolling resistance can stop the car but never push it backwards; at standstill
    the speed stays zero until the drive force is applied.

    The defaults are a mid-size car: 1500 kg, 6000 N of drive force (4 m/s**2), 9000 N of brake
    force (6 m/s**2), ``drag_coefficient = 0.5 * rho * c_d * A ~= 0.5 * 1.2 * 0.3 * 2.2 ~= 0.4``
    and a rolling-resistance coefficient of 0.015. At 10 m/s they need about 4 % throttle.

    :param mass_kg: vehicle mass in kg.
    :param max_drive_force_n: drive force at full throttle, in N.
    :param max_brake_force_n: brake force at full brake, in N.
    :param drag_coefficient: aerodynamic drag force per squared speed, in N/(m/s)**2.
    :param rolling_resistance: rolling-resistance coefficient (force / weight), dimensionless.
    :param initial_speed_mps: speed at the start and after ``reset()``, in m/s (>= 0).
    """

    def __init__(
        self,
        mass_kg: float = 1500.0,
        max_drive_force_n: float = 6000.0,
        max_brake_force_n: float = 9000.0,
        drag_coefficient: float = 0.4,
        rolling_resistance: float = 0.015,
        initial_speed_mps: float = 0.0,
    ) -> None:
        if not mass_kg > 0.0:
            raise ValueError(f"mass_kg must be > 0, got {mass_kg!r}")
        if not initial_speed_mps >= 0.0:
            raise ValueError(f"initial_speed_mps must be >= 0, got {initial_speed_mps!r}")
        self.mass_kg = mass_kg
        self.max_drive_force_n = max_drive_force_n
        self.max_brake_force_n = max_brake_force_n
        self.drag_coefficient = drag_coefficient
        self.rolling_resistance = rolling_resistance
        self.initial_speed_mps = initial_speed_mps
        self.speed_mps = initial_speed_mps

    def reset(self, speed_mps: float | None = None) -> float:
        """Return to ``speed_mps`` (default: ``initial_speed_mps``) and return it.

        :param speed_mps: the new speed in m/s, or ``None`` for ``initial_speed_mps``.
        """
        self.speed_mps = self.initial_speed_mps if speed_mps is None else speed_mps
        return self.speed_mps

    def resistance_force_n(self, speed_mps: float) -> float:
        """Drag plus rolling resistance at ``speed_mps`` (zero at standstill), in N.

        :param speed_mps: forward speed in m/s.
        """
        if speed_mps <= 0.0:
            return 0.0
        return self.drag_coefficient * speed_mps**2 + self.rolling_resistance * self.mass_kg * GRAVITY_MPS2

    def step(self, throttle: float, brake: float, dt_s: float) -> float:
        """Advance by ``dt_s``; return the new speed in m/s.

        :param throttle: fraction of the drive force, in [0, 1].
        :param brake: fraction of the brake force, in [0, 1].
        :param dt_s: the time step in seconds (> 0).
        """
        check_dt(dt_s)
        for name, value in (("throttle", throttle), ("brake", brake)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        drive_force_n = throttle * self.max_drive_force_n
        resisting_force_n = brake * self.max_brake_force_n + self.resistance_force_n(self.speed_mps)
        speed_mps = self.speed_mps + drive_force_n / self.mass_kg * dt_s
        self.speed_mps = max(0.0, speed_mps - resisting_force_n / self.mass_kg * dt_s)
        return self.speed_mps


class KinematicBicycle:
    """The kinematic bicycle model with the rear axle's centre as reference point.

    ``dx/dt = v cos(yaw)``, ``dy/dt = v sin(yaw)``, ``dyaw/dt = v tan(steer) / wheelbase``,
    ``dv/dt = accel``. Each step follows the exact arc of constant curvature (exact while the
    steering and speed are constant over the step). Angles follow ISO: yaw counter-clockwise from
    the x axis, steering positive to the left. Speed never goes below zero.

    The applied steering angle ``steer_rad`` follows the command through, in this order, an
    optional first-order lag (``steer_time_constant_s``), an optional rate limit
    (``max_steer_rate_radps``) and the angle limit ``max_steer_rad``.

    :param wheelbase_m: distance between the axles in m.
    :param x: initial x of the rear axle in m.
    :param y: initial y of the rear axle in m.
    :param yaw: initial yaw in rad.
    :param speed: initial speed in m/s.
    :param max_steer_rad: limit of the applied steering angle in rad.
    :param max_steer_rate_radps: limit of the steering rate in rad/s; ``None`` for none.
    :param steer_time_constant_s: time constant of the steering lag in s; ``None`` for none.
    """

    def __init__(
        self,
        wheelbase_m: float = 2.7,
        x: float = 0.0,
        y: float = 0.0,
        yaw: float = 0.0,
        speed: float = 0.0,
        *,
        max_steer_rad: float = 0.5,
        max_steer_rate_radps: float | None = None,
        steer_time_constant_s: float | None = None,
    ) -> None:
        if not wheelbase_m > 0.0:
            raise ValueError(f"wheelbase_m must be > 0, got {wheelbase_m!r}")
        self.wheelbase_m = wheelbase_m
        self.max_steer_rad = max_steer_rad
        self.max_steer_rate_radps = max_steer_rate_radps
        self.steer_time_constant_s = steer_time_constant_s
        self._initial = (x, y, yaw, speed)
        self.reset()

    def reset(
        self, x: float | None = None, y: float | None = None, yaw: float | None = None, speed: float | None = None
    ) -> None:
        """Return to the initial state; any argument given overrides that part of it.

        :param x: rear-axle x in m.
        :param y: rear-axle y in m.
        :param yaw: yaw in rad.
        :param speed: speed in m/s.
        """
        x0, y0, yaw0, speed0 = self._initial
        self.x_m = x0 if x is None else x
        self.y_m = y0 if y is None else y
        self.yaw_rad = yaw0 if yaw is None else yaw
        self.speed_mps = speed0 if speed is None else speed
        self.steer_rad = 0.0

    @property
    def state(self) -> np.ndarray:
        """``[x_m, y_m, yaw_rad, speed_mps, steer_rad]`` as a new array."""
        return np.array([self.x_m, self.y_m, self.yaw_rad, self.speed_mps, self.steer_rad])

    def _apply_steering(self, steer_command_rad: float, dt_s: float) -> None:
        target = steer_command_rad
        if self.steer_time_constant_s is not None:
            blend = 1.0 - math.exp(-dt_s / self.steer_time_constant_s)
            target = self.steer_rad + (target - self.steer_rad) * blend
        if self.max_steer_rate_radps is not None:
            max_change = self.max_steer_rate_radps * dt_s
            target = self.steer_rad + float(np.clip(target - self.steer_rad, -max_change, max_change))
        self.steer_rad = float(np.clip(target, -self.max_steer_rad, self.max_steer_rad))

    def step(self, steer_rad: float, dt_s: float, accel_mps2: float = 0.0) -> np.ndarray:
        """Advance by ``dt_s`` under a steering command; return the new ``state``.

        :param steer_rad: commanded steering angle in rad (positive: left).
        :param dt_s: the time step in seconds (> 0).
        :param accel_mps2: longitudinal acceleration in m/s**2 over the step.
        """
        check_dt(dt_s)
        if not math.isfinite(steer_rad):
            raise ValueError(f"steer_rad must be a finite number, got {steer_rad!r}")
        self._apply_steering(steer_rad, dt_s)
        new_speed_mps = max(0.0, self.speed_mps + accel_mps2 * dt_s)
        distance_m = 0.5 * (self.speed_mps + new_speed_mps) * dt_s
        turn_rad = distance_m * math.tan(self.steer_rad) / self.wheelbase_m
        # The chord of an arc of length s turning by h is s * sinc(h / 2), at half the turn.
        chord_m = distance_m * float(np.sinc(turn_rad / 2.0 / math.pi))
        self.x_m += chord_m * math.cos(self.yaw_rad + turn_rad / 2.0)
        self.y_m += chord_m * math.sin(self.yaw_rad + turn_rad / 2.0)
        self.yaw_rad += turn_rad
        self.speed_mps = new_speed_mps
        return self.state
