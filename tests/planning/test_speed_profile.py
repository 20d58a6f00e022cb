"""Speed profiles: cornering limit, acceleration and braking limits, loops."""

import numpy as np
import pytest

from drivelab.planning import Road, generate_track, lane_speed_profile, speed_profile, straight_road, target_speed_at

DS = 0.5  # m between samples
A_LAT, ACCEL, DECEL = 2.5, 2.0, 3.0


def bend_curvature(before_m=100.0, bend_m=30.0, after_m=100.0, radius_m=20.0) -> np.ndarray:
    n_before, n_bend, n_after = (int(x / DS) for x in (before_m, bend_m, after_m))
    return np.concatenate([np.zeros(n_before), np.full(n_bend, 1 / radius_m), np.zeros(n_after)])


def assert_limits(v: np.ndarray, closed: bool = False) -> None:
    v2 = v**2
    nxt = np.roll(v2, -1)[: None if closed else -1]
    cur = v2[: None if closed else -1]
    assert np.all(nxt - cur <= 2 * ACCEL * DS + 1e-9)  # never accelerates harder than max_accel
    assert np.all(cur - nxt <= 2 * DECEL * DS + 1e-9)  # never brakes harder than max_decel


def test_straight_gives_max_speed():
    v = speed_profile(np.zeros(200), DS, max_speed_mps=15.0)
    np.testing.assert_allclose(v, 15.0)


def test_bend_radius_20m_limits_speed_to_sqrt_50():
    kappa = bend_curvature()
    v = speed_profile(kappa, DS, 15.0, max_lateral_accel_mps2=A_LAT, max_accel_mps2=ACCEL, max_decel_mps2=DECEL)
    bend = kappa > 0
    np.testing.assert_allclose(v[bend], np.sqrt(2.5 * 20.0))  # 7.071 m/s: v²/R = 2.5 m/s²
    assert v[bend][0] == pytest.approx(7.0711, abs=1e-4)
    assert_limits(v)
    start, end = np.flatnonzero(bend)[[0, -1]]
    # braking at 3 m/s² before the bend: v² = 50 + 2·3·x at x metres before it, 15 m/s from 29.2 m out
    assert v[start - 20] == pytest.approx(np.sqrt(50 + 6 * 10.0))  # 10 m before: 10.49 m/s
    assert v[start - 60] == pytest.approx(15.0)  # 30 m before
    # accelerating at 2 m/s² after it: v² = 50 + 2·2·x, 15 m/s after 43.75 m
    assert v[end + 20] == pytest.approx(np.sqrt(50 + 4 * 10.0))  # 10 m after: 9.49 m/s
    assert v[end + 88] == pytest.approx(15.0)  # 44 m after
    assert v[0] == 15.0 and v[-1] == 15.0


def test_curvature_sign_does_not_matter():
    kappa = bend_curvature()
    np.testing.assert_array_equal(speed_profile(kappa, DS, 15.0), speed_profile(-kappa, DS, 15.0))


def test_closed_loop_limits_hold_across_the_wrap():
    # the bend sits at the very end of the lap, so the car leaves it through the start line
    kappa = np.concatenate([np.zeros(300), np.full(40, 0.05)])
    open_v = speed_profile(kappa, DS, 15.0)
    loop_v = speed_profile(kappa, DS, 15.0, closed=True)
    assert open_v[0] == 15.0
    assert loop_v[0] == pytest.approx(np.sqrt(50 + 2 * ACCEL * DS))  # one sample after the bend
    assert loop_v[10] == pytest.approx(np.sqrt(50 + 2 * ACCEL * DS * 11))
    assert_limits(loop_v, closed=True)
    np.testing.assert_allclose(loop_v[-40:], np.sqrt(50))


def test_initial_and_final_speed():
    v = speed_profile(np.zeros(100), DS, 15.0, initial_speed_mps=5.0, final_speed_mps=0.0)
    assert v[0] == 5.0 and v[-1] == 0.0
    assert v[10] == pytest.approx(np.sqrt(25 + 2 * ACCEL * DS * 10))
    assert v[-11] == pytest.approx(np.sqrt(2 * DECEL * DS * 10))
    assert_limits(v)


def test_bad_arguments():
    with pytest.raises(ValueError, match="spacing_m"):
        speed_profile(np.zeros(5), 0.0, 10.0)
    with pytest.raises(ValueError, match="max_speed_mps"):
        speed_profile(np.zeros(5), 1.0, -1.0)


