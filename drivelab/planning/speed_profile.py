"""Speed profiles: the fastest speed along a path that respects lateral-acceleration and accel/brake limits."""

from __future__ import annotations

import bisect
import math

import numpy as np

from drivelab.planning.road import Road

__all__ = ["LaneSpeedProfile", "lane_speed_profile", "speed_profile", "target_speed_at"]


def _check_positive(name: str, value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def _forward_limit(v2_cap: np.ndarray, step_v2: float) -> np.ndarray:
    """Largest v² with v²[i+1] <= v²[i] + step_v2 and v² <= v2_cap.

    The sequential pass ``v²[i+1] = min(cap[i+1], v²[i] + step)`` unrolls to
    ``v²[i] = min_{j<=i}(cap[j] + step·(i − j))``: a running minimum, so no Python loop is needed.
    """
    ramp = step_v2 * np.arange(len(v2_cap))
    return np.minimum.accumulate(v2_cap - ramp) + ramp


def speed_profile(
    curvature: np.ndarray,
    spacing_m: float,
    max_speed_mps: float,
    max_lateral_accel_mps2: float = 2.5,
    max_accel_mps2: float = 2.0,
    max_decel_mps2: float = 3.0,
    closed: bool = False,
    *,
    initial_speed_mps: float | None = None,
    final_speed_mps: float | None = None,
) -> np.ndarray:
    """Target speed (m/s) at each of ``K`` points spaced ``spacing_m`` apart along a path.

    First the cornering limit ``v = min(max_speed, sqrt(a_lat / |κ|))``; then a forward pass so that
    ``v[i+1]² <= v[i]² + 2·max_accel·ds`` and a backward pass so that ``v[i]² <= v[i+1]² + 2·max_decel·ds``
    (the car brakes before a bend and accelerates out of it, never faster than allowed).

    :param curvature: ``(K,)`` path curvature (1/m), either sign.
    :param spacing_m: arc length between consecutive points (m).
    :param closed: the path is a loop (point ``K−1`` is followed by point 0, ``spacing_m`` later): the limits then
        hold across the wrap-around too.
    :param initial_speed_mps: optional cap on ``v[0]`` (the current speed, for a profile that starts at the car).
    :param final_speed_mps: optional cap on ``v[K−1]`` (for example 0 to stop at the end of an open road).
    :return: ``(K,)`` speeds (m/s).
    """
    kappa = np.abs(np.asarray(curvature, dtype=float))
    if kappa.ndim != 1:
        raise ValueError(f"speed_profile curvature must be a 1-D array, got shape {kappa.shape}")
    for name, value in (("spacing_m", spacing_m), ("max_speed_mps", max_speed_mps),
                        ("max_lateral_accel_mps2", max_lateral_accel_mps2), ("max_accel_mps2", max_accel_mps2),
                        ("max_decel_mps2", max_decel_mps2)):
        _check_positive(f"speed_profile {name}", value)
    if len(kappa) == 0:
        return np.zeros(0)

    with np.errstate(divide="ignore"):
        v2 = np.minimum(max_speed_mps**2, max_lateral_accel_mps2 / kappa)
    if initial_speed_mps is not None:
        v2[0] = min(v2[0], max(float(initial_speed_mps), 0.0) ** 2)
    if final_speed_mps is not None:
        v2[-1] = min(v2[-1], max(float(final_speed_mps), 0.0) ** 2)

    up = 2.0 * max_accel_mps2 * spacing_m
    down = 2.0 * max_decel_mps2 * spacing_m
    if closed:
        # A limit never needs to propagate more than one lap (going round again only loosens it), so solving the
        # open problem on three copies and keeping the middle one gives the periodic answer.
        k = len(v2)
        tiled = np.tile(v2, 3)
        tiled = _forward_limit(tiled, up)
        tiled = _forward_limit(tiled[::-1], down)[::-1]
        v2 = tiled[k : 2 * k]
    else:
        v2 = _forward_limit(v2, up)
        v2 = _forward_limit(v2[::-1], down)[::-1]
    return np.sqrt(np.maximum(v2, 0.0))


def target_speed_at(
    road: Road,
    s: float,
    max_speed_mps: float,
    max_lateral_accel_mps2: float = 2.5,
    max_decel_mps2: float = 3.0,
    *,
    d: float = 0.0,
    spacing_m: float = 1.0,
    stop_at_end: bool = False,
) -> float:
    """Speed set-point (m/s) for a vehicle at arc length ``s`` (lateral offset ``d``) on ``road``.

    Looks ahead the braking distance from ``max_speed_mps`` (``v²/(2·max_decel)``, plus two samples), so that the
    set-point already drops when a bend comes within braking range.

    :param d: the lane offset driven (m): a lane at offset ``d`` has curvature ``κ/(1 − κ·d)``.
    :param stop_at_end: on an open road, plan to stand still at its end.
    """
    _check_positive("target_speed_at max_speed_mps", max_speed_mps)
    _check_positive("target_speed_at max_decel_mps2", max_decel_mps2)
    _check_positive("target_speed_at spacing_m", spacing_m)
    lookahead_m = max_speed_mps**2 / (2.0 * max_decel_mps2) + 2.0 * spacing_m
    distances = np.arange(0.0, lookahead_m + spacing_m, spacing_m)
    kappa = lane_curvature(road.preview_curvature(float(s), distances), d)
    v = speed_profile(kappa, spacing_m, max_speed_mps, max_lateral_accel_mps2,
                      max_accel_mps2=1.0, max_decel_mps2=max_decel_mps2)
    if stop_at_end and not road.closed:
        remaining_m = max(road.length_m - float(s), 0.0)
        return float(min(v[0], math.sqrt(2.0 * max_decel_mps2 * remaining_m)))
    return float(v[0])


def lane_curvature(kappa: np.ndarray, d: float) -> np.ndarray:
    """Curvature of the lane at lateral offset ``d`` beside a centre line of curvature ``kappa``: ``κ/(1 − κ·d)``
    (the denominator kept above 1e-3 where the offset passes the centre of curvature)."""
    return kappa / np.maximum(1.0 - kappa * d, 1e-3)


class LaneSpeedProfile:
    """The target speed along one lane of a whole road, planned once per road (see :func:`lane_speed_profile`).

    :meth:`at` looks a speed up in about a microsecond, so a controller can follow the plan every step.
    """

    def __init__(self, s_m: np.ndarray, speed_mps: np.ndarray, *, closed: bool, length_m: float) -> None:
        self.s_m = np.asarray(s_m, dtype=float)
        self.speed_mps = np.asarray(speed_mps, dtype=float)
        self.closed = closed
        self.length_m = float(length_m)
        self._s = self.s_m.tolist() + ([self.length_m] if closed else [])
        self._v = self.speed_mps.tolist() + ([float(self.speed_mps[0])] if closed else [])

    def at(self, s: float) -> float:
        """Target speed (m/s) at arc length ``s`` (wrapped on a closed road, clipped on an open one), linearly interpolated."""
        s_list, v_list = self._s, self._v
        s = s % self.length_m if self.closed else min(max(s, s_list[0]), s_list[-1])
        k = min(bisect.bisect_right(s_list, s) - 1, len(s_list) - 2)
        fraction = (s - s_list[k]) / (s_list[k + 1] - s_list[k])
        return v_list[k] + fraction * (v_list[k + 1] - v_list[k])

    @property
    def min_speed_mps(self) -> float:
        return float(self.speed_mps.min())


def lane_speed_profile(
    road: Road,
    lane_d: float,
    max_speed_mps: float,
    max_lateral_accel_mps2: float,
    max_accel_mps2: float = 2.0,
    max_decel_mps2: float = 3.0,
) -> LaneSpeedProfile:
    """Plan the speed along the lane at lateral offset ``lane_d`` of a whole road: :func:`speed_profile` on the
    lane's curvature ``κ/(1 − κ·d)`` at the road's own points, round the loop on a closed road.

    The car brakes (at most ``max_decel_mps2``) before each bend so that it enters no faster than
    ``sqrt(max_lateral_accel / |κ|)``, and accelerates out of it (at most ``max_accel_mps2``).
    """
    kappa = lane_curvature(np.asarray(road.curvature, dtype=float), lane_d)
    spacing = road.length_m / len(kappa) if road.closed else float(np.mean(np.diff(road.s)))
    speed = speed_profile(kappa, spacing, max_speed_mps, max_lateral_accel_mps2, max_accel_mps2, max_decel_mps2,
                          closed=road.closed)
    return LaneSpeedProfile(road.s, speed, closed=road.closed, length_m=road.length_m)
