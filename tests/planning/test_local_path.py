"""local_lane_path: the lane centre ahead in the car's frame (x forward, y left), rebuilt from the driving state."""

import numpy as np
import pytest

from drivelab.planning.local_path import local_lane_path

PREVIEW_M = (0.0, 5.0, 10.0, 20.0, 30.0)


def path(offset_m=0.0, heading_rad=0.0, curvature_1pm=0.0, **kwargs):
    return local_lane_path(offset_m, heading_rad, PREVIEW_M, [curvature_1pm] * len(PREVIEW_M), **kwargs)


def rotate(points, angle_rad):
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    return points @ np.array([[c, s], [-s, c]])  # row vectors: (x, y) → (c·x − s·y, s·x + c·y)


def test_centred_on_a_straight_lane_the_path_is_the_x_axis():
    p = path()
    np.testing.assert_array_equal(p.s, np.arange(31.0))  # 0..30 m every 1 m (the defaults)
    np.testing.assert_allclose(p.points[:, 0], p.s, atol=1e-12)
    np.testing.assert_allclose(p.points[:, 1], 0.0, atol=1e-12)
    np.testing.assert_allclose(p.heading, 0.0, atol=1e-12)
    np.testing.assert_allclose(p.curvature, 0.0, atol=1e-12)


def test_car_one_metre_left_of_centre_sees_the_lane_at_y_minus_one():
    p = path(offset_m=1.0)
    np.testing.assert_allclose(p.points[:, 1], -1.0, atol=1e-12)
    np.testing.assert_allclose(p.points[:, 0], p.s, atol=1e-12)


@pytest.mark.parametrize("radius_m, spacing_m", [(30.0, 1.0), (-30.0, 1.0), (20.0, 0.5), (-20.0, 0.5)])
def test_constant_curvature_gives_a_circle_of_radius_one_over_kappa(radius_m, spacing_m):
    # Left turns (κ > 0) curve towards +y: the circle's centre is at (0, R), R = 1/κ signed.
    p = path(curvature_1pm=1 / radius_m, spacing_m=spacing_m)
    x, y = p.points[:, 0], p.points[:, 1]
    # Chords of the spacing's length under the mid-point heading overshoot the arc by spacing³/(24R²)
    # each, along the path: the radius stays within 1e-3 m over the 30 m, the position along the arc
    # drifts by 30 × 1/(24 × 30²) = 1.4e-3 m at R = 30 m, spacing 1 m; so positions are checked to 15 m.
    np.testing.assert_allclose(np.hypot(x, y - radius_m), abs(radius_m), atol=1e-3)
    for s_m in (5.0, 10.0, 15.0):
        i = int(np.flatnonzero(p.s == s_m)[0])
        theta = s_m / radius_m
        assert x[i] == pytest.approx(radius_m * np.sin(theta), abs=1e-3)
        assert y[i] == pytest.approx(radius_m * (1 - np.cos(theta)), abs=1e-3)
    np.testing.assert_allclose(p.heading, p.s / radius_m, atol=1e-12)  # trapezoid is exact for constant κ


def test_curvature_is_interpolated_between_preview_points_and_held_beyond():
    p = local_lane_path(0.0, 0.0, (0.0, 10.0), (0.0, 0.02), horizon_m=20.0)
    assert p.curvature[5] == pytest.approx(0.01)
    np.testing.assert_allclose(p.curvature[10:], 0.02)


@pytest.mark.parametrize("offset_m, curvature_1pm", [(0.0, 0.0), (0.7, 0.0), (-0.4, 1 / 40)])
def test_heading_error_rotates_the_path_by_minus_that_angle(offset_m, curvature_1pm):
    # A car yawed 0.2 rad left of the lane sees the lane turned 0.2 rad to its right.
    error_rad = 0.2
    reference = path(offset_m, 0.0, curvature_1pm)
    rotated = path(offset_m, error_rad, curvature_1pm)
    np.testing.assert_allclose(rotated.points, rotate(reference.points, -error_rad), atol=1e-12)
    np.testing.assert_allclose(rotated.heading, reference.heading - error_rad, atol=1e-12)
    np.testing.assert_array_equal(rotated.curvature, reference.curvature)


def test_straight_path_with_heading_error_points_along_minus_the_error():
    p = path(heading_rad=0.3)
    assert p.points[-1, 0] == pytest.approx(30 * np.cos(0.3))
    assert p.points[-1, 1] == pytest.approx(-30 * np.sin(0.3))


@pytest.mark.parametrize("kwargs", [{"spacing_m": 0.0}, {"horizon_m": -1.0}])
def test_non_positive_horizon_or_spacing_raises(kwargs):
    with pytest.raises(ValueError, match="horizon_m and spacing_m must be > 0"):
        path(**kwargs)
