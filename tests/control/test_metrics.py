"""Tests of drivelab.control.metrics on analytic signals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from drivelab.control.metrics import step_response, tracking_rms

TAU_S = 0.5
T_S = np.linspace(0.0, 10.0, 10001)


def test_first_order_response():
    y = 3.0 * (1.0 - np.exp(-T_S / TAU_S))
    response = step_response(T_S, y, setpoint=3.0)
    assert response.rise_time_s == pytest.approx(TAU_S * math.log(9.0), rel=1e-4)  # 2.197 tau
    assert response.settling_time_s == pytest.approx(TAU_S * math.log(50.0), rel=1e-4)  # 2 % band
    assert response.overshoot_pct == 0.0
    assert response.steady_state_error == pytest.approx(3.0 * math.exp(-20.0))
    assert response.peak == pytest.approx(3.0, abs=1e-6)


@pytest.mark.parametrize("zeta", [0.2, 0.5, 0.7])
def test_second_order_underdamped_overshoot(zeta):
    omega = 2.0
    omega_d = omega * math.sqrt(1.0 - zeta**2)
    phi = math.acos(zeta)
    y = 1.0 - np.exp(-zeta * omega * T_S) / math.sqrt(1.0 - zeta**2) * np.sin(omega_d * T_S + phi)
    response = step_response(T_S, y, setpoint=1.0)
    expected = math.exp(-zeta * math.pi / math.sqrt(1.0 - zeta**2))
    assert response.overshoot_pct == pytest.approx(100.0 * expected, rel=1e-4)
    assert response.peak == pytest.approx(1.0 + expected, rel=1e-6)
    # The envelope bound 4 / (zeta omega) is the usual 2 % settling estimate; the real one is below it.
    assert response.settling_time_s < 4.0 / (zeta * omega) + 1.0


def test_step_down_is_normalised():
    y = 10.0 - 4.0 * (1.0 - np.exp(-T_S / TAU_S))
    response = step_response(T_S, y, setpoint=6.0)
    assert response.rise_time_s == pytest.approx(TAU_S * math.log(9.0), rel=1e-4)
    assert response.overshoot_pct == 0.0
    assert response.peak == pytest.approx(6.0, abs=1e-6)


def test_never_reaching_90_percent_or_never_settling_is_inf():
    stuck = 0.5 * (1.0 - np.exp(-T_S))
    response = step_response(T_S, stuck, setpoint=1.0)
    assert response.rise_time_s == math.inf
    assert response.settling_time_s == math.inf
    assert response.steady_state_error == pytest.approx(0.5, abs=1e-4)
    oscillating = 1.0 - np.cos(T_S * 3.0)
    assert step_response(T_S, oscillating, setpoint=1.0).settling_time_s == math.inf


def test_initial_value_and_bad_input():
    y = np.full_like(T_S, 1.0)
    assert step_response(T_S, y, setpoint=1.0, initial=0.0).settling_time_s == 0.0
    with pytest.raises(ValueError, match="setpoint and initial must differ"):
        step_response(T_S, y, setpoint=1.0)
    with pytest.raises(ValueError, match="same length"):
        step_response(T_S[:5], y, setpoint=2.0)
    with pytest.raises(ValueError, match="strictly increasing"):
        step_response([0.0, 0.0, 1.0], [0.0, 0.5, 1.0], setpoint=1.0)


def test_tracking_rms():
    assert tracking_rms([3.0, -4.0]) == pytest.approx(math.sqrt(12.5))
    assert tracking_rms(np.full(7, -0.2)) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="non-empty"):
        tracking_rms([])
