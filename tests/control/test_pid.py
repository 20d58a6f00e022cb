"""Tests of drivelab.control.pid: one test per feature, each failing if the feature is removed."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import simple_pid

from drivelab.control.pid import PID, PIDTerms
from drivelab.control.plants import FirstOrderLag
from drivelab.control.metrics import step_response

DT_S = 0.01


def _saturation_then_drop(pid: PID, saturate_s: float = 20.0, recover_s: float = 60.0) -> dict[str, float]:
    """Ask a unit-gain lag for 2.0 while the actuator can give at most 1.0, then for 0.5."""
    plant = FirstOrderLag(gain=1.0, time_constant_s=1.0)
    saturate_steps = round(saturate_s / DT_S)
    integrals, outputs, ys = [], [], []
    for k in range(saturate_steps + round(recover_s / DT_S)):
        setpoint = 2.0 if k < saturate_steps else 0.5
        u = float(np.clip(pid.update(setpoint, plant.output, DT_S), -1.0, 1.0))
        integrals.append(pid.components.integral)
        outputs.append(u)
        ys.append(plant.step(u, DT_S))
    after = np.asarray(ys[saturate_steps:])
    out_of_band = np.flatnonzero(np.abs(after - 0.5) > 0.05)
    return {
        "max_integral_while_saturated": max(integrals[:saturate_steps]),
        "saturated_after_drop_s": float(np.argmax(np.asarray(outputs[saturate_steps:]) < 1.0) * DT_S),
        "recovery_s": (out_of_band[-1] + 1) * DT_S,
    }


def test_anti_windup_recovers_in_seconds_where_a_naive_pid_needs_forty():
    ours = _saturation_then_drop(PID(1.0, 2.0, output_limits=(-1.0, 1.0)))
    # Naive: the same gains, output clipped outside the PID, so the integral keeps growing.
    naive = _saturation_then_drop(PID(1.0, 2.0))
    # 20 s at an error of at least 1 with ki = 2 winds a naive integral up to ~42.
    assert naive["max_integral_while_saturated"] > 40.0
    assert naive["saturated_after_drop_s"] > 35.0
    assert naive["recovery_s"] > 40.0
    # Ours: the integral never grew while saturated, so the output leaves saturation at once.
    assert ours["max_integral_while_saturated"] == 0.0
    assert ours["saturated_after_drop_s"] == 0.0
    assert ours["recovery_s"] < 3.0


def test_integral_grows_only_up_to_the_limit_then_stops():
    pid = PID(0.0, 1.0, output_limits=(None, 1.0))
    integrals = [pid.update(1.0, 0.0, 0.1) and pid.components.integral for _ in range(30)]
    # 0.1 per step until the output reaches 1.0, then frozen (not 3.0).
    assert integrals[:9] == pytest.approx([0.1 * (k + 1) for k in range(9)])
    assert max(integrals) == pytest.approx(1.0)
    assert integrals[-1] == pytest.approx(1.0)
    # Unwinding is immediate: one step of negative error lowers the output below the limit.
    assert pid.update(0.0, 1.0, 0.1) == pytest.approx(0.9)


def test_integral_limits_bound_the_integral_term():
    pid = PID(0.0, 1.0, integral_limits=(-0.3, 0.3))
    for _ in range(100):
        pid.update(1.0, 0.0, DT_S)
    assert pid.components.integral == 0.3


def test_output_limits_hold_on_both_sides():
    pid = PID(10.0, output_limits=(-2.0, 3.0))
    assert pid.update(1.0, 0.0, DT_S) == 3.0
    assert pid.update(-1.0, 0.0, DT_S) == -2.0
    assert pid.update(0.1, 0.0, DT_S) == pytest.approx(1.0)
    one_sided = PID(10.0, output_limits=(None, 3.0))
    assert one_sided.update(-1.0, 0.0, DT_S) == -10.0
    with pytest.raises(ValueError, match="output_limits"):
        PID(1.0, output_limits=(1.0, -1.0))


def test_derivative_on_measurement_has_no_kick_on_a_setpoint_step():
    kp, kd = 2.0, 0.5
    on_measurement = PID(kp, kd=kd)
    on_error = PID(kp, kd=kd, derivative_on_measurement=False)
    for pid in (on_measurement, on_error):
        pid.update(0.0, 0.0, DT_S)
    # The set-point steps by 1 while the measurement stays at 0.
    assert on_measurement.update(1.0, 0.0, DT_S) == pytest.approx(kp * 1.0)
    assert on_error.update(1.0, 0.0, DT_S) == pytest.approx(kp * 1.0 + kd * 1.0 / DT_S)  # 52: the kick
    # Both react the same to a change of the measurement at a constant set-point.
    assert on_measurement.update(1.0, 0.1, DT_S) == pytest.approx(on_error.update(1.0, 0.1, DT_S))


def test_derivative_filter_attenuates_measurement_noise_and_keeps_the_slope():
    rng = np.random.default_rng(0)
    noise = 0.01 * rng.standard_normal(2000)
    kp, kd, tau_s = 1.0, 0.2, 0.1
    raw, filtered = PID(kp, kd=kd), PID(kp, kd=kd, derivative_filter_tau_s=tau_s)
    raw_terms, filtered_terms = [], []
    for n in noise:
        raw.update(0.0, n, DT_S)
        filtered.update(0.0, n, DT_S)
        raw_terms.append(raw.components.derivative)
        filtered_terms.append(filtered.components.derivative)
    ratio = np.std(filtered_terms) / np.std(raw_terms)
    # Differenced white noise through (1 - a) / (1 - a z^-1), a = tau / (tau + dt): the standard
    # deviation shrinks by (1 - a) / sqrt(1 + a) = 0.066 for tau = 10 dt.
    smoothing = tau_s / (tau_s + DT_S)
    assert ratio == pytest.approx((1.0 - smoothing) / math.sqrt(1.0 + smoothing), rel=0.1)
    assert ratio < 0.1
    # A filter with unit DC gain: on a ramp (slope 1) both settle to -kd * slope.
    ramp = PID(0.0, kd=kd, derivative_filter_tau_s=tau_s)
    for k in range(200):
        ramp.update(0.0, k * DT_S, DT_S)
    assert ramp.components.derivative == pytest.approx(-kd, rel=1e-6)


def test_feedforward_is_added_and_counted_in_saturation():
    pid = PID(2.0)
    assert pid.update(1.0, 0.5, DT_S, feedforward=0.25) == pytest.approx(2.0 * 0.5 + 0.25)
    assert pid.components == PIDTerms(proportional=1.0, integral=0.0, derivative=0.0, feedforward=0.25)
    # With a feed-forward of 0.8 and a limit of 1.0, the integral may add only 0.2 - P.
    limited = PID(0.1, 1.0, output_limits=(-1.0, 1.0))
    for _ in range(500):
        u = limited.update(1.0, 0.0, DT_S, feedforward=0.8)
    assert u == 1.0
    assert limited.components.integral == pytest.approx(1.0 - 0.8 - 0.1)


def test_feedforward_removes_the_steady_state_error_of_a_p_controller():
    plant_gain = 2.0
    setpoint = 1.0
    without, with_ff = FirstOrderLag(plant_gain, 0.5), FirstOrderLag(plant_gain, 0.5)
    pid_a, pid_b = PID(1.0), PID(1.0)
    for _ in range(1000):
        without.step(pid_a.update(setpoint, without.output, DT_S), DT_S)
        with_ff.step(pid_b.update(setpoint, with_ff.output, DT_S, feedforward=setpoint / plant_gain), DT_S)
    # P alone leaves e = r / (1 + kp * K) = 1/3; the feed-forward u = r / K leaves none.
    assert setpoint - without.output == pytest.approx(1.0 / 3.0, abs=1e-6)
    assert setpoint - with_ff.output == pytest.approx(0.0, abs=1e-6)


def test_bumpless_reset_continues_from_the_given_output():
    pid = PID(2.0, 0.5, kd=0.1)
    pid.reset(output=0.7, measurement=0.4)
    first = pid.update(1.0, 0.4, DT_S)
    second = pid.update(1.0, 0.41, DT_S)
    assert first == pytest.approx(0.7)  # a cold start would give 2.0 * 0.6 = 1.2
    # Then it moves as a PID does: P by -kp * 0.01, D by -kd * 0.01 / dt, I by ki * e * dt.
    assert second - first == pytest.approx(-2.0 * 0.01 - 0.1 * 0.01 / DT_S + 0.5 * 0.59 * DT_S)
    cold = PID(2.0, 0.5, kd=0.1)
    assert cold.update(1.0, 0.4, DT_S) == pytest.approx(1.2 + 0.5 * 0.6 * DT_S)


def test_manual_mode_holds_and_switching_back_is_bumpless():
    pid = PID(3.0, 1.0)
    pid.update(1.0, 0.0, DT_S)
    pid.set_auto_mode(False)
    held = pid.last_output
    assert pid.update(5.0, 0.0, DT_S) == held
    pid.set_auto_mode(True, last_output=0.3)
    outputs = [pid.update(1.0, 0.9 + 0.001 * k, DT_S) for k in range(5)]
    assert outputs[0] == pytest.approx(0.3)
    assert max(abs(b - a) for a, b in zip(outputs, outputs[1:])) < 0.01


def test_explicit_dt_makes_runs_independent_of_wall_time():
    rng = np.random.default_rng(1)
    inputs = rng.uniform(-1.0, 1.0, size=(50, 2))

    def run(sleep_s: float) -> list[float]:
        pid = PID(1.0, 0.5, 0.05, derivative_filter_tau_s=0.05, output_limits=(-1.0, 1.0))
        outputs = []
        for k, (setpoint, measurement) in enumerate(inputs):
            if k == 25:
                time.sleep(sleep_s)
            outputs.append(pid.update(setpoint, measurement, DT_S))
        return outputs

    assert run(0.0) == run(0.05)


def test_integral_and_derivative_scale_with_dt():
    fine, coarse = PID(0.0, ki=1.0), PID(0.0, ki=1.0)
    for _ in range(100):
        fine.update(1.0, 0.0, 0.01)
    for _ in range(10):
        coarse.update(1.0, 0.0, 0.1)
    assert fine.components.integral == pytest.approx(1.0) == coarse.components.integral
    derivative = PID(0.0, kd=1.0)
    derivative.update(0.0, 0.0, 0.5)
    derivative.update(0.0, 1.0, 0.5)
    assert derivative.components.derivative == pytest.approx(-2.0)


@pytest.mark.parametrize("dt_s", [0.0, -0.01, math.nan, math.inf])
def test_bad_dt_is_a_one_line_value_error(dt_s):
    with pytest.raises(ValueError, match=r"dt_s must be a finite time step > 0 seconds") as caught:
        PID(1.0).update(1.0, 0.0, dt_s)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("name", ["setpoint", "measurement", "feedforward"])
def test_non_finite_inputs_are_rejected(name):
    values = {"setpoint": 1.0, "measurement": 0.0, "feedforward": 0.0, name: math.nan}
    with pytest.raises(ValueError, match=f"{name} must be a finite number"):
        PID(1.0).update(values["setpoint"], values["measurement"], DT_S, values["feedforward"])


def test_components_are_frozen_and_sum_to_the_unsaturated_output():
    pid = PID(1.0, 0.5, 0.1)
    pid.update(1.0, 0.0, DT_S)
    u = pid.update(1.0, 0.2, DT_S, feedforward=0.1)
    terms = pid.components
    assert terms.proportional + terms.integral + terms.derivative + terms.feedforward == pytest.approx(u)
    assert pid.last_output == u
    with pytest.raises(AttributeError):  # immutable
        terms.integral = 0.0  # type: ignore[misc]


def test_error_map_wraps_the_error():
    wrap = lambda e: math.remainder(e, 2.0 * math.pi)  # noqa: E731
    pid = PID(1.0, error_map=wrap)
    assert pid.update(math.pi - 0.1, -math.pi + 0.1, DT_S) == pytest.approx(-0.2)


@pytest.mark.parametrize(
    "gains, options",
    [
        ((1.5, 0.0, 0.0), {}),
        ((1.5, 0.8, 0.0), {}),
        ((1.5, 0.8, 0.05), {"derivative_on_measurement": True}),
        ((1.5, 0.8, 0.05), {"derivative_on_measurement": False}),
        ((1.5, 0.8, 0.05), {"proportional_on_measurement": True}),
    ],
)
def test_matches_simple_pid_on_identical_sequences(gains, options):
    kp, ki, kd = gains
    ours = PID(kp, ki, kd, **options)
    reference = simple_pid.PID(
        kp,
        ki,
        kd,
        sample_time=None,
        differential_on_measurement=options.get("derivative_on_measurement", True),
        proportional_on_measurement=options.get("proportional_on_measurement", False),
    )
    rng = np.random.default_rng(2)
    for setpoint, measurement, dt_s in zip(
        np.repeat(rng.uniform(-2.0, 2.0, 20), 10), rng.normal(0.0, 1.0, 200), rng.uniform(0.005, 0.05, 200)
    ):
        reference.setpoint = float(setpoint)
        expected = reference(float(measurement), dt=float(dt_s))
        assert ours.update(float(setpoint), float(measurement), float(dt_s)) == pytest.approx(expected, abs=1e-9)
        assert (ours.components.proportional, ours.components.integral, ours.components.derivative) == pytest.approx(
            reference.components, abs=1e-9
        )


def test_pi_on_a_first_order_lag_step_response():
    # kp = 2, ki = 4 on K = 1, tau = 0.5: the PI zero at -ki/kp = -2 cancels the plant's pole, the
    # loop is 4 / s and the closed loop 4 / (s + 4): y = 1 - exp(-4 t), rise time ln(9) / 4.
    pid, plant = PID(2.0, 4.0), FirstOrderLag(1.0, 0.5)
    t_s = np.arange(0, 501) * DT_S
    y = [0.0] + [plant.step(pid.update(1.0, plant.output, DT_S), DT_S) for _ in t_s[1:]]
    response = step_response(t_s, y, 1.0)
    assert response.overshoot_pct < 0.5
    assert response.rise_time_s == pytest.approx(math.log(9.0) / 4.0, rel=0.05)
    assert abs(response.steady_state_error) < 1e-6

