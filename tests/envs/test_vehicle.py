"""The car's physics, driven directly through World + add_vehicle (no env, no road).

Figures a reader can check: Bullet runs at 100 Hz; full throttle is 2 × 500 N·m on 0.33 m rear wheels
(≈ 3,000 N on ≈ 1,500 kg ≈ 2 m/s²); the kinematic yaw rate of a car with wheelbase L = 2.7 m is v·tan(δ)/L.
"""

import math

import numpy as np
import pytest

from drivelab.control import SpeedController
from drivelab.envs.vehicle import REAR_WHEELS, STEER_JOINTS, VehicleSpec
from drivelab.envs.world import World

SPEC = VehicleSpec()


@pytest.fixture
def world():
    w = World()
    yield w
    w.close()


def run(world, seconds):
    for _ in range(round(seconds * world.settings.physics_hz)):
        world.step_physics()


def rear_wheel_surface_speeds_mps(world, car):
    return [world.client.getJointState(car.body_id, joint)[1] * SPEC.wheel_radius_m for joint in REAR_WHEELS]


def test_car_at_rest_stays_put(world):
    car = world.add_vehicle(x_m=3.0, y_m=-2.0, yaw_rad=0.4)
    run(world, 2.0)
    state = car.state()
    assert math.hypot(state.x_m - 3.0, state.y_m + 2.0) < 0.01
    assert abs(state.yaw_rad - 0.4) < 1e-3
    assert abs(state.speed_mps) < 1e-3
    assert max(abs(state.roll_rad), abs(state.pitch_rad)) < 1e-3


def test_full_throttle_accelerates_at_about_2_mps2_without_wheelspin(world):
    car = world.add_vehicle()
    car.drive(1.0, 0.0)
    for t_s in (0.5, 1.0, 1.5, 2.0, 2.5, 3.0):
        run(world, 0.5)
        speed = car.state().speed_mps
        assert 1.5 <= speed / t_s <= 2.6, (t_s, speed)
        for wheel_speed in rear_wheel_surface_speeds_mps(world, car):
            assert wheel_speed == pytest.approx(speed, rel=0.10), (t_s, wheel_speed, speed)
    state = car.state()
    assert abs(state.y_m) < 0.01 and abs(state.yaw_rad) < 1e-3  # straight ahead along +x


def test_steady_steer_yaw_rate_is_close_to_the_kinematic_bicycle(world):
    car = world.add_vehicle(speed_mps=10.0)
    speed_controller = SpeedController()
    steer_rad = 0.1
    car.steer(steer_rad)
    samples = []
    for step in range(500):  # 5 s: the servo (1.2 rad/s) and the yaw settle within the first 2 s
        command = speed_controller.update(10.0, car.forward_speed_mps(car.state().yaw_rad), world.dt_s)
        car.drive(command.throttle, command.brake)
        world.step_physics()
        if step >= 400:
            samples.append(car.state())
    speed = np.mean([s.speed_mps for s in samples])
    yaw_rate = np.mean([s.yaw_rate_radps for s in samples])
    assert speed == pytest.approx(10.0, abs=0.2)
    assert np.mean([s.steer_rad for s in samples]) == pytest.approx(steer_rad, abs=0.005)
    kinematic = speed * math.tan(steer_rad) / SPEC.wheelbase_m  # 0.37 rad/s
    assert yaw_rate > 0  # positive steering turns left
    assert yaw_rate == pytest.approx(kinematic, rel=0.15)


def test_full_brake_from_10_mps_stops_within_15_m(world):
    car = world.add_vehicle(speed_mps=10.0)
    car.drive(0.0, 1.0)
    steps = 0
    while car.state().speed_mps > 0.01:
        world.step_physics()
        steps += 1
        assert steps < 1000, "still moving after 10 s of full brake"
    distance = car.state().x_m
    # Tyre friction 1.0 caps deceleration at g: no stop shorter than v²/(2g) = 5.1 m.
    assert 10.0**2 / (2 * 9.81) < distance < 15.0
    assert abs(car.state().y_m) < 0.05  # it brakes in a straight line


@pytest.mark.parametrize("steer_rad", [0.05, 0.3, 0.5, -0.3])
def test_ackermann_inner_wheel_steers_more_and_axles_meet_on_the_rear_axle(world, steer_rad):
    car = world.add_vehicle()
    left, right = car.ackermann_angles(steer_rad)
    inner, outer = (left, right) if steer_rad > 0 else (right, left)
    assert abs(inner) > abs(outer) > 0
    assert math.copysign(1, inner) == math.copysign(1, outer) == math.copysign(1, steer_rad)
    # Ackermann condition: cot(outer) − cot(inner) = track / wheelbase (for a left turn; mirrored right).
    assert abs(1 / math.tan(outer) - 1 / math.tan(inner)) == pytest.approx(SPEC.track_m / SPEC.wheelbase_m, rel=1e-9)
    # The mean of the two is close to the commanded (bicycle) angle.
    assert 0.5 * (left + right) == pytest.approx(steer_rad, rel=0.02)


def test_steering_servo_reaches_the_ackermann_angles_at_its_rate_limit(world):
    car = world.add_vehicle()
    car.steer(0.3)
    run(world, 0.1)
    # 1.2 rad/s for 0.1 s: at most 0.12 rad of wheel angle (the inner wheel, which has further to go).
    measured = [world.client.getJointState(car.body_id, j)[0] for j in STEER_JOINTS]
    assert max(measured) <= 1.2 * 0.1 + 0.01
    run(world, 0.5)
    measured = [world.client.getJointState(car.body_id, j)[0] for j in STEER_JOINTS]
    np.testing.assert_allclose(measured, car.ackermann_angles(0.3), atol=2e-3)
    assert measured[0] > measured[1]  # left (inner) wheel turned further


def test_two_worlds_with_the_same_commands_end_in_identical_states():
    states = []
    for _ in range(2):
        w = World()
        car = w.add_vehicle(x_m=1.0, y_m=2.0, yaw_rad=0.3, speed_mps=4.0)
        for step in range(300):
            car.steer(0.4 * math.sin(step / 30))
            car.drive(0.6, 0.0) if step < 200 else car.drive(0.0, 0.5)
            w.step_physics()
        states.append(car.state())
        w.close()
    assert states[0] == states[1]  # every field, bit for bit
    assert states[0].x_m != 1.0  # and it did move
