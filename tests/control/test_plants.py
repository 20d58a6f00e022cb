"""Tests of drivelab.control.plants: analytic solutions a reader can check by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from drivelab.control.plants import GRAVITY_MPS2, FirstOrderLag, KinematicBicycle, LongitudinalPlant


@pytest.mark.parametrize("dt_s", [0.001, 0.1, 0.5])
def test_first_order_lag_is_exact_for_any_step(dt_s):
    plant = FirstOrderLag(gain=2.0, time_constant_s=0.5)
    for _ in range(round(1.0 / dt_s)):
        plant.step(1.0, dt_s)
    # 2 * (1 - exp(-t / tau)) at t = 2 tau, whatever the step.
    assert plant.output == pytest.approx(2.0 * (1.0 - math.exp(-2.0)), rel=1e-9)
    assert plant.reset() == 0.0


def test_longitudinal_plant_full_throttle_for_one_second():
    plant = LongitudinalPlant()
    for _ in range(100):
        plant.step(1.0, 0.0, 0.01)
    # (6000 N - drag - 0.015 * 1500 kg * 9.81) / 1500 kg ~= 3.85 m/s**2; drag costs < 0.01 m/s here.
    rolling_n = 0.015 * 1500.0 * GRAVITY_MPS2
    assert plant.speed_mps == pytest.approx((6000.0 - rolling_n) / 1500.0, abs=0.01)


def test_longitudinal_plant_holds_speed_with_the_matching_throttle():
    plant = LongitudinalPlant(initial_speed_mps=10.0)
    throttle = plant.resistance_force_n(10.0) / plant.max_drive_force_n
    assert throttle == pytest.approx((0.4 * 100.0 + 0.015 * 1500.0 * GRAVITY_MPS2) / 6000.0)  # 0.043
    for _ in range(500):
        plant.step(throttle, 0.0, 0.02)
    assert plant.speed_mps == pytest.approx(10.0, abs=1e-9)


def test_brake_stops_the_car_but_never_reverses_it():
    plant = LongitudinalPlant(initial_speed_mps=6.0)
    speeds = [plant.step(0.0, 1.0, 0.01) for _ in range(200)]
    # Full brake is 6 m/s**2 plus resistance: stopped within one second, then stays at zero.
    assert speeds[99] == 0.0
    assert min(speeds) == 0.0 and speeds[-1] == 0.0
    with pytest.raises(ValueError, match="throttle must be in"):
        plant.step(1.5, 0.0, 0.01)


def test_bicycle_drives_straight_ahead():
    car = KinematicBicycle(wheelbase_m=2.7, speed=10.0)
    for _ in range(100):
        car.step(0.0, 0.01)
    assert car.state[:3] == pytest.approx([10.0, 0.0, 0.0])


def test_bicycle_with_constant_steering_drives_a_closed_circle():
    steer_rad = 0.2
    car = KinematicBicycle(wheelbase_m=2.7, speed=5.0)
    radius_m = 2.7 / math.tan(steer_rad)  # 13.3 m
    steps = 1000
    dt_s = 2.0 * math.pi * radius_m / 5.0 / steps
    ys = [car.step(steer_rad, dt_s)[1] for _ in range(steps)]
    # Exact arcs: back at the start after one lap, having reached y = 2 R at the far side.
    assert car.x_m == pytest.approx(0.0, abs=1e-9) and car.y_m == pytest.approx(0.0, abs=1e-9)
    assert car.yaw_rad == pytest.approx(2.0 * math.pi)
    assert max(ys) == pytest.approx(2.0 * radius_m, rel=1e-5)


def test_bicycle_steering_lag_and_rate_limit():
    lagged = KinematicBicycle(steer_time_constant_s=0.2)
    for _ in range(20):
        lagged.step(0.3, 0.01)
    assert lagged.steer_rad == pytest.approx(0.3 * (1.0 - math.exp(-1.0)))
    rate_limited = KinematicBicycle(max_steer_rate_radps=0.5)
    rate_limited.step(0.3, 0.1)
    assert rate_limited.steer_rad == pytest.approx(0.05)
    clipped = KinematicBicycle(max_steer_rad=0.4)
    clipped.step(1.0, 0.1)
    assert clipped.steer_rad == 0.4


def test_bicycle_is_deterministic_and_resets():
    car = KinematicBicycle(x=1.0, y=2.0, yaw=0.3, speed=8.0, steer_time_constant_s=0.1)
    commands = np.sin(np.arange(300) * 0.05) * 0.3
    first = [car.step(float(c), 0.02, accel_mps2=0.5).copy() for c in commands]
    car.reset()
    assert car.state == pytest.approx([1.0, 2.0, 0.3, 8.0, 0.0])
    second = [car.step(float(c), 0.02, accel_mps2=0.5).copy() for c in commands]
    assert np.array_equal(np.array(first), np.array(second))


def test_bicycle_speed_stops_at_zero():
    car = KinematicBicycle(speed=1.0)
    for _ in range(100):
        car.step(0.0, 0.1, accel_mps2=-2.0)
    assert car.speed_mps == 0.0
    # Under constant deceleration it stopped after v^2 / (2 a) = 0.25 m.
    assert car.x_m == pytest.approx(0.25)
