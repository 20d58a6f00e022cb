"""Road geometry: sign conventions, exact projection, lanes, procedural tracks."""

import math
import subprocess
import sys
import timeit

import numpy as np
import pytest

from drivelab.planning import Road, TrackSpec, generate_track, straight_road, wrap_angle

R = 20.0


def circle(radius=R, n=400, clockwise=False, **kwargs) -> Road:
    theta = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    if clockwise:
        theta = -theta
    return Road(np.c_[radius * np.cos(theta), radius * np.sin(theta)], closed=True, **kwargs)


# ---------------------------------------------------------------------- conventions on a circle and a straight
def test_ccw_circle_curvature_length_heading():
    road = circle()
    assert road.closed and len(road.points) == 400
    np.testing.assert_allclose(road.curvature, 1 / R, rtol=1e-9)  # left turn positive
    # A 400-gon inscribed in the circle is shorter than 2πR by a factor 1 − (π/N)²/6 ≈ 1 − 1e-5.
    assert road.length_m == pytest.approx(2 * np.pi * R, rel=2e-5)
    assert road.s[0] == 0.0 and np.all(np.diff(road.s) > 0)
    assert road.heading_at(0.0) == pytest.approx(np.pi / 2)  # at (R, 0) a CCW circle heads along +y
    assert road.heading_at(road.length_m / 2) == pytest.approx(-np.pi / 2, abs=1e-9)  # wrapped, at (−R, 0)


def test_ccw_circle_outside_is_right_inside_is_left():
    road = circle()
    angle = 1.0  # rad, between vertices
    out = road.project(np.array([(R + 1) * np.cos(angle), (R + 1) * np.sin(angle)]))
    inside = road.project(np.array([(R - 1) * np.cos(angle), (R - 1) * np.sin(angle)]))
    # d is measured from the chord; the sagitta of a 400-gon of radius 20 m is R(1 − cos(π/400)) = 0.6 mm.
    assert out.d == pytest.approx(-1.0, abs=1e-3)
    assert inside.d == pytest.approx(+1.0, abs=1e-3)
    assert out.s == pytest.approx(R * angle, abs=1e-3)
    assert out.heading == pytest.approx(angle + np.pi / 2, abs=1e-6)
    assert out.curvature == pytest.approx(1 / R)


def test_clockwise_circle_signs_flip():
    road = circle(clockwise=True)
    np.testing.assert_allclose(road.curvature, -1 / R, rtol=1e-9)  # right turn negative
    out = road.project(np.array([R + 1.0, 0.0]))
    assert out.d == pytest.approx(+1.0, abs=1e-3)  # outside of a right turn is on the left
    assert out.heading == pytest.approx(-np.pi / 2)


def test_straight_road_conventions():
    road = straight_road(100.0)
    assert not road.closed and road.length_m == pytest.approx(100.0)
    f = road.project(np.array([10.0, 2.0]))  # +y is left of a car driving along +x
    assert (f.s, f.d, f.heading, f.curvature) == pytest.approx((10.0, 2.0, 0.0, 0.0))
    np.testing.assert_allclose(road.position(30.0, -1.5), [30.0, -1.5])
    # beyond the ends of an open road s is clipped
    assert road.project(np.array([-5.0, 1.0])).s == 0.0
    assert road.project(np.array([120.0, 1.0])).s == pytest.approx(100.0)
    assert road.wrap_s(-3.0) == 0.0 and road.wrap_s(150.0) == 100.0
    assert road.progress(10.0, 4.0) == pytest.approx(-6.0)


def test_wrap_and_progress_on_closed_road():
    road = circle()
    length = road.length_m
    assert road.wrap_s(length + 3.0) == pytest.approx(3.0)
    assert road.wrap_s(-1.0) == pytest.approx(length - 1.0)
    assert road.progress(length - 5.0, 10.0) == pytest.approx(15.0)  # across the start line, forwards
    assert road.progress(10.0, length - 5.0) == pytest.approx(-15.0)
    np.testing.assert_allclose(road.position(length + 1.0, 0.5), road.position(1.0, 0.5))


# ---------------------------------------------------------------------- exact projection
@pytest.mark.parametrize("make", [circle, lambda: generate_track(3), lambda: straight_road(80.0, lane_count=2)],
                         ids=["circle", "track", "straight"])