def test_target_speed_at_on_roads():
    assert target_speed_at(straight_road(300.0), 10.0, 15.0) == pytest.approx(15.0)
    theta = np.linspace(0.0, 2 * np.pi, 400, endpoint=False)
    ring = Road(np.c_[20 * np.cos(theta), 20 * np.sin(theta)], closed=True)
    assert target_speed_at(ring, 3.0, 15.0) == pytest.approx(np.sqrt(50), rel=1e-6)
    # at the end of an open road the car should stand still
    road = straight_road(100.0)
    assert target_speed_at(road, 100.0, 15.0, stop_at_end=True) == pytest.approx(0.0, abs=1e-9)
    assert target_speed_at(road, 100.0 - 20.0, 15.0, stop_at_end=True) == pytest.approx(np.sqrt(2 * DECEL * 20.0))


def test_target_speed_at_brakes_for_a_bend_ahead():
    # 100 m straight along +x, then a left-hand arc of radius 20 m
    straight = np.c_[np.arange(0.0, 100.0, 0.5), np.zeros(200)]
    phi = np.arange(1, 200) * (0.5 / 20.0)
    arc = np.c_[100.0 + 20 * np.sin(phi), 20 - 20 * np.cos(phi)]
    points = np.vstack([straight, arc])
    curvature = np.r_[np.zeros(200), np.full(199, 1 / 20)]
    road = Road(points, closed=False, heading=np.r_[np.zeros(200), phi], curvature=curvature)
    assert target_speed_at(road, 20.0, 15.0) == pytest.approx(15.0)  # 80 m out: beyond braking distance
    # 10 m before the bend: v² = 50 + 2·3·10; the 1 m look-ahead samples may see the bend up to 1 m late
    assert np.sqrt(50 + 6 * 10.0) - 1e-9 <= target_speed_at(road, 90.0, 15.0) <= np.sqrt(50 + 6 * 11.0) + 1e-9
    assert target_speed_at(road, 110.0, 15.0) == pytest.approx(np.sqrt(50))


def test_long_profile_is_vectorised():
    import time

    kappa = np.random.default_rng(0).uniform(-0.05, 0.05, 200_000)
    start = time.perf_counter()
    v = speed_profile(kappa, DS, 30.0, closed=True)
    assert time.perf_counter() - start < 0.5
    assert_limits(v, closed=True)


def test_lane_speed_profile_of_a_ring_is_the_cornering_limit_everywhere():
    theta = np.linspace(0.0, 2 * np.pi, 400, endpoint=False)
    ring = Road(np.c_[20 * np.cos(theta), 20 * np.sin(theta)], closed=True, lane_count=2)
    centre = lane_speed_profile(ring, 0.0, 15.0, max_lateral_accel_mps2=2.5)
    assert centre.at(0.0) == pytest.approx(np.sqrt(2.5 * 20.0), rel=1e-4)
    assert centre.at(ring.length_m * 1.5) == pytest.approx(np.sqrt(2.5 * 20.0), rel=1e-4)  # wraps round the loop
    # The inner lane (left of the centre on a counter-clockwise ring) is tighter: radius 20 − 1.75 m.
    inner = lane_speed_profile(ring, 1.75, 15.0, max_lateral_accel_mps2=2.5)
    assert inner.at(10.0) == pytest.approx(np.sqrt(2.5 * 18.25), rel=1e-3)


def test_lane_speed_profile_of_a_track_keeps_the_limits_and_interpolates():
    road = generate_track(4)
    profile = lane_speed_profile(road, 0.0, 20.0, max_lateral_accel_mps2=3.0, max_accel_mps2=1.0, max_decel_mps2=2.0)
    v = profile.speed_mps
    spacing = road.length_m / len(v)
    v2, ahead = v**2, np.roll(v**2, -1)
    assert np.all(ahead - v2 <= 2 * 1.0 * spacing + 1e-9) and np.all(v2 - ahead <= 2 * 2.0 * spacing + 1e-9)
    assert np.all(v**2 * np.abs(road.curvature) <= 3.0 + 1e-9) and v.max() <= 20.0
    k = 123
    middle = 0.5 * (road.s[k] + road.s[k + 1])
    assert profile.at(float(middle)) == pytest.approx(0.5 * (v[k] + v[k + 1]))
    assert profile.at(float(road.s[k])) == pytest.approx(v[k])
