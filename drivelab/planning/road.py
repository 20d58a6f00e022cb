"""Road geometry: a sampled centre line with Frenet (s, d) queries, and procedural tracks.

Conventions (DESIGN.md glossary):

* ``s`` is arc length along the centre line of the whole carriageway, in metres, ``s = 0`` at ``points[0]``.
* ``d`` is the signed lateral offset from that centre line, in metres, **left of the driving direction positive**.
* Curvature is signed, **left turns positive** (a counter-clockwise circle has curvature ``+1/R``).
* Lane 0 is the rightmost lane.

The Frenet frame is that of the polyline through ``points`` with a *smoothly interpolated* normal: inside
segment ``k`` the normal is the normalised linear blend of the two vertex normals.  ``position(s, d)`` and
``project(xy)`` are exact inverses of each other (for ``|d|`` below the local radius of curvature), ``s`` and
``d`` vary continuously across vertices, and there are no gaps or overlaps on the outside or inside of a bend
as there would be with per-segment normals.
"""

from __future__ import annotations

import bisect
import functools
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

__all__ = ["TrackSpec", "Road", "FrenetPoint", "generate_track", "straight_road", "wrap_angle"]

_TWO_PI = 2.0 * math.pi
# Projection feet with t slightly outside [0, 1] still count as inside the segment (round-off at vertices).
_T_TOLERANCE = 1e-9
# Default half-size of the hinted search window when only s_hint is given.
_DEFAULT_WINDOW_M = 10.0
_SCALARS = (float, int, np.floating, np.integer)
# Half-size of the window searched around the nearest vertex in a global (unhinted) projection.
_REFINE_WINDOW_M = 5.0


def wrap_angle(angle):
    """Wrap an angle (rad, scalar or array) to the interval (-π, π]."""
    wrapped = angle - _TWO_PI * np.ceil((np.asarray(angle) - math.pi) / _TWO_PI)
    return float(wrapped) if np.ndim(wrapped) == 0 else wrapped


class FrenetPoint(NamedTuple):
    """Result of :meth:`Road.project`: floats for one point, ``(M,)`` arrays for ``M`` points.

    :param s: arc length of the foot point along the centre line (m), in ``[0, length_m)`` on a closed road.
    :param d: signed lateral offset (m), left positive.
    :param heading: tangent yaw of the centre line at ``s`` (rad), wrapped to (-π, π].
    :param curvature: centre-line curvature at ``s`` (1/m), left turn positive.
    """

    s: float | np.ndarray
    d: float | np.ndarray
    heading: float | np.ndarray
    curvature: float | np.ndarray


def _check_range(name: str, value, low, high, *, low_open: bool = False, unit: str = "") -> None:
    ok = (low < value if low_open else low <= value) and value <= high
    if not ok or not math.isfinite(value):
        bracket = "(" if low_open else "["
        raise ValueError(f"TrackSpec.{name} must be in {bracket}{low:g}, {high:g}]{unit}, got {value!r}")


@dataclass(frozen=True)
class TrackSpec:
    """What :func:`generate_track` builds: a closed track of about ``length_m`` metres."""

    length_m: float = 400.0  # approximate lap length of a closed track (the result is within ±10%, usually exact)
    max_curvature_1pm: float = 1 / 30  # hard limit on |curvature| of the centre line
    lane_count: int = 1
    lane_width_m: float = 3.5
    shoulder_m: float = 0.5  # paved margin beyond the outer lane edges (still "on road")
    sample_spacing_m: float = 0.5
    max_harmonic: int = 5  # highest Fourier harmonic of the radius r(θ); higher → more, shorter bends
    perturbation: float = 0.5  # initial sum of relative harmonic amplitudes, shrunk until the limits hold
    edge_clearance_m: float = 2.0  # minimum unpaved gap between two non-neighbouring parts of the road

    def __post_init__(self) -> None:
        _check_range("length_m", self.length_m, 50.0, 100_000.0, unit=" m")
        _check_range("max_curvature_1pm", self.max_curvature_1pm, 0.0, 1.0, low_open=True, unit=" 1/m")
        if not isinstance(self.lane_count, (int, np.integer)) or isinstance(self.lane_count, bool):
            raise ValueError(f"TrackSpec.lane_count must be an integer in [1, 8], got {self.lane_count!r}")
        _check_range("lane_count", self.lane_count, 1, 8)
        _check_range("lane_width_m", self.lane_width_m, 1.0, 10.0, unit=" m")
        _check_range("shoulder_m", self.shoulder_m, 0.0, 10.0, unit=" m")
        _check_range("sample_spacing_m", self.sample_spacing_m, 0.01, 10.0, unit=" m")
        if not isinstance(self.max_harmonic, (int, np.integer)) or isinstance(self.max_harmonic, bool):
            raise ValueError(f"TrackSpec.max_harmonic must be an integer in [2, 20], got {self.max_harmonic!r}")
        _check_range("max_harmonic", self.max_harmonic, 2, 20)
        _check_range("perturbation", self.perturbation, 0.0, 0.8)
        _check_range("edge_clearance_m", self.edge_clearance_m, 0.0, 100.0, unit=" m")
        # A circle is the least curved closed loop: its curvature 2π/L must fit under the limit,
        # and the road must fit inside its own radius.
        needed = self.effective_max_curvature_1pm
        if _TWO_PI / self.length_m > 0.9 * needed:
            raise ValueError(
                f"TrackSpec.length_m must be at least {_TWO_PI / (0.9 * needed):.0f} m for max_curvature_1pm="
                f"{self.max_curvature_1pm:g} and a road {2 * self.road_half_width_m:g} m wide, got {self.length_m:g}"
            )
        if self.sample_spacing_m > self.length_m / 50:
            raise ValueError(
                f"TrackSpec.sample_spacing_m must be at most length_m/50 = {self.length_m / 50:g} m, "
                f"got {self.sample_spacing_m:g}"
            )

    @property
    def road_half_width_m(self) -> float:
        """Half the paved width including shoulders: the on-road limit of ``|d|``."""
        return self.lane_count * self.lane_width_m / 2 + self.shoulder_m

    @property
    def effective_max_curvature_1pm(self) -> float:
        """The curvature limit actually enforced: the spec's, tightened so that the inner road edge
        keeps a radius of at least half the road width (otherwise the edge folds over itself)."""
        return min(self.max_curvature_1pm, 1.0 / (2.0 * self.road_half_width_m))