def test_project_position_round_trip(make):
    road = make()
    rng = np.random.default_rng(0)
    m = 1000
    s = rng.uniform(0.0, road.length_m, m)
    d = rng.uniform(-road.half_width_m, road.half_width_m, m) * 0.999
    xy = road.position(s, d)
    assert xy.shape == (m, 2)
    f = road.project(xy)  # one vectorised call
    assert f.s.shape == (m,)
    np.testing.assert_allclose(road.progress(s, f.s), 0.0, atol=1e-6)
    np.testing.assert_allclose(f.d, d, atol=1e-6)
    np.testing.assert_allclose(wrap_angle(f.heading - road.heading_at(s)), 0.0, atol=1e-9)
    np.testing.assert_allclose(f.curvature, road.curvature_at(s), atol=1e-12)


def test_projection_is_interpolated_not_nearest_vertex():
    road = straight_road(10.0, spacing_m=2.0)  # vertices at x = 0, 2, 4, ...
    f = road.project(np.array([3.3, -0.7]))
    assert (f.s, f.d) == pytest.approx((3.3, -0.7))


def test_hinted_projection_equals_global():
    road = generate_track(5)
    rng = np.random.default_rng(1)
    m = 300
    s = rng.uniform(0.0, road.length_m, m)
    d = rng.uniform(-3.0, 3.0, m)  # off the road a little, too
    xy = road.position(s, d)
    hint = s + rng.uniform(-4.0, 4.0, m)  # where the car was a few steps ago
    glob = road.project(xy)
    hinted = road.project(xy, s_hint=hint, window_m=10.0)
    np.testing.assert_allclose(road.progress(glob.s, hinted.s), 0.0, atol=1e-9)
    np.testing.assert_allclose(hinted.d, glob.d, atol=1e-9)
    for i in range(m):  # the one-point fast path
        one = road.project(xy[i], s_hint=float(hint[i]))
        assert isinstance(one.s, float)
        assert road.progress(glob.s[i], one.s) == pytest.approx(0.0, abs=1e-9)
        assert one.d == pytest.approx(glob.d[i], abs=1e-9)
        assert one.heading == pytest.approx(glob.heading[i], abs=1e-9)


def test_hinted_projection_across_the_start_line():
    road = generate_track(2)
    xy = road.position(0.3, 1.0)
    for hint in (road.length_m - 0.4, 0.1, -0.5):
        f = road.project(xy, s_hint=hint)
        assert (f.s, f.d) == pytest.approx((0.3, 1.0), abs=1e-9)


def test_one_point_hinted_projection_is_fast():
    road = generate_track(0)
    xy = road.position(123.4, 0.8)
    timings = np.array(timeit.repeat(lambda: road.project(xy, s_hint=122.9), number=200, repeat=15)) / 200
    median_us = float(np.median(timings)) * 1e6
    assert median_us < 50.0, f"median {median_us:.1f} µs"


# ---------------------------------------------------------------------- lanes
def test_three_lanes():
    road = straight_road(50.0, lane_count=3, lane_width_m=3.5, shoulder_m=0.5)
    assert road.half_width_m == pytest.approx(5.25)
    assert [road.lane_center_d(lane) for lane in range(3)] == pytest.approx([-3.5, 0.0, 3.5])
    assert road.lane_index(-3.5) == 0 and road.lane_index(0.0) == 1 and road.lane_index(3.5) == 2
    assert road.lane_index(-1.74) == 1 and road.lane_index(-1.76) == 0
    assert road.lane_index(-100.0) == 0 and road.lane_index(100.0) == 2  # clipped
    np.testing.assert_array_equal(road.lane_index(np.array([-5.0, 1.0, 5.0])), [0, 1, 2])
    np.testing.assert_allclose(road.lane_lines_d(), [-5.25, -1.75, 1.75, 5.25])
    with pytest.raises(ValueError, match="lane"):
        road.lane_center_d(3)


def test_on_road_includes_shoulder():
    road = straight_road(50.0, lane_count=3, lane_width_m=3.5, shoulder_m=0.5)
    assert road.on_road(5.75) and road.on_road(-5.75)
    assert not road.on_road(5.76) and not road.on_road(-5.76)
    np.testing.assert_array_equal(road.on_road(np.array([0.0, 5.5, -6.0])), [True, True, False])


