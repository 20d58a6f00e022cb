"""Tests of drivelab.control.lateral on the kinematic bicycle."""

from __future__ import annotations

import math

import numpy as np
import pytest

from drivelab.control.lateral import LateralController, LateralPID, PurePursuit, Stanley
from drivelab.control.metrics import step_response, tracking_rms
from drivelab.control.paths import CirclePath, StraightPath, shift_reference_point
from drivelab.control.plants import KinematicBicycle

DT_S = 0.02
WHEELBASE_M = 2.7
TRACKERS = {"pid": LateralPID, "stanley": Stanley, "pure_pursuit": PurePursuit}


def _drive(tracker, path, speed_mps=10.0, offset_m=1.0, duration_s=20.0, **car_options):
    """Drive the bicycle (rear axle `offset_m` left of the path, parallel to it) under `tracker`."""
    car = KinematicBicycle(WHEELBASE_M, speed=speed_mps, **car_options)
    if isinstance(path, CirclePath):
        car.reset(x=path.center_x_m, y=path.center_y_m - path.radius_m + offset_m, yaw=0.0)
    else:
        car.reset(y=offset_m)
    t_s, errors, steers = [], [], []
    for k in range(round(duration_s / DT_S)):
        e = path.errors(car.x_m, car.y_m, car.yaw_rad)
        steer = tracker.update(e.cross_track_error_m, e.heading_error_rad, car.speed_mps, DT_S, e.path_curvature_1pm)
        t_s.append(k * DT_S)
        errors.append(e.cross_track_error_m)
        steers.append(steer)
        car.step(steer, DT_S)
    return np.array(t_s), np.array(errors), np.array(steers), car


@pytest.mark.parametrize("name", TRACKERS)
def test_sign_conventions(name):
    tracker = TRACKERS[name]()
    assert tracker.update(1.0, 0.0, 10.0, DT_S) < 0.0  # left of the path: steer right
    tracker.reset()
    assert tracker.update(-1.0, 0.0, 10.0, DT_S) > 0.0
    tracker.reset()
    assert tracker.update(0.0, 0.1, 10.0, DT_S) < 0.0  # pointing left of the path: steer right
    tracker.reset()
    # On the path, aligned, on a left curve of radius 50 m: steer left by atan(L / R) = 0.054 rad
    # (Stanley a little more: its front axle is then 0.073 m outside the curve).
    feedforward_rad = math.atan(WHEELBASE_M / 50.0)
    steer = tracker.update(0.0, 0.0, 10.0, DT_S, 1.0 / 50.0)
    if name == "stanley":
        front_error_m = 50.0 - math.hypot(50.0, WHEELBASE_M)
        assert steer == pytest.approx(feedforward_rad - math.atan(2.0 * front_error_m / (1.0 + 10.0)))
    else:
        assert steer == pytest.approx(feedforward_rad)


@pytest.mark.parametrize("name", TRACKERS)
def test_trackers_are_lateral_controllers_and_expose_their_terms(name):
    tracker = TRACKERS[name]()
    assert isinstance(tracker, LateralController)
    steer = tracker.update(0.5, 0.05, 10.0, DT_S, 0.01)
    assert tracker.last_terms.steer_rad == steer
    with pytest.raises(ValueError, match="dt_s"):
        tracker.update(0.5, 0.05, 10.0, 0.0)


@pytest.mark.parametrize("name", TRACKERS)
def test_steering_is_limited(name):
    tracker = TRACKERS[name](max_steer_rad=0.3)
    # 3 m right of the path at standstill: every tracker asks for more than 0.3 rad to the left.
    assert tracker.update(-3.0, 0.0, 0.0, DT_S) == 0.3
    tracker.reset()
    assert tracker.update(3.0, 0.0, 0.0, DT_S) == -0.3


# Straight line from 1 m left at 10 m/s, 20 s. Measured: rms 0.167 / 0.159 / 0.194 m,
# settling (2 %) 3.03 / 2.52 / 4.17 s, overshoot 3.8 / 0.0 / 4.3 %.
STRAIGHT_BOUNDS = {
    "pid": {"rms_m": 0.18, "settling_s": 3.5, "overshoot_pct": 5.0},
    "stanley": {"rms_m": 0.17, "settling_s": 3.0, "overshoot_pct": 0.5},
    "pure_pursuit": {"rms_m": 0.21, "settling_s": 4.7, "overshoot_pct": 5.0},
}