class Road:
    """A road: a reference (centre) line sampled every ~``sample_spacing_m``, closed (a lap) or open.

    Attributes (read-only numpy arrays):

    * ``points`` ``(N, 2)``: x, y of the centre line of the whole carriageway (middle between the outer edges).
    * ``s`` ``(N,)``: polyline arc length at each point, ``s[0] = 0``.
    * ``heading`` ``(N,)``: tangent yaw (rad), **unwrapped** (continuous, may leave (-π, π]); use
      :meth:`heading_at` or :func:`wrap_angle` for wrapped values.
    * ``curvature`` ``(N,)``: signed curvature (1/m), left turn positive.
    * ``length_m``: total length; for a closed road the lap length, segment back to ``points[0]`` included.
    * ``closed``, ``lane_count``, ``lane_width_m``, ``shoulder_m``.
    * ``half_width_m``: ``lane_count * lane_width_m / 2`` (paved lanes); the on-road limit is
      ``half_width_m + shoulder_m``.

    :param points: ``(N, 2)`` centre-line points in driving order. For a closed road the last point may repeat
        the first; it is dropped.
    :param closed: whether the road is a loop.
    :param heading: optional ``(N,)`` exact tangent yaw at the points (from an analytic curve). Default: from the
        neighbouring points (central differences, exact for points on a circle).
    :param curvature: optional ``(N,)`` exact curvature at the points. Default: the curvature of the circle through
        each point and its two neighbours (exact for points on a circle).
    """

    def __init__(
        self,
        points: np.ndarray,
        *,
        closed: bool,
        lane_count: int = 1,
        lane_width_m: float = 3.5,
        shoulder_m: float = 0.5,
        heading: np.ndarray | None = None,
        curvature: np.ndarray | None = None,
    ) -> None:
        pts = np.array(points, dtype=float)
        if pts.ndim != 2 or pts.shape[1] != 2:
            raise ValueError(f"Road points must have shape (N, 2), got {pts.shape}")
        if not np.all(np.isfinite(pts)):
            raise ValueError("Road points must be finite numbers")
        closed = bool(closed)
        if closed and len(pts) > 1 and np.allclose(pts[-1], pts[0], rtol=0.0, atol=1e-9):
            pts = pts[:-1]
            heading = None if heading is None else np.asarray(heading, dtype=float)[:-1]
            curvature = None if curvature is None else np.asarray(curvature, dtype=float)[:-1]
        min_points = 3 if closed else 2
        if len(pts) < min_points:
            raise ValueError(f"Road needs at least {min_points} distinct points when closed={closed}, got {len(pts)}")
        if int(lane_count) != lane_count or lane_count < 1:
            raise ValueError(f"Road lane_count must be an integer >= 1, got {lane_count!r}")
        if not lane_width_m > 0:
            raise ValueError(f"Road lane_width_m must be > 0, got {lane_width_m!r}")
        if not shoulder_m >= 0:
            raise ValueError(f"Road shoulder_m must be >= 0, got {shoulder_m!r}")

        # Segments k -> k+1; a closed road has one more, from the last point back to the first.
        ends = np.roll(pts, -1, axis=0) if closed else pts[1:]
        starts = pts if closed else pts[:-1]
        seg = ends - starts
        seg_len = np.hypot(seg[:, 0], seg[:, 1])
        if np.any(seg_len <= 1e-9):
            k = int(np.argmin(seg_len))
            raise ValueError(f"Road points must be distinct: points {k} and {(k + 1) % len(pts)} coincide")

        n = len(pts)
        s = np.concatenate([[0.0], np.cumsum(seg_len)])  # (n_seg + 1,)
        length = float(s[-1])

        if heading is None:
            heading = self._heading_from_points(pts, closed)
        else:
            heading = np.unwrap(np.asarray(heading, dtype=float))
            if heading.shape != (n,):
                raise ValueError(f"Road heading must have shape ({n},), got {heading.shape}")
        if curvature is None:
            curvature = self._curvature_from_points(pts, closed)
        else:
            curvature = np.asarray(curvature, dtype=float).copy()
            if curvature.shape != (n,):
                raise ValueError(f"Road curvature must have shape ({n},), got {curvature.shape}")

        if closed:
            # The heading after one lap differs from heading[0] by the winding (±2π for a simple loop).
            h_end = heading[-1] + wrap_angle(heading[0] - heading[-1])
            heading_ext = np.append(heading, h_end)
            curvature_ext = np.append(curvature, curvature[0])
            normal_ext = np.vstack([self._normals(heading), self._normals(heading[:1])])
        else:
            heading_ext = heading
            curvature_ext = curvature
            normal_ext = self._normals(heading)

        self.points = pts
        self.s = s[:n].copy()
        self.heading = heading
        self.curvature = curvature
        self.length_m = length
        self.closed = closed
        self.lane_count = int(lane_count)
        self.lane_width_m = float(lane_width_m)
        self.shoulder_m = float(shoulder_m)
        self.half_width_m = self.lane_count * self.lane_width_m / 2.0
        for arr in (self.points, self.s, self.heading, self.curvature):
            arr.flags.writeable = False

        # Per-segment tables for the projection (see _solve_t for the equation).
        self._n_seg = len(seg)
        self._s_ext = s  # (n_seg + 1,)
        self._seg_start = starts
        self._seg_vec = seg
        self._seg_len = seg_len
        self._normal_a = normal_ext[:-1]
        self._normal_delta = normal_ext[1:] - normal_ext[:-1]
        self._cross_ne = _cross(self._normal_a, seg)
        self._cross_de = _cross(self._normal_delta, seg)
        self._heading_ext = heading_ext
        self._curvature_ext = curvature_ext
        self._min_seg_len = float(seg_len.min())
        self._table = np.stack([
            starts[:, 0], starts[:, 1], seg[:, 0], seg[:, 1],
            self._normal_a[:, 0], self._normal_a[:, 1], self._normal_delta[:, 0], self._normal_delta[:, 1],
            self._cross_ne, self._cross_de,
        ])
        # Plain-float rows for the one-point hinted path: pure Python arithmetic beats numpy on scalars.
        self._rows = list(
            zip(
                starts[:, 0].tolist(), starts[:, 1].tolist(), seg[:, 0].tolist(), seg[:, 1].tolist(),
                self._normal_a[:, 0].tolist(), self._normal_a[:, 1].tolist(),
                self._normal_delta[:, 0].tolist(), self._normal_delta[:, 1].tolist(),
                self._cross_ne.tolist(), self._cross_de.tolist(),
            )
        )
        self._s_list = s.tolist()
        self._seg_len_list = seg_len.tolist()
        self._heading_list = heading_ext.tolist()
        self._curvature_list = curvature_ext.tolist()

    # ------------------------------------------------------------------ construction helpers
    @staticmethod
    def _normals(heading: np.ndarray) -> np.ndarray:
        return np.stack([-np.sin(heading), np.cos(heading)], axis=-1)

    @staticmethod
    def _heading_from_points(pts: np.ndarray, closed: bool) -> np.ndarray:
        if closed:
            tangent = np.roll(pts, -1, axis=0) - np.roll(pts, 1, axis=0)
        else:
            tangent = np.empty_like(pts)
            tangent[1:-1] = pts[2:] - pts[:-2]
            tangent[0] = pts[1] - pts[0]
            tangent[-1] = pts[-1] - pts[-2]
        return np.unwrap(np.arctan2(tangent[:, 1], tangent[:, 0]))

    @staticmethod
    def _curvature_from_points(pts: np.ndarray, closed: bool) -> np.ndarray:
        if len(pts) < 3:
            return np.zeros(len(pts))
        prev = np.roll(pts, 1, axis=0)
        nxt = np.roll(pts, -1, axis=0)
        a = pts - prev
        b = nxt - pts
        c = nxt - prev
        # Menger curvature: signed curvature of the circle through three consecutive points.
        denom = np.hypot(a[:, 0], a[:, 1]) * np.hypot(b[:, 0], b[:, 1]) * np.hypot(c[:, 0], c[:, 1])
        kappa = 2.0 * _cross(a, b) / np.maximum(denom, 1e-300)
        if not closed:
            kappa[0] = kappa[1]
            kappa[-1] = kappa[-2]
        return kappa

    # ------------------------------------------------------------------ arc length helpers
    @property
    def road_half_width_m(self) -> float:
        """Half the paved width including shoulders: the on-road limit of ``|d|``."""
        return self.half_width_m + self.shoulder_m

    def wrap_s(self, s):
        """Arc length brought into the road: modulo ``length_m`` on a closed road, clipped to ``[0, length_m]`` on an open one."""
        s_arr = np.asarray(s, dtype=float)
        out = np.mod(s_arr, self.length_m) if self.closed else np.minimum(np.maximum(s_arr, 0.0), self.length_m)
        return float(out) if out.ndim == 0 else out

    def progress(self, s_from, s_to):
        """Signed arc length travelled from ``s_from`` to ``s_to`` (m); the shorter way round on a closed road."""
        if type(s_from) is float and type(s_to) is float:
            # Every decision step: Python's float % rounds exactly as np.mod does, without its overhead.
            delta = s_to - s_from
            if self.closed:
                half = self.length_m / 2.0
                delta = (delta + half) % self.length_m - half
            return delta
        delta = np.asarray(s_to, dtype=float) - np.asarray(s_from, dtype=float)
        if self.closed:
            half = self.length_m / 2.0
            delta = np.mod(delta + half, self.length_m) - half
        return float(delta) if np.ndim(delta) == 0 else delta

    def _segment_of(self, s_wrapped: np.ndarray) -> np.ndarray:
        k = np.searchsorted(self._s_ext, s_wrapped, side="right") - 1
        # np.minimum/maximum rather than np.clip: clip costs ~10 µs of overhead on small inputs.
        return np.minimum(np.maximum(k, 0), self._n_seg - 1)

    def _interp(self, s, table: np.ndarray) -> np.ndarray:
        return np.interp(self.wrap_s(s), self._s_ext, table)

    # ------------------------------------------------------------------ queries along the road
    def position(self, s, d=0.0) -> np.ndarray:
        """World ``(x, y)`` at Frenet ``(s, d)``; ``s`` and ``d`` broadcast, result shape ``(..., 2)``.
        ``s`` wraps on a closed road and is clipped on an open one."""
        if isinstance(s, _SCALARS) and isinstance(d, _SCALARS):
            return self._position_scalar(float(s), float(d))
        s_w = np.asarray(self.wrap_s(s), dtype=float)
        k = self._segment_of(s_w)
        t = (s_w - self._s_ext[k]) / self._seg_len[k]
        ax, ay, ex, ey, nax, nay, dnx, dny = self._table[:8, k]
        nx = nax + t * dnx
        ny = nay + t * dny
        scale = np.asarray(d, dtype=float) / np.sqrt(nx * nx + ny * ny)
        return np.stack(np.broadcast_arrays(ax + t * ex + scale * nx, ay + t * ey + scale * ny), axis=-1)

    def _position_scalar(self, s: float, d: float) -> np.ndarray:
        s = s % self.length_m if self.closed else min(max(s, 0.0), self.length_m)
        k = min(max(bisect.bisect_right(self._s_list, s) - 1, 0), self._n_seg - 1)
        t = (s - self._s_list[k]) / self._seg_len_list[k]
        ax, ay, ex, ey, nax, nay, dnx, dny, _, _ = self._rows[k]
        nx = nax + t * dnx
        ny = nay + t * dny
        scale = d / math.hypot(nx, ny)
        return np.array([ax + t * ex + scale * nx, ay + t * ey + scale * ny])

    def heading_at(self, s):
        """Tangent yaw of the centre line at ``s`` (rad), linearly interpolated, wrapped to (-π, π]."""
        return wrap_angle(self._interp(s, self._heading_ext))

    def curvature_at(self, s):
        """Centre-line curvature at ``s`` (1/m), linearly interpolated; left turn positive."""
        out = self._interp(s, self._curvature_ext)
        return float(out) if np.ndim(out) == 0 else out

    def preview_curvature(self, s, distances_m: np.ndarray) -> np.ndarray:
        """Curvature at ``s + distances_m`` (1/m): shape ``(K,)`` for scalar ``s``, ``(M, K)`` for ``M`` values of ``s``."""
        ahead = np.asarray(s, dtype=float)[..., None] + np.asarray(distances_m, dtype=float)
        return np.asarray(self._interp(ahead, self._curvature_ext))

    def curvatures_ahead(self, s: float, distances_m: tuple[float, ...]) -> tuple[float, ...]:
        """:meth:`preview_curvature` for one ``s``, as plain floats: the same numbers, bit for bit (the
        interpolation is numpy's, written out), without numpy's per-call overhead. For callers that
        preview every decision step."""
        s_list, curvature, length = self._s_list, self._curvature_list, self.length_m
        last = len(s_list) - 1
        values = []
        for distance in distances_m:
            x = s + distance
            x = x % length if self.closed else min(max(x, 0.0), length)
            k = bisect.bisect_right(s_list, x) - 1
            if k >= last:
                values.append(curvature[last])
            elif s_list[k] == x:
                values.append(curvature[k])
            else:
                slope = (curvature[k + 1] - curvature[k]) / (s_list[k + 1] - s_list[k])
                values.append(slope * (x - s_list[k]) + curvature[k])
        return tuple(values)

    # ------------------------------------------------------------------ lanes
    def lane_center_d(self, lane: int) -> float:
        """Lateral offset (m) of the centre line of ``lane``; lane 0 is the rightmost lane."""
        if int(lane) != lane or not 0 <= lane < self.lane_count:
            raise ValueError(f"lane must be an integer in [0, {self.lane_count - 1}], got {lane!r}")
        return -self.half_width_m + (int(lane) + 0.5) * self.lane_width_m

    def lane_index(self, d):
        """Lane (0 = rightmost) that lateral offset ``d`` lies in, clipped to the existing lanes."""
        if type(d) is float:  # one offset, as an env asks every control step: the same, without numpy
            return min(max(math.floor((d + self.half_width_m) / self.lane_width_m), 0), self.lane_count - 1)
        idx = np.floor((np.asarray(d, dtype=float) + self.half_width_m) / self.lane_width_m)
        idx = np.clip(idx, 0, self.lane_count - 1).astype(int)
        return int(idx) if idx.ndim == 0 else idx

    def on_road(self, d):
        """Whether lateral offset ``d`` is on the paved road: ``|d| <= half_width_m + shoulder_m``."""
        out = np.abs(np.asarray(d, dtype=float)) <= self.half_width_m + self.shoulder_m
        return bool(out) if out.ndim == 0 else out

    def lane_lines_d(self) -> np.ndarray:
        """Lateral offsets (m) of the lane boundary lines, right edge to left edge: ``(lane_count + 1,)``."""
        return -self.half_width_m + self.lane_width_m * np.arange(self.lane_count + 1)

    # ------------------------------------------------------------------ projection
    def project(self, xy: np.ndarray, s_hint=None, window_m: float | None = None) -> FrenetPoint:
        """Frenet coordinates of world point(s) ``xy`` (``(2,)`` or ``(M, 2)``).

        The foot point is exact on the polyline (interpolated inside segments, not the nearest vertex): ``s`` is
        where the interpolated normal through ``xy`` meets the centre line, so ``project(position(s, d)) == (s, d)``.
        Without a hint the part of the road nearest the point wins (nearest vertex, then the smallest ``|d|`` among
        the feet within 5 m of it); with one, the foot found near the hint.

        :param s_hint: where the point is expected (a scalar, or one per point). With it only segments within
            ``window_m`` of the hint are searched (wrapping round a closed road). For one point this walks from
            the hinted segment to the right one in a few microseconds: call it every physics step.
        :param window_m: half-size of the search window around ``s_hint`` (m); default 10 m. Without a hint the
            search starts at the nearest vertex and looks 5 m either side of it.
        :return: :class:`FrenetPoint` of floats for ``(2,)`` input, of ``(M,)`` arrays for ``(M, 2)`` input.
        """
        p = np.asarray(xy, dtype=float)
        if p.ndim not in (1, 2) or p.shape[-1] != 2:
            raise ValueError(f"project: xy must have shape (2,) or (M, 2), got {p.shape}")
        single = p.ndim == 1
        pts = p[None, :] if single else p
        if s_hint is None:
            # Global search: the nearest vertex (cheap squared distances to all of them), then the exact foot among
            # the segments around it.
            s_hint = self._nearest_vertex_s(pts)
            window_m = _REFINE_WINDOW_M
            if single:
                s_hint = float(s_hint[0])
        elif window_m is None:
            window_m = _DEFAULT_WINDOW_M
        if single:
            if isinstance(s_hint, _SCALARS):
                found = self._walk(float(p[0]), float(p[1]), float(s_hint), float(window_m))
                if found is not None:
                    return found
            return FrenetPoint(*(float(v[0]) for v in self._project_many(pts, s_hint, window_m)))
        return self._project_many(pts, s_hint, window_m)

    def project_point(self, x: float, y: float, s_hint: float, window_m: float = _DEFAULT_WINDOW_M) -> FrenetPoint:
        """:meth:`project` of one point near a hint, for callers at simulation rate: plain floats in and
        out, no array built. The same result as ``project(np.array([x, y]), s_hint, window_m)``."""
        found = self._walk(x, y, s_hint, window_m)
        if found is not None:
            return found
        return self.project(np.array([x, y]), s_hint=s_hint, window_m=window_m)

    def _nearest_vertex_s(self, p: np.ndarray) -> np.ndarray:
        x, y = self.points[:, 0], self.points[:, 1]
        chunk = max(1, 4_000_000 // len(x))
        k = np.concatenate([
            np.argmin((p[i : i + chunk, 0:1] - x) ** 2 + (p[i : i + chunk, 1:2] - y) ** 2, axis=1)
            for i in range(0, len(p), chunk)
        ])
        return self.s[k]

    def _project_many(self, p: np.ndarray, s_hint, window_m: float) -> FrenetPoint:
        m = len(p)
        hint = np.broadcast_to(np.asarray(self.wrap_s(s_hint), dtype=float), (m,))
        k0 = self._segment_of(hint)
        reach = min(int(math.ceil(window_m / self._min_seg_len)) + 1, self._n_seg)
        offsets = np.arange(-reach, reach + 1)
        if self.closed and 2 * reach + 1 >= self._n_seg:
            return self._best_of(p, None)
        cand = k0[:, None] + offsets[None, :]
        if self.closed:
            cand = np.mod(cand, self._n_seg)
        else:
            cand = np.minimum(np.maximum(cand, 0), self._n_seg - 1)
        chunk = max(1, 2_000_000 // cand.shape[1])
        if m <= chunk:
            return self._best_of(p, cand)
        parts = [self._best_of(p[i : i + chunk], cand[i : i + chunk]) for i in range(0, m, chunk)]
        return FrenetPoint(*(np.concatenate(cols) for cols in zip(*parts)))

    def _best_of(self, p: np.ndarray, cand: np.ndarray | None) -> FrenetPoint:
        """Best foot of each point over candidate segments ``cand`` (``(M, C)``; all segments if None)."""
        # One gather of all per-segment columns: (10, M, C), or a (10, 1, n_seg) view for the global search.
        tab = self._table[:, None, :] if cand is None else self._table[:, cand]
        ax, ay, ex, ey, nax, nay, dnx, dny, c_ne, c_de = tab
        qx = p[:, 0:1] - ax
        qy = p[:, 1:2] - ay
        t_raw = _solve_t(qx, qy, nax, nay, dnx, dny, c_ne, c_de)
        t = np.minimum(np.maximum(t_raw, 0.0), 1.0)
        rx = qx - t * ex
        ry = qy - t * ey
        # A foot inside its segment beats a clipped one at the segment end, unless the clipped one is much closer
        # (only matters beyond the ends of an open road): on the outside of a bend the vertex itself can be a
        # hair closer than the true foot just past it.
        outside = np.abs(t_raw - t) > _T_TOLERANCE
        score = rx * rx + ry * ry + outside * (2.0 * self.road_half_width_m + 1.0) ** 2
        best = np.argmin(score, axis=1)
        rows = np.arange(len(p))
        kb = best if cand is None else cand[rows, best]
        tb = t[rows, best]
        col = self._table[:, kb]  # (10, M)
        nx = col[4] + tb * col[6]
        ny = col[5] + tb * col[7]
        px = p[:, 0] - col[0] - tb * col[2]
        py = p[:, 1] - col[1] - tb * col[3]
        d = (px * nx + py * ny) / np.hypot(nx, ny)
        s = self._s_ext[kb] + tb * self._seg_len[kb]
        heading = self._heading_ext[kb] + tb * (self._heading_ext[kb + 1] - self._heading_ext[kb])
        curvature = self._curvature_ext[kb] + tb * (self._curvature_ext[kb + 1] - self._curvature_ext[kb])
        if self.closed:
            s = np.where(s >= self.length_m, s - self.length_m, s)
        return FrenetPoint(s, d, wrap_angle(heading), curvature)

    def _walk(self, px: float, py: float, s_hint: float, window_m: float) -> FrenetPoint | None:
        """One-point projection by walking segment to segment from the hint; None if it leaves the window."""
        n_seg = self._n_seg
        s_list = self._s_list
        if self.closed:
            s_hint = s_hint % self.length_m
        else:
            s_hint = min(max(s_hint, 0.0), self.length_m)
        k = min(max(bisect.bisect_right(s_list, s_hint) - 1, 0), n_seg - 1)
        max_steps = int(window_m / self._min_seg_len) + 1
        rows = self._rows
        last_move = 0
        t = 0.0
        for _ in range(max_steps + 1):
            ax, ay, ex, ey, nax, nay, dnx, dny, c_ne, c_de = rows[k]
            qx = px - ax
            qy = py - ay
            a0 = nax * qy - nay * qx
            a1 = (dnx * qy - dny * qx) - c_ne
            a2 = -c_de
            disc = a1 * a1 - 4.0 * a2 * a0
            root = math.sqrt(disc) if disc > 0.0 else 0.0
            denom = a1 + root if a1 >= 0.0 else a1 - root
            t = -2.0 * a0 / denom if denom != 0.0 else 0.0
            if t < -_T_TOLERANCE:
                if last_move == 1 or (not self.closed and k == 0):
                    t = 0.0  # bounced between two segments, or before the start of an open road
                    break
                k = k - 1 if k > 0 else n_seg - 1
                last_move = -1
            elif t > 1.0 + _T_TOLERANCE:
                if last_move == -1 or (not self.closed and k == n_seg - 1):
                    t = 1.0
                    break
                k = k + 1 if k < n_seg - 1 else 0
                last_move = 1
            else:
                t = min(max(t, 0.0), 1.0)
                break
        else:
            return None
        nx = nax + t * dnx
        ny = nay + t * dny
        norm = math.hypot(nx, ny)
        rx = qx - t * ex
        ry = qy - t * ey
        d = (rx * nx + ry * ny) / norm
        s = s_list[k] + t * self._seg_len_list[k]
        if self.closed and s >= self.length_m:
            s -= self.length_m
        h = self._heading_list
        c = self._curvature_list
        heading = h[k] + t * (h[k + 1] - h[k])
        heading = heading - _TWO_PI * math.ceil((heading - math.pi) / _TWO_PI)
        return FrenetPoint(s, d, heading, c[k] + t * (c[k + 1] - c[k]))

    def __repr__(self) -> str:
        kind = "closed" if self.closed else "open"
        return (
            f"Road({kind}, length_m={self.length_m:.1f}, points={len(self.points)}, lane_count={self.lane_count}, "
            f"lane_width_m={self.lane_width_m:g}, shoulder_m={self.shoulder_m:g})"
        )


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _solve_t(qx, qy, nax, nay, dnx, dny, c_ne, c_de):
    """Segment parameter ``t`` where the interpolated normal ``n(t) = n_a + t·Δn`` through the point passes.

    With ``q = p − a`` the condition ``cross(n(t), q − t·e) = 0`` is the quadratic
    ``−cross(Δn, e)·t² + (cross(Δn, q) − cross(n_a, e))·t + cross(n_a, q) = 0``; ``cross(n_a, e) ≈ −|e|`` so the
    linear term dominates, and the root continuous with the linear solution is taken in the cancellation-free form
    ``t = −2c / (b + sign(b)·√(b² − 4ac))``.
    """
    a0 = nax * qy - nay * qx
    a1 = (dnx * qy - dny * qx) - c_ne
    a2 = -c_de
    root = np.sqrt(np.maximum(a1 * a1 - 4.0 * a2 * a0, 0.0))
    denom = np.where(a1 >= 0.0, a1 + root, a1 - root)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(denom != 0.0, -2.0 * a0 / denom, 0.0)
    return t


# ---------------------------------------------------------------------- road builders
def straight_road(length_m: float, lane_count: int = 1, lane_width_m: float = 3.5, shoulder_m: float = 0.5,
                  spacing_m: float = 1.0) -> Road:
    """An open straight road along +x from the origin, ``length_m`` long (heading 0, curvature 0)."""
    if not length_m > 0:
        raise ValueError(f"straight_road length_m must be > 0, got {length_m!r}")
    n = max(2, int(math.ceil(length_m / spacing_m)) + 1)
    x = np.linspace(0.0, float(length_m), n)
    points = np.stack([x, np.zeros(n)], axis=1)
    return Road(points, closed=False, lane_count=lane_count, lane_width_m=lane_width_m, shoulder_m=shoulder_m,
                heading=np.zeros(n), curvature=np.zeros(n))


# Dense θ grid used to measure the radial curve (length, curvature, clearance) before resampling by arc length.
_DENSE_SAMPLES = 8192
# Each retry multiplies the Fourier amplitudes by this factor.
_SHRINK = 0.85
_MAX_SHRINKS = 60
# Half-size (m) of the window over which the start point looks for the straightest stretch.
_STRAIGHT_WINDOW_M = 15.0


@functools.lru_cache(maxsize=8)
def _unit_harmonics(samples: int, max_harmonic: int) -> tuple[np.ndarray, np.ndarray]:
    """cos(kθ) and sin(kθ) on the grid θ_j = 2πj/samples for k = 2..max_harmonic: the same for every
    track, so computed once per process (read-only)."""
    harmonics = np.arange(2, max_harmonic + 1, dtype=float)
    theta = np.linspace(0.0, _TWO_PI, samples, endpoint=False)
    arg = harmonics[:, None] * theta[None, :]
    cos, sin = np.cos(arg), np.sin(arg)
    cos.flags.writeable = sin.flags.writeable = False
    return cos, sin


def _radial_curve_on_grid(samples: int, shifts: np.ndarray, amps: np.ndarray, harmonics: np.ndarray):
    """:func:`_radial_curve` on the uniform grid θ_j = 2πj/samples with phases ``shifts``.

    By the angle-addition formulas, ``Σ a_k cos(kθ + c_k) = Σ (a_k cos c_k) cos kθ − (a_k sin c_k) sin kθ``:
    a few matrix-vector products with the cached unit harmonics instead of new cosines for every
    track (a track is built every episode, and the trigonometry was most of its cost).
    """
    cos, sin = _unit_harmonics(samples, int(harmonics[-1]))
    a_cos, a_sin = amps * np.cos(shifts), amps * np.sin(shifts)
    r = 1.0 + a_cos @ cos - a_sin @ sin
    dr = -((a_cos * harmonics) @ sin + (a_sin * harmonics) @ cos)
    ddr = -((a_cos * harmonics**2) @ cos - (a_sin * harmonics**2) @ sin)
    return r, dr, ddr


def _radial_curve(theta: np.ndarray, amps: np.ndarray, phases: np.ndarray, harmonics: np.ndarray):
    """Unit-scale radius r(θ) = 1 + Σ a_k cos(kθ + φ_k) and its first two derivatives (analytic)."""
    arg = harmonics[:, None] * theta[None, :] + phases[:, None]
    cos, sin = np.cos(arg), np.sin(arg)
    r = 1.0 + amps @ cos
    dr = -(amps * harmonics) @ sin
    ddr = -(amps * harmonics**2) @ cos
    return r, dr, ddr


def _curve_geometry(theta, r, dr, ddr):
    """Points, tangent yaw and signed curvature of the polar curve (r(θ) cos θ, r(θ) sin θ), θ increasing = CCW."""
    cos, sin = np.cos(theta), np.sin(theta)
    points = np.stack([r * cos, r * sin], axis=1)
    dx = dr * cos - r * sin
    dy = dr * sin + r * cos
    heading = np.unwrap(np.arctan2(dy, dx))
    return points, heading, _curvature(r, dr, ddr)


def _curvature(r, dr, ddr):
    """Signed curvature of the polar curve r(θ), from its analytic derivatives."""
    return (r**2 + 2.0 * dr**2 - r * ddr) / (r**2 + dr**2) ** 1.5


def _has_far_pair_within(points: np.ndarray, s: np.ndarray, length: float, min_separation_m: float,
                         distance_m: float) -> bool:
    """Whether two points whose arc-length separation (round the loop) exceeds ``min_separation_m`` lie
    within ``distance_m`` of each other: a pinch between distant parts of the road.

    Points are binned into square cells ``distance_m`` wide, so only pairs in the same or neighbouring
    cells are measured: this runs for every track an episode draws, and measuring all n² pairs was
    most of :func:`generate_track`'s time.
    """
    cells = np.floor(points / distance_m).astype(np.int64)
    cells -= cells.min(axis=0)
    width = int(cells[:, 1].max()) + 3  # row stride of the cell key, with room for the ±1 neighbours
    keys = (cells[:, 0] + 1) * width + cells[:, 1] + 1
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    # Each unordered pair of neighbouring cells once: the cell itself, and four of its eight neighbours.
    for offset in (0, 1, width - 1, width, width + 1):
        lo = np.searchsorted(sorted_keys, keys + offset, side="left")
        counts = np.searchsorted(sorted_keys, keys + offset, side="right") - lo
        first = np.repeat(np.arange(len(points)), counts)
        if len(first) == 0:
            continue
        starts = np.repeat(lo - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
        second = order[starts + np.arange(len(first))]
        delta = points[first] - points[second]
        close = delta[:, 0] ** 2 + delta[:, 1] ** 2 <= distance_m * distance_m
        sep = np.abs(s[first[close]] - s[second[close]])
        if np.any(np.minimum(sep, length - sep) > min_separation_m):
            return True
    return False


def generate_track(seed: int, spec: TrackSpec = TrackSpec()) -> Road:
    """A procedural closed track, the same for the same seed (bit-identical arrays).

    The centre line is a radial Fourier loop ``r(θ) = R0·(1 + Σ_k a_k cos(kθ + φ_k))``, ``k = 2..max_harmonic``, with
    random amplitudes (decaying with ``k``) and phases from ``numpy.random.default_rng(seed)``. ``R0`` makes the lap
    exactly ``spec.length_m``; the amplitudes shrink until

    * ``|curvature| <= spec.max_curvature_1pm`` everywhere (and the radius of curvature stays above the road width,
      so the inner edge never folds over),
    * two non-neighbouring parts of the road keep ``spec.edge_clearance_m`` of unpaved ground between their edges.

    Points are resampled uniformly in arc length (spacing at most ``spec.sample_spacing_m``); headings and curvatures
    come from the analytic derivatives, so they are smooth. ``s = 0`` is at the middle of the straightest stretch and
    the driving direction is counter-clockwise.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"generate_track seed must be a non-negative integer, got {seed!r}")
    if not isinstance(spec, TrackSpec):
        raise ValueError(f"generate_track spec must be a TrackSpec, got {type(spec).__name__}")
    rng = np.random.default_rng(int(seed))
    harmonics = np.arange(2, spec.max_harmonic + 1, dtype=float)
    # Amplitudes decay like 1/k² so that every harmonic claims a similar share of the curvature budget
    # (the curvature of harmonic k grows like k²·a_k).
    raw = rng.uniform(0.2, 1.0, size=len(harmonics)) / harmonics**2
    phases = rng.uniform(0.0, _TWO_PI, size=len(harmonics))
    amps = raw * (spec.perturbation / raw.sum()) if raw.sum() > 0 else raw

    kappa_limit = spec.effective_max_curvature_1pm
    half = spec.road_half_width_m
    theta = np.linspace(0.0, _TWO_PI, _DENSE_SAMPLES, endpoint=False)
    cos_theta, sin_theta = np.cos(theta), np.sin(theta)
    for _ in range(_MAX_SHRINKS):
        r, dr, ddr = _radial_curve_on_grid(_DENSE_SAMPLES, phases, amps, harmonics)
        speed = np.sqrt(r**2 + dr**2)  # |dc/dθ| at unit scale
        # Trapezoid rule on the periodic integrand (spectrally accurate).
        unit_length = float(speed.mean() * _TWO_PI)
        scale = spec.length_m / unit_length
        kappa = _curvature(r, dr, ddr)
        ok = np.all(r > 0.05) and np.max(np.abs(kappa)) / scale <= kappa_limit
        if ok:
            coarse = slice(None, None, 16)  # ~L/512 m apart: enough to see a pinch between distant parts
            s_coarse = np.concatenate([[0.0], np.cumsum(speed[coarse][:-1])]) * (_TWO_PI * 16 / _DENSE_SAMPLES) * scale
            pts_coarse = np.stack([r * cos_theta, r * sin_theta], axis=1)[coarse] * scale
            ok = not _has_far_pair_within(pts_coarse, s_coarse, spec.length_m, math.pi * half + 4.0 * half,
                                          2.0 * half + spec.edge_clearance_m)
        if ok:
            break
        amps = amps * _SHRINK
    else:  # pragma: no cover - the circle (amps → 0) always satisfies the TrackSpec's own feasibility check
        amps = amps * 0.0
        r, dr, ddr = _radial_curve_on_grid(_DENSE_SAMPLES, phases, amps, harmonics)
        speed = np.sqrt(r**2 + dr**2)
        scale = spec.length_m / float(speed.mean() * _TWO_PI)
        kappa = _curvature(r, dr, ddr)

    # Start on the straightest stretch: smallest mean |curvature| over ±_STRAIGHT_WINDOW_M.
    ds_dense = speed * (_TWO_PI / _DENSE_SAMPLES) * scale
    half_window = max(1, int(_STRAIGHT_WINDOW_M / float(ds_dense.mean())))
    padded = np.concatenate([np.abs(kappa)[-half_window:], np.abs(kappa), np.abs(kappa)[:half_window]])
    # Moving sums over 2·half_window + 1 samples, from one cumulative sum (a convolution cost 0.6 ms).
    cumulative = np.concatenate([[0.0], np.cumsum(padded)])
    start = int(np.argmin(cumulative[2 * half_window + 1:] - cumulative[:-2 * half_window - 1]))
    theta0 = theta[start]

    # Arc length as a function of θ from θ0 (cumulative trapezoid on a dense grid), then θ at uniform arc-length
    # stations by interpolation: spacing errors are far below a millimetre.
    fine = theta0 + np.linspace(0.0, _TWO_PI, 4 * _DENSE_SAMPLES + 1)
    # On the fine grid from θ0 round to θ0 + 2π; its last point closes the loop (k is an integer).
    rf, drf, _ = _radial_curve_on_grid(4 * _DENSE_SAMPLES, harmonics * theta0 + phases, amps, harmonics)
    rf, drf = np.append(rf, rf[0]), np.append(drf, drf[0])
    speed_f = np.sqrt(rf**2 + drf**2) * scale
    arc = np.concatenate([[0.0], np.cumsum(0.5 * (speed_f[1:] + speed_f[:-1]) * np.diff(fine))])
    total = float(arc[-1])
    n = int(math.ceil(total / spec.sample_spacing_m - 1e-6))  # 400.0000001 m at 0.5 m: 800 points, not 801
    stations = np.arange(n) * (total / n)
    th = np.interp(stations, arc, fine)

    r, dr, ddr = _radial_curve(th, amps, phases, harmonics)
    points, heading, curvature = _curve_geometry(th, r, dr, ddr)
    points = points * scale
    curvature = curvature / scale
    return Road(points, closed=True, lane_count=spec.lane_count, lane_width_m=spec.lane_width_m,
                shoulder_m=spec.shoulder_m, heading=heading, curvature=curvature)