def test_queries_shapes_and_read_only():
    road = generate_track(1)
    assert road.preview_curvature(10.0, np.arange(0.0, 30.0, 5.0)).shape == (6,)
    assert road.preview_curvature(np.array([1.0, 2.0]), np.arange(4.0)).shape == (2, 4)
    headings = road.heading_at(np.linspace(0.0, road.length_m, 500))
    assert np.all(headings > -np.pi) and np.all(headings <= np.pi)
    with pytest.raises(ValueError):
        road.points[0, 0] = 1.0


# ---------------------------------------------------------------------- generated tracks
def test_generated_track_is_deterministic():
    a, b = generate_track(7), generate_track(7)
    for name in ("points", "s", "heading", "curvature"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.length_m == b.length_m


def test_different_seeds_give_visibly_different_tracks():
    a, b = generate_track(0), generate_track(1)
    # farthest any point of one track is from the other track: metres, not millimetres
    gap = np.min(np.linalg.norm(a.points[:, None, :] - b.points[None, :, :], axis=-1), axis=1)
    assert gap.max() > 5.0


@pytest.mark.parametrize("seed", range(10))
def test_generated_track_satisfies_spec(seed):
    spec = TrackSpec()
    road = generate_track(seed, spec)
    half = spec.lane_count * spec.lane_width_m / 2 + spec.shoulder_m
    assert road.closed and road.lane_count == spec.lane_count and road.shoulder_m == spec.shoulder_m
    assert np.max(np.abs(road.curvature)) <= spec.max_curvature_1pm
    assert 0.9 * spec.length_m <= road.length_m <= 1.1 * spec.length_m
    spacing = np.diff(np.append(road.s, road.length_m))
    # uniform in arc length; chords are shorter than arcs by (κ·ds)²/24 < 1e-5
    assert spec.sample_spacing_m * 0.999 < spacing.min() and spacing.max() <= spec.sample_spacing_m * (1 + 1e-5)
    # analytic curvature agrees with the circle through three neighbouring points (so the points are right too)
    menger = circle_curvature(road.points)
    np.testing.assert_allclose(road.curvature, menger, atol=2e-4)
    # closed: the end meets the start, and the heading carries on continuously once round (CCW: +2π)
    assert np.linalg.norm(road.points[-1] - road.points[0]) == pytest.approx(spec.sample_spacing_m, rel=1e-3)
    step = wrap_angle(road.heading[0] - road.heading[-1])
    assert abs(step) < 0.05
    assert road.heading[-1] + step - road.heading[0] == pytest.approx(2 * np.pi)
    # no self-intersection of the road edges: parts of the centre line more than 20 m apart along the road
    # keep more than the road width between them (the minimum radius 30 m > half width handles neighbours)
    assert 1 / np.max(np.abs(road.curvature)) > half
    sep = np.abs(road.s[:, None] - road.s[None, :])
    sep = np.minimum(sep, road.length_m - sep)
    dist = np.linalg.norm(road.points[:, None, :] - road.points[None, :, :], axis=-1)
    assert dist[sep > 20.0].min() > 2 * half
    # s = 0 on a fairly straight stretch
    assert abs(road.curvature[0]) <= np.median(np.abs(road.curvature))


def test_generated_tracks_bend_both_ways():
    negative = [np.min(generate_track(seed).curvature) < -0.002 for seed in range(10)]
    assert sum(negative) >= 7  # right-hand bends on most tracks, although the default spec is tight


def test_generated_track_other_spec():
    spec = TrackSpec(length_m=1200.0, max_curvature_1pm=1 / 25, lane_count=3, sample_spacing_m=1.0)
    road = generate_track(4, spec)
    assert road.lane_count == 3 and road.half_width_m == pytest.approx(5.25)
    assert road.length_m == pytest.approx(1200.0, rel=0.1)
    assert np.max(np.abs(road.curvature)) <= 1 / 25


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"length_m": -5.0}, "length_m"),
        ({"length_m": 100.0}, "length_m"),  # a 100 m loop needs curvature 2π/100 > 1/30
        ({"max_curvature_1pm": 0.0}, "max_curvature_1pm"),
        ({"lane_count": 0}, "lane_count"),
        ({"lane_count": 1.5}, "lane_count"),
        ({"lane_width_m": 0.0}, "lane_width_m"),
        ({"shoulder_m": -1.0}, "shoulder_m"),
        ({"sample_spacing_m": 0.0}, "sample_spacing_m"),
    ],
)
def test_track_spec_validation(kwargs, field):
    with pytest.raises(ValueError, match=f"TrackSpec.{field} must be") as err:
        TrackSpec(**kwargs)
    assert "\n" not in str(err.value)


