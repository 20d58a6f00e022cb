"""Tests of drivelab.control.longitudinal on the LongitudinalPlant."""

from __future__ import annotations

import numpy as np
import pytest

from drivelab.control.longitudinal import LongitudinalCommand, SpeedController, command_from_signed
from drivelab.control.metrics import step_response
from drivelab.control.plants import LongitudinalPlant

DT_S = 0.02


def _speed_step(start_mps: float, target_mps: float, duration_s: float = 20.0):
    controller, plant = SpeedController(), LongitudinalPlant(initial_speed_mps=start_mps)
    # Hold the start speed first, so the integral carries the drag there (as in traffic).
    for _ in range(round(20.0 / DT_S)):
        command = controller.update(start_mps, plant.speed_mps, DT_S)
        plant.step(command.throttle, command.brake, DT_S)
    t_s, speeds, commands = [0.0], [plant.speed_mps], []
    for k in range(round(duration_s / DT_S)):
        command = controller.update(target_mps, plant.speed_mps, DT_S)
        commands.append(command)
        speeds.append(plant.step(command.throttle, command.brake, DT_S))
        t_s.append((k + 1) * DT_S)
    return step_response(t_s, speeds, target_mps, initial=start_mps), commands


def test_step_from_standstill_to_10_mps():
    response, commands = _speed_step(0.0, 10.0)
    # Measured: 0.0 % overshoot, rise 2.1 s (full throttle is 4 m/s**2), settling 2.75 s, error 0.001.
    assert response.overshoot_pct < 1.0
    assert response.rise_time_s == pytest.approx(2.1, abs=0.2)
    assert response.settling_time_s < 3.5
    assert abs(response.steady_state_error) < 0.05
    assert commands[0] == LongitudinalCommand(throttle=1.0, brake=0.0)


def test_small_step_overshoots_less_than_two_percent():
    response, _ = _speed_step(10.0, 11.0)
    # Measured: 1.7 % overshoot (the PI zero), settling 0.8 s.
    assert response.overshoot_pct < 2.5
    assert response.settling_time_s < 1.5
    assert abs(response.steady_state_error) < 0.01


def test_slowing_down_uses_the_brake():
    response, commands = _speed_step(20.0, 10.0)
    # Measured: 0.3 % overshoot, settling 1.7 s (full brake is 6 m/s**2 plus drag).
    assert max(c.brake for c in commands) == 1.0
    assert response.overshoot_pct < 1.0
    assert response.settling_time_s < 2.5
    assert abs(response.steady_state_error) < 0.05


def test_throttle_and_brake_are_never_both_pressed():
    controller, plant = SpeedController(), LongitudinalPlant()
    targets = np.repeat(np.random.default_rng(3).uniform(0.0, 30.0, 20), 100)
    for target in targets:
        command = controller.update(float(target), plant.speed_mps, DT_S)
        assert 0.0 <= command.throttle <= 1.0 and 0.0 <= command.brake <= 1.0
        assert command.throttle == 0.0 or command.brake == 0.0
        plant.step(command.throttle, command.brake, DT_S)


def test_signed_command_mapping_and_deadband():
    assert command_from_signed(0.4) == LongitudinalCommand(throttle=0.4, brake=0.0)
    assert command_from_signed(-0.4) == LongitudinalCommand(throttle=0.0, brake=0.4)
    assert command_from_signed(2.0) == LongitudinalCommand(throttle=1.0, brake=0.0)
    assert command_from_signed(-0.01, brake_deadband=0.02) == LongitudinalCommand(0.0, 0.0)
    assert command_from_signed(-0.03, brake_deadband=0.02) == LongitudinalCommand(0.0, 0.03)
    with pytest.raises(ValueError, match="brake_deadband"):
        SpeedController(brake_deadband=1.5)


def test_pid_is_exposed_with_the_default_gains_and_limits():
    controller = SpeedController()
    assert controller.pid.tunings == (1.0, 0.1, 0.0)
    assert controller.pid.output_limits == (-1.0, 1.0)


def test_reset_with_the_current_pedals_is_bumpless():
    controller = SpeedController()
    controller.reset(LongitudinalCommand(throttle=0.3, brake=0.0), speed_mps=9.0)
    assert controller.update(10.0, 9.0, DT_S) == LongitudinalCommand(throttle=pytest.approx(0.3), brake=0.0)


@pytest.mark.parametrize("brake_deadband, upper", [(0.0, 1.0), (0.05, 1.0), (0.05, 0.4)])
def test_run_closes_the_loop_exactly_as_update_step_by_step(brake_deadband, upper):
    """SpeedController.run (the simulator's speed loop) gives the pedals that update() gives, period by period."""
    targets = [12.0, 12.0, 5.0, 5.0, 9.0, 20.0]  # accelerate, brake hard, coast into a lower target, saturate
    looped, stepped = SpeedController(brake_deadband=brake_deadband), SpeedController(brake_deadband=brake_deadband)
    for controller in (looped, stepped):
        controller.pid.output_limits = (-1.0, upper)
    plant_a, plant_b = LongitudinalPlant(initial_speed_mps=8.0), LongitudinalPlant(initial_speed_mps=8.0)
    applied_a, applied_b = [], []
    for target in targets:
        def apply(throttle, brake):
            applied_a.append((throttle, brake))
            plant_a.pending = (throttle, brake)

        last = looped.run(target, plant_a.speed_mps, DT_S, 25, measure_speed=lambda: plant_a.speed_mps,
                          apply_pedals=apply, advance=lambda: plant_a.step(*plant_a.pending, DT_S))
        for _ in range(25):
            command = stepped.update(target, plant_b.speed_mps, DT_S)
            applied_b.append((command.throttle, command.brake))
            plant_b.step(command.throttle, command.brake, DT_S)
        assert last == stepped.last_command
    assert applied_a == applied_b
    assert plant_a.speed_mps == plant_b.speed_mps
    assert any(brake > 0 for _, brake in applied_a) and any(throttle == upper for throttle, _ in applied_a)