@pytest.mark.parametrize("name", TRACKERS)
def test_straight_line_from_one_metre_offset(name):
    t_s, errors, steers, _ = _drive(TRACKERS[name](), StraightPath())
    response = step_response(t_s, errors, setpoint=0.0)
    bounds = STRAIGHT_BOUNDS[name]
    assert tracking_rms(errors) < bounds["rms_m"]
    assert response.settling_time_s < bounds["settling_s"]
    assert response.overshoot_pct < bounds["overshoot_pct"]
    assert abs(errors[-1]) < 1e-3
    assert np.abs(steers).max() < 0.2  # never near the 0.5 rad limit


def test_linearised_damping_ratios_show_in_the_overshoot():
    # LateralPID: zeta = k_h / (2 sqrt(k_ct L)) = 0.72 -> exp(-zeta pi / sqrt(1 - zeta^2)) = 3.8 %.
    zeta = 0.75 / (2.0 * math.sqrt(0.1 * WHEELBASE_M))
    t_s, errors, _, _ = _drive(LateralPID(), StraightPath(), offset_m=0.1)
    expected_pct = 100.0 * math.exp(-zeta * math.pi / math.sqrt(1.0 - zeta**2))
    assert step_response(t_s, errors, 0.0).overshoot_pct == pytest.approx(expected_pct, rel=0.05)
    # Pure pursuit: zeta = 1 / sqrt(2) whatever the look-ahead -> exp(-pi) = 4.3 %.
    t_s, errors, _, _ = _drive(PurePursuit(), StraightPath(), offset_m=0.1)
    assert step_response(t_s, errors, 0.0).overshoot_pct == pytest.approx(100.0 * math.exp(-math.pi), rel=0.05)


@pytest.mark.parametrize("speed_mps", [3.0, 10.0, 20.0, 30.0])
def test_lateral_pid_is_stable_and_equally_damped_from_3_to_30_mps(speed_mps):
    t_s, errors, steers, _ = _drive(LateralPID(), StraightPath(), speed_mps=speed_mps, duration_s=40.0)
    response = step_response(t_s, errors, 0.0)
    # The schedule keeps zeta fixed (overshoot 3.8 % at every speed) and caps the natural
    # frequency from 10 m/s up (settling 3.0 s there); at 3 m/s it settles in 10.2 s.
    assert response.overshoot_pct == pytest.approx(3.8, abs=0.3)
    assert response.settling_time_s < (11.0 if speed_mps < 10.0 else 3.5)
    assert np.abs(steers).max() <= 0.1 + 1e-12


def test_speed_schedule_scales_gains_above_the_schedule_speed():
    tracker = LateralPID(k_cross_track=0.1, k_heading=0.75, schedule_speed_mps=10.0)
    assert tracker.scheduled_gains(5.0) == (0.1, 0.75)
    assert tracker.scheduled_gains(20.0) == pytest.approx((0.025, 0.375))


# Circle of radius 50 m, counter-clockwise, at 10 m/s, starting on the path: LateralPID and pure
# pursuit track it exactly (rms < 1e-6 m). Stanley steers the front axle onto the path, so the
# rear axle runs inside by R - sqrt(R^2 - L^2) = 0.073 m (measured 0.0725).
@pytest.mark.parametrize("name", ["pid", "pure_pursuit"])
def test_circle_is_tracked_exactly_with_curvature_feedforward(name):
    _, errors, steers, _ = _drive(TRACKERS[name](), CirclePath(50.0), offset_m=0.0)
    assert tracking_rms(errors) < 1e-6
    assert steers[-1] == pytest.approx(math.atan(WHEELBASE_M / 50.0), abs=1e-6)


