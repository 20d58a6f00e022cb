"""Tests of drivelab.control.paths: road-relative state on simple paths."""

from __future__ import annotations

import math

import pytest

from drivelab.control.paths import CirclePath, StraightPath, shift_reference_point, wrap_angle_rad


def test_wrap_angle_to_minus_pi_pi():
    assert wrap_angle_rad(math.pi) == math.pi
    assert wrap_angle_rad(-math.pi) == math.pi
    assert wrap_angle_rad(3.0 * math.pi / 2.0) == pytest.approx(-math.pi / 2.0)
    assert wrap_angle_rad(0.1 + 4.0 * math.pi) == pytest.approx(0.1)


def test_straight_path_errors_left_positive():
    path = StraightPath(x0_m=0.0, y0_m=0.0, yaw_rad=math.pi / 2.0)  # heading north along the y axis
    errors = path.errors(-2.0, 5.0, math.pi / 2.0 + 0.2)
    assert errors.cross_track_error_m == pytest.approx(2.0)  # west of a north-bound path is left
    assert errors.heading_error_rad == pytest.approx(0.2)
    assert errors.path_curvature_1pm == 0.0


@pytest.mark.parametrize("counter_clockwise", [True, False])
def test_circle_errors(counter_clockwise):
    path = CirclePath(radius_m=50.0, counter_clockwise=counter_clockwise)
    tangent_rad = 0.0 if counter_clockwise else math.pi
    inside = path.errors(0.0, -49.0, tangent_rad)  # 1 m inside, below the centre
    assert inside.cross_track_error_m == pytest.approx(1.0 if counter_clockwise else -1.0)
    assert inside.heading_error_rad == pytest.approx(0.0, abs=1e-12)
    assert inside.path_curvature_1pm == pytest.approx(0.02 if counter_clockwise else -0.02)


@pytest.mark.parametrize("curvature_1pm", [0.0, 0.02, -0.02])
@pytest.mark.parametrize("d_m, heading_rad, forward_m", [(0.5, 0.1, 2.7), (-1.0, -0.2, 2.7), (0.3, 0.05, -1.2)])
def test_shift_reference_point_agrees_with_the_path_geometry(curvature_1pm, d_m, heading_rad, forward_m):
    if curvature_1pm == 0.0:
        path = StraightPath()
        x_m, y_m, yaw_rad = 0.0, d_m, heading_rad
    else:
        path = CirclePath(radius_m=abs(1.0 / curvature_1pm), counter_clockwise=curvature_1pm > 0.0)
        # A point below the centre for counter-clockwise, above it for clockwise, heading along +x.
        side = 1.0 if curvature_1pm > 0.0 else -1.0
        x_m, y_m, yaw_rad = 0.0, -side * (path.radius_m - side * d_m), heading_rad
    assert path.errors(x_m, y_m, yaw_rad).cross_track_error_m == pytest.approx(d_m)
    moved = path.errors(x_m + forward_m * math.cos(yaw_rad), y_m + forward_m * math.sin(yaw_rad), yaw_rad)
    d_new, heading_new = shift_reference_point(d_m, heading_rad, forward_m, curvature_1pm)
    assert d_new == pytest.approx(moved.cross_track_error_m, abs=1e-12)
    assert heading_new == pytest.approx(moved.heading_error_rad, abs=1e-12)
