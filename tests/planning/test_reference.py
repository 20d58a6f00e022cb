"""Reference paths along a lane, lane changes, pure-pursuit look-ahead points."""

import numpy as np
import pytest

from drivelab.planning import (Road, generate_track, lane_change_path, lookahead_point, minimum_jerk, reference_path,
                               straight_road, wrap_angle)

R = 20.0


def ring(radius=R, n=400) -> Road:
    theta = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    return Road(np.c_[radius * np.cos(theta), radius * np.sin(theta)], closed=True, lane_count=2)


def test_straight_road_lane_path():
    road = straight_road(200.0, lane_count=2)
    path = reference_path(road, 10.0, d_target=road.lane_center_d(1), horizon_m=50.0, spacing_m=1.0)
    assert len(path) == 51
    np.testing.assert_allclose(path.s, np.arange(10.0, 61.0))
    np.testing.assert_allclose(path.points, np.c_[np.arange(10.0, 61.0), np.full(51, 1.75)])
    np.testing.assert_allclose(np.diff(path.distance_m), 1.0)
    np.testing.assert_allclose(path.heading, 0.0)
    np.testing.assert_allclose(path.curvature, 0.0)
    assert path.target_speed_mps is None


def test_ring_lane_path_offset_and_spacing():
    road = ring()
    d = 1.5  # the left (inner) lane of a CCW ring
    path = reference_path(road, 5.0, d_target=d, horizon_m=30.0, spacing_m=2.0)
    assert len(path) == 16
    f = road.project(path.points)
    np.testing.assert_allclose(f.d, d, atol=1e-9)  # exactly |d| from the centre line
    np.testing.assert_allclose(np.diff(path.s), 2.0)
    # the inner lane is shorter: 2 m of centre line is 2·(1 − κd) = 1.85 m of lane arc, a chord of 1.8492 m
    np.testing.assert_allclose(np.diff(path.distance_m), 2 * (R - d) * np.sin(2.0 / (2 * R)), rtol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(path.points, axis=1), R - d, atol=1e-3)
    np.testing.assert_allclose(path.curvature, 1 / (R - d), rtol=1e-9)
    np.testing.assert_allclose(wrap_angle(path.heading - road.heading_at(path.s)), 0.0, atol=1e-12)


def test_generated_track_path_offset_and_wrap_around():
    road = generate_track(2)
    start = road.length_m - 10.0  # crosses the start line
    path = reference_path(road, start, d_target=-1.0, horizon_m=40.0, spacing_m=0.5)
    f = road.project(path.points, s_hint=path.s)
    np.testing.assert_allclose(f.d, -1.0, atol=1e-9)
    np.testing.assert_allclose(road.progress(road.wrap_s(path.s), f.s), 0.0, atol=1e-9)
    assert path.s[0] == pytest.approx(start) and path.s[-1] == pytest.approx(start + 40.0)  # not wrapped
    steps = np.diff(path.distance_m)
    assert steps.min() > 0.45 and steps.max() < 0.55  # no jump at the start line


def test_target_speed_filled_on_request():
    road = ring()
    path = reference_path(road, 0.0, 0.0, horizon_m=20.0, max_speed_mps=15.0, max_lateral_accel_mps2=2.5)
    np.testing.assert_allclose(path.target_speed_mps, np.sqrt(2.5 * R))


def test_lookahead_point():
    road = straight_road(100.0)
    assert lookahead_point(road, 12.0, -0.5, 8.0) == pytest.approx((20.0, -0.5))
    x, y = lookahead_point(ring(), 0.0, 0.0, np.pi * R / 2)  # a quarter lap round the ring
    assert (x, y) == pytest.approx((0.0, R), abs=1e-3)


def test_lane_change_on_straight_road():
    road = straight_road(200.0, lane_count=2)
    path = lane_change_path(road, 0.0, d_from=-1.75, d_to=1.75, change_length_m=30.0, horizon_m=50.0, spacing_m=0.1)
    assert path.d[0] == -1.75 and path.d[300] == pytest.approx(1.75) and np.all(path.d[300:] == 1.75)
    np.testing.assert_allclose(path.points[:, 1], path.d)
    # minimum-jerk quintic: the steepest slope is 15/8 · Δd / L at mid-manoeuvre
    assert path.heading[150] == pytest.approx(np.arctan(15 / 8 * 3.5 / 30.0))
    assert path.heading[0] == 0.0 and path.heading[-1] == 0.0
    # curvature agrees with the turning of the heading along the path's own arc length
    numeric = np.gradient(path.heading, path.distance_m)
    np.testing.assert_allclose(path.curvature[2:-2], numeric[2:-2], atol=2e-4)


def test_minimum_jerk_blend_and_its_derivatives():
    u = np.linspace(0.0, 1.0, 2001)
    blend, slope, curvature = minimum_jerk(u)
    assert (blend[0], blend[-1], blend[1000]) == (0.0, 1.0, pytest.approx(0.5))
    assert slope[0] == slope[-1] == curvature[0] == curvature[-1] == 0.0
    assert slope[1000] == pytest.approx(15 / 8) and np.all(np.diff(blend) > 0)
    np.testing.assert_allclose(slope[1:-1], np.gradient(blend, u)[1:-1], atol=1e-5)
    np.testing.assert_allclose(curvature[1:-1], np.gradient(slope, u)[1:-1], atol=1e-4)
    # the same on a float, as the highway's controller asks it each control step
    assert minimum_jerk(0.25) == (blend[500], slope[500], curvature[500])


def test_bad_spacing():
    with pytest.raises(ValueError, match="spacing_m"):
        reference_path(straight_road(10.0), 0.0, spacing_m=0.0)
