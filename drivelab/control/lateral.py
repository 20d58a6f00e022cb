"""Lateral (steering) trackers: a PID on the road-relative state, Stanley, and pure pursuit.

All three take the same road-relative state, so they are interchangeable behind
``LateralController``::

    steer_rad = tracker.update(cross_track_error_m, heading_error_rad, speed_mps, dt_s,
                               path_curvature_1pm)

Conventions (ISO, as in DESIGN.md):

- ``cross_track_error_m``: signed lateral offset of the **rear axle's centre** from the path, left
  positive. (The rear axle is the reference point of ``plants.KinematicBicycle``. If your state is
  measured elsewhere, e.g. at the centre of gravity, move it with
  ``paths.shift_reference_point(..., forward_offset_m=-distance_to_rear_axle_m)``.)
- ``heading_error_rad``: vehicle yaw minus the path's tangent yaw at the projection of that point,
  wrapped to (-pi, pi].
- ``path_curvature_1pm``: curvature of the path there, positive when the path turns left.
- The returned steering angle is positive to the left and lies in ``[-max_steer_rad, max_steer_rad]``.

So a car left of the path (``cross_track_error_m > 0``) steers right (negative). Each tracker
keeps the terms of its last computation in ``last_terms`` for the viewer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from drivelab.control.paths import STRAIGHT_CURVATURE_1PM, shift_reference_point
from drivelab.control.pid import PID, check_dt

DEFAULT_WHEELBASE_M = 2.7
DEFAULT_MAX_STEER_RAD = 0.5
# Guards a division when the rear axle sits exactly at the centre of a circular path.
_MIN_DENOMINATOR = 1e-12


@runtime_checkable
class LateralController(Protocol):
    """What every steering tracker offers; see the module docstring for the conventions."""

    def update(
        self,
        cross_track_error_m: float,
        heading_error_rad: float,
        speed_mps: float,
        dt_s: float,
        path_curvature_1pm: float = 0.0,
    ) -> float:
        """Return the steering angle in rad (positive: left) for one control step."""
        ...

    def reset(self) -> None:
        """Forget any internal state (integrators, filters, last terms)."""
        ...


def curvature_feedforward_rad(wheelbase_m: float, path_curvature_1pm: float) -> float:
    """Steering angle that makes a kinematic bicycle follow a path of constant curvature.

    :param wheelbase_m: distance between the axles in m.
    :param path_curvature_1pm: path curvature, left positive, in 1/m.
    """
    return math.atan(wheelbase_m * path_curvature_1pm)


def _check_state(cross_track_error_m: float, heading_error_rad: float, speed_mps: float, curvature_1pm: float) -> None:
    for name, value in (
        ("cross_track_error_m", cross_track_error_m),
        ("heading_error_rad", heading_error_rad),
        ("speed_mps", speed_mps),
        ("path_curvature_1pm", curvature_1pm),
    ):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")


def _clip(value: float, limit: float) -> float:
    return max(-limit, min(limit, value))


# -- PID on the road-relative state ------------------------------------------------------------


@dataclass(frozen=True)
class LateralPIDTerms:
    """The parts of ``LateralPID``'s last steering angle (rad; they sum to ``steer_rad`` unless it
    was clipped).

    :param cross_track: ``-k_cross_track_effective * cross_track_error_m``.
    :param heading: ``-k_heading_effective * heading_error_rad``.
    :param integral: integral of the cross-track error times ``-ki``.
    :param derivative: ``-kd`` times the rate of change of the cross-track error.
    :param feedforward: ``atan(wheelbase_m * path_curvature_1pm)``.
    :param steer_rad: the steering angle returned.
    :param k_cross_track_effective: the speed-scheduled cross-track gain used, in rad/m.
    :param k_heading_effective: the speed-scheduled heading gain used, in rad/rad.
    """

    cross_track: float = 0.0
    heading: float = 0.0
    integral: float = 0.0
    derivative: float = 0.0
    feedforward: float = 0.0
    steer_rad: float = 0.0
    k_cross_track_effective: float = 0.0
    k_heading_effective: float = 0.0


class LateralPID:
    """Steering from cross-track and heading error, plus curvature feed-forward.

    ``steer = atan(L * curvature) - k_heading(v) * heading_error - PID(cross_track_error)``

    Why the speed schedule: linearised on a straight path, the kinematic bicycle gives
    ``d'' + (v k_h / L) d' + (v**2 k_ct / L) d = 0``: damping ratio ``k_h / (2 sqrt(k_ct L))``
    (independent of speed) and natural frequency ``v sqrt(k_ct / L)``, which grows with speed until
    the steering saturates. Above ``schedule_speed_mps`` the gains are scaled,
    ``k_ct * (v_s / v)**2`` and ``k_h * (v_s / v)``, which keeps the damping ratio and caps the
    natural frequency at ``v_s sqrt(k_ct / L)``. The defaults give a damping ratio of 0.72 and
    1.9 rad/s from 10 m/s up; below 10 m/s the car converges within a fixed distance instead.

    ``ki`` and ``kd`` act on the cross-track error and are not scheduled. The internal ``pid``
    (a ``PID`` on the cross-track error, set-point 0) sees the heading and feed-forward terms as
    its feed-forward, so its anti-windup accounts for the whole steering angle.

    :param k_cross_track: cross-track gain in rad per m (at or below ``schedule_speed_mps``).
    :param k_heading: heading gain in rad per rad (at or below ``schedule_speed_mps``).
    :param ki: integral gain on the cross-track error, in rad per (m s).
    :param kd: derivative gain on the cross-track error, in rad per (m/s).
    :param wheelbase_m: distance between the axles in m.
    :param max_steer_rad: limit of the steering angle in rad.
    :param schedule_speed_mps: speed above which the gains are scaled down, in m/s; ``None``
        for constant gains.
    """

    def __init__(
        self,
        k_cross_track: float = 0.1,
        k_heading: float = 0.75,
        ki: float = 0.0,
        kd: float = 0.0,
        wheelbase_m: float = DEFAULT_WHEELBASE_M,
        max_steer_rad: float = DEFAULT_MAX_STEER_RAD,
        schedule_speed_mps: float | None = 10.0,
    ) -> None:
        if schedule_speed_mps is not None and not schedule_speed_mps > 0.0:
            raise ValueError(f"schedule_speed_mps must be > 0 or None, got {schedule_speed_mps!r}")
        self.k_cross_track = k_cross_track
        self.k_heading = k_heading
        self.wheelbase_m = wheelbase_m
        self.max_steer_rad = max_steer_rad
        self.schedule_speed_mps = schedule_speed_mps
        self.pid = PID(k_cross_track, ki, kd, output_limits=(-max_steer_rad, max_steer_rad))
        self.last_terms = LateralPIDTerms()

    def scheduled_gains(self, speed_mps: float) -> tuple[float, float]:
        """The ``(k_cross_track, k_heading)`` used at ``speed_mps``.

        :param speed_mps: forward speed in m/s.
        """
        if self.schedule_speed_mps is None or speed_mps <= self.schedule_speed_mps:
            return self.k_cross_track, self.k_heading
        scale = self.schedule_speed_mps / speed_mps
        return self.k_cross_track * scale**2, self.k_heading * scale

    def update(
        self,
        cross_track_error_m: float,
        heading_error_rad: float,
        speed_mps: float,
        dt_s: float,
        path_curvature_1pm: float = 0.0,
    ) -> float:
        """Steering angle for one control step.

        :param cross_track_error_m: rear-axle offset from the path, left positive, in m.
        :param heading_error_rad: vehicle yaw minus path tangent yaw, in rad.
        :param speed_mps: forward speed in m/s.
        :param dt_s: time since the previous update in s (> 0).
        :param path_curvature_1pm: path curvature, left positive, in 1/m.
        :return: steering angle in rad, positive left, within ``max_steer_rad``.
        """
        check_dt(dt_s)
        _check_state(cross_track_error_m, heading_error_rad, speed_mps, path_curvature_1pm)
        k_cross_track, k_heading = self.scheduled_gains(speed_mps)
        self.pid.kp = k_cross_track
        self.pid.output_limits = (-self.max_steer_rad, self.max_steer_rad)
        feedforward = curvature_feedforward_rad(self.wheelbase_m, path_curvature_1pm)
        heading = -k_heading * heading_error_rad
        steer_rad = self.pid.update(0.0, cross_track_error_m, dt_s, feedforward=feedforward + heading)
        terms = self.pid.components
        self.last_terms = LateralPIDTerms(
            cross_track=terms.proportional,
            heading=heading,
            integral=terms.integral,
            derivative=terms.derivative,
            feedforward=feedforward,
            steer_rad=steer_rad,
            k_cross_track_effective=k_cross_track,
            k_heading_effective=k_heading,
        )
        return steer_rad

    def reset(self) -> None:
        """Clear the integral, the derivative memory and ``last_terms``."""
        self.pid.reset()
        self.last_terms = LateralPIDTerms()


# -- Stanley ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StanleyTerms:
    """The parts of ``Stanley``'s last steering angle (rad; they sum to ``steer_rad`` unless it
    was clipped).

    :param heading: ``-heading_error_rad``.
    :param cross_track: ``-atan(k * front_axle_cross_track_error_m / (k_soft_mps + v))``.
    :param feedforward: ``atan(wheelbase_m * path_curvature_1pm)``.
    :param front_axle_cross_track_error_m: the front-axle error the law used, in m.
    :param steer_rad: the steering angle returned.
    """

    heading: float = 0.0
    cross_track: float = 0.0
    feedforward: float = 0.0
    front_axle_cross_track_error_m: float = 0.0
    steer_rad: float = 0.0


class Stanley:
    """The Stanley steering law (Hoffmann, Tomlin, Montemerlo, Thrun, ACC 2007), kinematic form.

    ``steer = -heading_error - atan(k * e_front / (k_soft_mps + v)) + atan(L * curvature)``

    ``e_front`` is the cross-track error of the **front axle's centre**, as in the paper; ``update``
    computes it from the rear-axle state with ``paths.shift_reference_point`` (exact on straight and
    circular paths). If you measure it yourself, call ``steer_front_axle``.

    The paper measures the heading error against the path tangent at the front axle's projection;
    here, as for every tracker in this module, it is measured at the rear axle's projection, and the
    curvature feed-forward adds back the difference: with the rear axle on a circle the tangent at
    the front axle's projection has turned by exactly ``atan(L * curvature)`` further. On a straight
    path the two are the same. ``k`` is the rate (1/s) at which the front-axle error decays at
    speeds well above ``k_soft_mps``; ``k_soft_mps`` keeps the law gentle near standstill.

    :param k: cross-track gain in 1/s.
    :param k_soft_mps: softening speed in m/s (> 0).
    :param wheelbase_m: distance between the axles in m.
    :param max_steer_rad: limit of the steering angle in rad.
    """

    def __init__(
        self,
        k: float = 2.0,
        k_soft_mps: float = 1.0,
        wheelbase_m: float = DEFAULT_WHEELBASE_M,
        max_steer_rad: float = DEFAULT_MAX_STEER_RAD,
    ) -> None:
        if not k_soft_mps > 0.0:
            raise ValueError(f"k_soft_mps must be > 0 m/s, got {k_soft_mps!r}")
        self.k = k
        self.k_soft_mps = k_soft_mps
        self.wheelbase_m = wheelbase_m
        self.max_steer_rad = max_steer_rad
        self.last_terms = StanleyTerms()

    def steer_front_axle(
        self,
        front_axle_cross_track_error_m: float,
        heading_error_rad: float,
        speed_mps: float,
        path_curvature_1pm: float = 0.0,
    ) -> float:
        """The Stanley law on a front-axle cross-track error.

        :param front_axle_cross_track_error_m: front-axle offset from the path, left positive, in m.
        :param heading_error_rad: vehicle yaw minus the path tangent at the rear axle's projection.
        :param speed_mps: forward speed in m/s (negative values count as zero).
        :param path_curvature_1pm: path curvature, left positive, in 1/m.
        :return: steering angle in rad, positive left, within ``max_steer_rad``.
        """
        _check_state(front_axle_cross_track_error_m, heading_error_rad, speed_mps, path_curvature_1pm)
        heading = -heading_error_rad
        cross_track = -math.atan(
            self.k * front_axle_cross_track_error_m / (self.k_soft_mps + max(speed_mps, 0.0))
        )
        feedforward = curvature_feedforward_rad(self.wheelbase_m, path_curvature_1pm)
        steer_rad = _clip(heading + cross_track + feedforward, self.max_steer_rad)
        self.last_terms = StanleyTerms(heading, cross_track, feedforward, front_axle_cross_track_error_m, steer_rad)
        return steer_rad

    def update(
        self,
        cross_track_error_m: float,
        heading_error_rad: float,
        speed_mps: float,
        dt_s: float,
        path_curvature_1pm: float = 0.0,
    ) -> float:
        """Steering angle for one control step, from the rear-axle state.

        :param cross_track_error_m: rear-axle offset from the path, left positive, in m.
        :param heading_error_rad: vehicle yaw minus path tangent yaw, in rad.
        :param speed_mps: forward speed in m/s.
        :param dt_s: time since the previous update in s (> 0; the law itself has no memory).
        :param path_curvature_1pm: path curvature, left positive, in 1/m.
        :return: steering angle in rad, positive left, within ``max_steer_rad``.
        """
        check_dt(dt_s)
        _check_state(cross_track_error_m, heading_error_rad, speed_mps, path_curvature_1pm)
        front_error_m, _ = shift_reference_point(
            cross_track_error_m, heading_error_rad, self.wheelbase_m, path_curvature_1pm
        )
        return self.steer_front_axle(front_error_m, heading_error_rad, speed_mps, path_curvature_1pm)

    def reset(self) -> None:
        """Clear ``last_terms`` (the law has no other state)."""
        self.last_terms = StanleyTerms()


# -- pure pursuit -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PurePursuitTerms:
    """The geometry of ``PurePursuit``'s last steering angle.

    :param lookahead_m: distance from the rear axle to the target point, in m.
    :param target_x_m: target point ahead of the rear axle (vehicle frame), in m.
    :param target_y_m: target point left of the rear axle (vehicle frame), in m.
    :param alpha_rad: angle from the vehicle's heading to the target point, in rad.
    :param curvature_1pm: curvature of the arc through the target, ``2 sin(alpha) / lookahead``.
    :param steer_rad: the steering angle returned.
    """

    lookahead_m: float = 0.0
    target_x_m: float = 0.0
    target_y_m: float = 0.0
    alpha_rad: float = 0.0
    curvature_1pm: float = 0.0
    steer_rad: float = 0.0


class PurePursuit:
    """Pure pursuit (Coulter, CMU-RI-TR-92-01): steer onto the arc through a look-ahead point.

    ``steer = atan(2 L sin(alpha) / l_d)``, where the target point lies at distance ``l_d`` from the
    rear axle at angle ``alpha`` from the vehicle's heading, and
    ``l_d = lookahead_base_m + lookahead_gain_s * v``.

    Linearised on a straight path the lateral error obeys ``d'' + (2 v / l_d) d' + (2 v**2 / l_d**2) d
    = 0``: damping ratio 1/sqrt(2) whatever the look-ahead, natural frequency ``sqrt(2) v / l_d``,
    which the speed-proportional look-ahead caps at ``sqrt(2) / lookahead_gain_s``.

    ``update`` finds the target point on the path itself, treating the path as locally a circle of
    the given curvature (a straight line when it is zero); ``update_from_target`` takes a target
    point you found on your own path.

    :param lookahead_base_m: look-ahead distance at standstill, in m (> 0).
    :param lookahead_gain_s: look-ahead distance added per m/s of speed, in s.
    :param wheelbase_m: distance between the axles in m.
    :param max_steer_rad: limit of the steering angle in rad.
    """

    def __init__(
        self,
        lookahead_base_m: float = 2.0,
        lookahead_gain_s: float = 0.8,
        wheelbase_m: float = DEFAULT_WHEELBASE_M,
        max_steer_rad: float = DEFAULT_MAX_STEER_RAD,
    ) -> None:
        if not lookahead_base_m > 0.0:
            raise ValueError(f"lookahead_base_m must be > 0 m, got {lookahead_base_m!r}")
        if not lookahead_gain_s >= 0.0:
            raise ValueError(f"lookahead_gain_s must be >= 0 s, got {lookahead_gain_s!r}")
        self.lookahead_base_m = lookahead_base_m
        self.lookahead_gain_s = lookahead_gain_s
        self.wheelbase_m = wheelbase_m
        self.max_steer_rad = max_steer_rad
        self.last_terms = PurePursuitTerms()

    def lookahead_distance_m(self, speed_mps: float) -> float:
        """Look-ahead distance at ``speed_mps``: ``lookahead_base_m + lookahead_gain_s * |v|``.

        :param speed_mps: forward speed in m/s.
        """
        return self.lookahead_base_m + self.lookahead_gain_s * abs(speed_mps)

    def update_from_target(self, target_x_m: float, target_y_m: float) -> float:
        """Steering angle towards a target point given in the vehicle frame.

        :param target_x_m: target ahead of the rear axle's centre, in m.
        :param target_y_m: target left of the rear axle's centre, in m.
        :return: steering angle in rad, positive left, within ``max_steer_rad``.
        """
        lookahead_m = math.hypot(target_x_m, target_y_m)
        if not (math.isfinite(lookahead_m) and lookahead_m > 0.0):
            raise ValueError(
                f"the target must be a finite point other than the rear axle, got ({target_x_m!r}, {target_y_m!r})"
            )
        alpha_rad = math.atan2(target_y_m, target_x_m)
        curvature_1pm = 2.0 * math.sin(alpha_rad) / lookahead_m
        steer_rad = _clip(math.atan(self.wheelbase_m * curvature_1pm), self.max_steer_rad)
        self.last_terms = PurePursuitTerms(lookahead_m, target_x_m, target_y_m, alpha_rad, curvature_1pm, steer_rad)
        return steer_rad

    def target_on_path(
        self,
        cross_track_error_m: float,
        heading_error_rad: float,
        lookahead_m: float,
        path_curvature_1pm: float = 0.0,
    ) -> tuple[float, float]:
        """The point of the path ahead at distance ``lookahead_m`` from the rear axle, in the vehicle
        frame, for a path that is locally a circle of the given curvature (straight when zero).

        If no point of the path lies at that distance (the car is farther from the path than the
        look-ahead), the nearest point of the path is returned. Assumes the car is closer to the
        path than the circle's radius (it is on the same side of the centre as the path).

        :param cross_track_error_m: rear-axle offset from the path, left positive, in m.
        :param heading_error_rad: vehicle yaw minus path tangent yaw, in rad.
        :param lookahead_m: look-ahead distance in m.
        :param path_curvature_1pm: path curvature, left positive, in 1/m.
        :return: ``(target_x_m, target_y_m)`` in the vehicle frame (x forward, y left).
        """
        # Path frame: origin at the rear axle's projection, x along the path tangent.
        vehicle_y = cross_track_error_m
        if abs(path_curvature_1pm) < STRAIGHT_CURVATURE_1PM:
            along_m = math.sqrt(max(lookahead_m**2 - vehicle_y**2, 0.0))
            path_x, path_y = along_m, 0.0
        else:
            radius_m = abs(1.0 / path_curvature_1pm)
            side = math.copysign(1.0, path_curvature_1pm)
            centre_distance_m = abs(side * radius_m - vehicle_y)
            # Law of cosines in the triangle centre-vehicle-target gives the angle swept at the centre.
            denominator = max(2.0 * radius_m * centre_distance_m, _MIN_DENOMINATOR)
            cos_swept = (radius_m**2 + centre_distance_m**2 - lookahead_m**2) / denominator
            swept_rad = math.acos(max(-1.0, min(1.0, cos_swept)))
            path_x = radius_m * math.sin(swept_rad)
            path_y = side * radius_m * (1.0 - math.cos(swept_rad))
        dx, dy = path_x, path_y - vehicle_y
        cos_h, sin_h = math.cos(heading_error_rad), math.sin(heading_error_rad)
        return cos_h * dx + sin_h * dy, -sin_h * dx + cos_h * dy

    def update(
        self,
        cross_track_error_m: float,
        heading_error_rad: float,
        speed_mps: float,
        dt_s: float,
        path_curvature_1pm: float = 0.0,
    ) -> float:
        """Steering angle for one control step, from the rear-axle state.

        :param cross_track_error_m: rear-axle offset from the path, left positive, in m.
        :param heading_error_rad: vehicle yaw minus path tangent yaw, in rad.
        :param speed_mps: forward speed in m/s.
        :param dt_s: time since the previous update in s (> 0; the law itself has no memory).
        :param path_curvature_1pm: path curvature, left positive, in 1/m.
        :return: steering angle in rad, positive left, within ``max_steer_rad``.
        """
        check_dt(dt_s)
        _check_state(cross_track_error_m, heading_error_rad, speed_mps, path_curvature_1pm)
        target_x_m, target_y_m = self.target_on_path(
            cross_track_error_m, heading_error_rad, self.lookahead_distance_m(speed_mps), path_curvature_1pm
        )
        return self.update_from_target(target_x_m, target_y_m)

    def reset(self) -> None:
        """Clear ``last_terms`` (the law has no other state)."""
        self.last_terms = PurePursuitTerms()