def test_road_rejects_bad_points():
    with pytest.raises(ValueError, match="shape"):
        Road(np.zeros((5, 3)), closed=False)
    with pytest.raises(ValueError, match="distinct"):
        Road(np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0]]), closed=False)


def test_closed_road_drops_repeated_end_point():
    theta = np.linspace(0.0, 2 * np.pi, 101)  # last point repeats the first
    road = Road(np.c_[R * np.cos(theta), R * np.sin(theta)], closed=True)
    assert len(road.points) == 100


def test_planning_imports_no_simulator_or_torch():
    code = (
        "import sys, drivelab.planning as p; p.generate_track(0); "
        "bad = [m for m in ('pybullet', 'torch') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def circle_curvature(points: np.ndarray) -> np.ndarray:
    """Signed curvature of the circle through each point of a closed polyline and its two neighbours."""
    prev, nxt = np.roll(points, 1, axis=0), np.roll(points, -1, axis=0)
    a, b, c = points - prev, nxt - points, nxt - prev
    cross = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    return 2 * cross / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) * np.linalg.norm(c, axis=1))


def test_heading_attribute_is_unwrapped_and_matches_points():
    road = generate_track(6)
    assert np.all(np.abs(np.diff(road.heading)) < 0.1)  # continuous: no 2π jumps
    chord = np.diff(road.points, axis=0)
    chord_heading = np.arctan2(chord[:, 1], chord[:, 0])
    mid = 0.5 * (road.heading[1:] + road.heading[:-1])
    assert np.max(np.abs(wrap_angle(chord_heading - mid))) < 1e-4
    assert math.isclose(road.length_m, road.s[-1] + np.linalg.norm(road.points[0] - road.points[-1]))


def test_scalar_fast_paths_give_the_array_paths_numbers_bit_for_bit():
    """The env calls project_point, curvatures_ahead and progress with plain floats every step; they
    must agree exactly with project, preview_curvature and progress on arrays."""
    road = generate_track(3, TrackSpec())
    rng = np.random.default_rng(0)
    distances = (0.0, 5.0, 10.0, 20.0, 30.0)
    for s in rng.uniform(0.0, road.length_m, 300).tolist() + [0.0, road.length_m - 1e-9, road.s[17]]:
        d = float(rng.uniform(-2.0, 2.0))
        x, y = road.position(s, d).tolist()
        hint = (s + float(rng.uniform(-3.0, 3.0))) % road.length_m
        assert road.project_point(x, y, hint, 30.0) == road.project(np.array([x, y]), s_hint=hint, window_m=30.0)
        assert road.curvatures_ahead(s, distances) == tuple(road.preview_curvature(s, np.array(distances)).tolist())
        s_to = float(rng.uniform(0.0, road.length_m))
        assert road.progress(s, s_to) == float(road.progress(np.array(s), np.array(s_to)))
    opened = straight_road(50.0)
    assert opened.curvatures_ahead(45.0, (0.0, 10.0)) == tuple(opened.preview_curvature(45.0, np.array([0.0, 10.0])).tolist())


def test_the_pinch_check_finds_the_same_close_far_pairs_as_measuring_all_pairs():
    from drivelab.planning.road import _has_far_pair_within

    rng = np.random.default_rng(1)
    found = 0
    for _ in range(500):
        n = int(rng.integers(2, 120))
        points = rng.uniform(-40.0, 40.0, size=(n, 2)) * rng.uniform(0.05, 1.0)
        s = np.sort(rng.uniform(0.0, 400.0, n))
        separation, distance = float(rng.uniform(1.0, 150.0)), float(rng.uniform(0.2, 8.0))
        gaps = np.hypot(*(points[:, None, :] - points[None, :, :]).transpose(2, 0, 1))
        arc = np.abs(s[:, None] - s[None, :])
        expected = bool(np.any((gaps <= distance) & (np.minimum(arc, 400.0 - arc) > separation)))
        assert _has_far_pair_within(points, s, 400.0, separation, distance) == expected
        found += expected
    assert 25 < found < 475  # both answers were exercised