def test_stanley_keeps_the_front_axle_on_the_circle():
    path = CirclePath(50.0)
    _, errors, _, car = _drive(Stanley(), path, offset_m=0.0)
    assert errors[-1] == pytest.approx(50.0 - math.sqrt(50.0**2 - WHEELBASE_M**2), rel=0.02)
    front = path.errors(
        car.x_m + WHEELBASE_M * math.cos(car.yaw_rad), car.y_m + WHEELBASE_M * math.sin(car.yaw_rad), car.yaw_rad
    )
    assert abs(front.cross_track_error_m) < 1e-3
    assert tracking_rms(errors) < 0.075


# From 1 m inside the circle at 10 m/s, 20 s. Measured rms: 0.166 / 0.180 / 0.193 m.
@pytest.mark.parametrize("name, rms_bound_m", [("pid", 0.18), ("stanley", 0.19), ("pure_pursuit", 0.21)])
def test_circle_from_one_metre_offset(name, rms_bound_m):
    _, errors, _, _ = _drive(TRACKERS[name](), CirclePath(50.0), offset_m=1.0)
    assert tracking_rms(errors) < rms_bound_m
    assert abs(errors[-1]) < 0.08


@pytest.mark.parametrize("name", TRACKERS)
def test_steering_lag_and_rate_limit_keep_the_trackers_stable(name):
    _, errors, _, _ = _drive(
        TRACKERS[name](), StraightPath(), steer_time_constant_s=0.2, max_steer_rate_radps=0.5
    )
    # Measured: rms 0.18 / 0.17 / 0.20 m, final error < 1e-3 m.
    assert tracking_rms(errors) < 0.22
    assert abs(errors[-1]) < 5e-3


def test_pure_pursuit_geometry():
    tracker = PurePursuit(lookahead_base_m=2.0, lookahead_gain_s=0.8)
    assert tracker.lookahead_distance_m(10.0) == pytest.approx(10.0)
    assert tracker.update_from_target(10.0, 0.0) == 0.0
    # A target on the circle of radius 20 m through the rear axle: steer exactly atan(L / 20).
    theta = 0.4
    target = (20.0 * math.sin(theta), 20.0 * (1.0 - math.cos(theta)))
    assert tracker.update_from_target(*target) == pytest.approx(math.atan(WHEELBASE_M / 20.0))
    assert tracker.last_terms.curvature_1pm == pytest.approx(1.0 / 20.0)
    assert tracker.last_terms.alpha_rad == pytest.approx(theta / 2.0)


@pytest.mark.parametrize("curvature_1pm", [0.0, 0.02, -0.05])
def test_pure_pursuit_target_lies_on_the_path_at_the_lookahead(curvature_1pm):
    tracker = PurePursuit()
    d_m, heading_rad, lookahead_m = 0.7, 0.1, 8.0
    x_v, y_v = tracker.target_on_path(d_m, heading_rad, lookahead_m, curvature_1pm)
    assert math.hypot(x_v, y_v) == pytest.approx(lookahead_m)
    # Back to the path frame (origin at the rear axle's projection): the lateral offset is zero.
    along = math.cos(heading_rad) * x_v - math.sin(heading_rad) * y_v
    across = d_m + math.sin(heading_rad) * x_v + math.cos(heading_rad) * y_v
    if curvature_1pm == 0.0:
        assert across == pytest.approx(0.0, abs=1e-12)
    else:
        radius_m = 1.0 / curvature_1pm
        assert math.hypot(along, across - radius_m) == pytest.approx(abs(radius_m))
    assert along > 0.0


def test_stanley_uses_the_front_axle_error():
    tracker = Stanley(k=2.0, k_soft_mps=1.0)
    # Rear axle on a straight path, pointing 0.1 rad left: the front axle is L sin(0.1) left.
    steer = tracker.update(0.0, 0.1, 9.0, DT_S)
    front_m = WHEELBASE_M * math.sin(0.1)
    assert tracker.last_terms.front_axle_cross_track_error_m == pytest.approx(front_m)
    assert steer == pytest.approx(-0.1 - math.atan(2.0 * front_m / 10.0))
    assert tracker.steer_front_axle(front_m, 0.1, 9.0) == steer
    assert shift_reference_point(0.0, 0.1, WHEELBASE_M)[0] == pytest.approx(front_m)
