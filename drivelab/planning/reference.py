"""The reference path ahead of a vehicle: a lane centre line (or a lane change) sampled along the road."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from drivelab.planning.road import Road, wrap_angle
from drivelab.planning.speed_profile import speed_profile

__all__ = ["ReferencePath", "reference_path", "lane_change_path", "lookahead_point"]


@dataclass
class ReferencePath:
    """``K`` stations of the path a vehicle should follow, what the lateral controller tracks and a viewer draws.

    :param s: ``(K,)`` road arc length of each station (m): ``s[0] = road.wrap_s(s_start)`` and then increasing by the
        spacing, *not* wrapped at the end of a lap (``road.wrap_s(s)`` wraps it).
    :param points: ``(K, 2)`` world x, y (m).
    :param heading: ``(K,)`` tangent yaw of the path (rad), wrapped to (-π, π].
    :param curvature: ``(K,)`` curvature of the path itself (1/m), left positive; for a lane at constant offset
        ``d`` that is ``κ/(1 − κ·d)`` of the centre-line curvature ``κ``.
    :param target_speed_mps: ``(K,)`` speed profile along the path, when it was asked for.
    :param d: ``(K,)`` lateral offset of each station from the road centre line (m), left positive.
    """

    s: np.ndarray
    points: np.ndarray
    heading: np.ndarray
    curvature: np.ndarray
    target_speed_mps: np.ndarray | None = None
    d: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.s)

    @property
    def distance_m(self) -> np.ndarray:
        """``(K,)`` distance travelled along the path's own points from the first one (m)."""
        step = np.hypot(*np.diff(self.points, axis=0).T)
        return np.concatenate([[0.0], np.cumsum(step)])


def _stations(road: Road, s_start: float, horizon_m: float, spacing_m: float) -> np.ndarray:
    if not (spacing_m > 0 and math.isfinite(spacing_m)):
        raise ValueError(f"spacing_m must be a finite number > 0, got {spacing_m!r}")
    if not (horizon_m >= 0 and math.isfinite(horizon_m)):
        raise ValueError(f"horizon_m must be a finite number >= 0, got {horizon_m!r}")
    count = int(math.floor(horizon_m / spacing_m + 1e-9)) + 1
    return road.wrap_s(float(s_start)) + spacing_m * np.arange(count)


def _build(road: Road, s: np.ndarray, d: np.ndarray, dd_ds: np.ndarray, d2d_ds2: np.ndarray,
           spacing_m: float, max_speed_mps: float | None, speed_kwargs: dict) -> ReferencePath:
    kappa = np.asarray(road.curvature_at(s), dtype=float)
    # Frenet → Cartesian for a path d(s) beside a centre line of curvature κ (Werling et al. 2010, with κ' neglected):
    # q = 1 − κd, heading offset Δθ = atan(d'/q), κ_path = ((d'' + κ·d'·tanΔθ)·cos²Δθ/q + κ)·cosΔθ/q.
    q = np.maximum(1.0 - kappa * d, 1e-3)
    delta = np.arctan2(dd_ds, q)
    cos_delta = np.cos(delta)
    curvature = ((d2d_ds2 + kappa * dd_ds * np.tan(delta)) * cos_delta**2 / q + kappa) * cos_delta / q
    heading = wrap_angle(np.asarray(road.heading_at(s)) + delta)
    points = road.position(s, d)
    target = None
    if max_speed_mps is not None:
        target = speed_profile(curvature, spacing_m, max_speed_mps, **speed_kwargs)
    return ReferencePath(s=s, points=points, heading=np.asarray(heading, dtype=float), curvature=curvature,
                         target_speed_mps=target, d=d)


def reference_path(
    road: Road,
    s_start: float,
    d_target: float = 0.0,
    horizon_m: float = 50.0,
    spacing_m: float = 1.0,
    *,
    max_speed_mps: float | None = None,
    **speed_kwargs,
) -> ReferencePath:
    """The line at lateral offset ``d_target`` (a lane centre: ``road.lane_center_d(lane)``) ahead of arc length ``s_start``.

    Stations are ``spacing_m`` apart in *centre-line* arc length, ``floor(horizon_m / spacing_m) + 1`` of them; along a
    lane at offset ``d`` on a bend of curvature ``κ`` they are ``spacing_m·(1 − κ·d)`` apart. On an open road stations
    past its end repeat the end point.

    :param max_speed_mps: when given, ``target_speed_mps`` is filled with :func:`speed_profile` along the path
        (``speed_kwargs`` go to it: ``max_lateral_accel_mps2``, ``max_accel_mps2``, ``max_decel_mps2``, ...).
    """
    s = _stations(road, s_start, horizon_m, spacing_m)
    d = np.full(len(s), float(d_target))
    zeros = np.zeros(len(s))
    return _build(road, s, d, zeros, zeros, spacing_m, max_speed_mps, speed_kwargs)


def minimum_jerk(u):
    """The minimum-jerk blend ``b(u) = 10u³ − 15u⁴ + 6u⁵`` and its first two derivatives in ``u``, for ``u`` in [0, 1]
    (a float or an array; clip it first).

    It goes from 0 to 1 with zero slope and curvature at both ends. A lane change from offset ``d_from`` to ``d_to``
    over ``length`` metres of road is ``d = d_from + (d_to − d_from)·b``, with ``dd/ds = (d_to − d_from)·b′/length``
    and ``d²d/ds² = (d_to − d_from)·b″/length²``.
    """
    blend = u * u * u * (10.0 + u * (-15.0 + 6.0 * u))
    slope = 30.0 * u * u * (1.0 - u) ** 2
    curvature = 60.0 * u * (1.0 - u) * (1.0 - 2.0 * u)
    return blend, slope, curvature


def lane_change_path(
    road: Road,
    s_start: float,
    d_from: float,
    d_to: float,
    change_length_m: float = 30.0,
    horizon_m: float = 50.0,
    spacing_m: float = 1.0,
    *,
    max_speed_mps: float | None = None,
    **speed_kwargs,
) -> ReferencePath:
    """A lane change from offset ``d_from`` to ``d_to`` starting at ``s_start`` and finished ``change_length_m`` later.

    The lateral offset follows the quintic ``d(u) = d_from + (d_to − d_from)·(10u³ − 15u⁴ + 6u⁵)``, ``u`` from 0 to 1
    over the manoeuvre: zero lateral speed and acceleration at both ends (:func:`minimum_jerk`), then the path
    stays on ``d_to`` to the end of the horizon. Same stations as :func:`reference_path`.
    """
    if not (change_length_m > 0 and math.isfinite(change_length_m)):
        raise ValueError(f"change_length_m must be a finite number > 0, got {change_length_m!r}")
    s = _stations(road, s_start, horizon_m, spacing_m)
    u = np.clip((s - s[0]) / change_length_m, 0.0, 1.0)
    span = float(d_to) - float(d_from)
    blend, slope, curvature = minimum_jerk(u)
    d = float(d_from) + span * blend
    return _build(road, s, d, span * slope / change_length_m, span * curvature / change_length_m**2, spacing_m,
                  max_speed_mps, speed_kwargs)


def lookahead_point(road: Road, s: float, d_target: float, distance_m: float) -> tuple[float, float]:
    """World ``(x, y)`` of the point ``distance_m`` ahead of arc length ``s`` (along the centre line) at lateral
    offset ``d_target``: the pure-pursuit target."""
    x, y = road.position(float(s) + float(distance_m), float(d_target))
    return float(x), float(y)
