"""Road-relative state (cross-track error, heading error, curvature) for simple reference paths.

The lateral trackers take the road-relative state that perception delivers, not a map. To test
them without a simulator, ``StraightPath`` and ``CirclePath`` turn a vehicle pose into that state,
and ``shift_reference_point`` moves the state from one point of the vehicle to another (e.g. from
the rear axle to the front axle, for Stanley). The lab's real road geometry lives in
``drivelab.planning``.

Conventions (ISO, as in DESIGN.md): cross-track error is the signed lateral offset of the
vehicle's reference point from the path, left positive, in m; heading error is vehicle yaw minus
path tangent yaw, wrapped to (-pi, pi]; curvature is positive for a path turning left, in 1/m.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Below this curvature (radius above 1000 km) a path is treated as straight, to avoid 1/curvature.
STRAIGHT_CURVATURE_1PM = 1e-6


def wrap_angle_rad(angle_rad: float) -> float:
    """Wrap an angle to (-pi, pi].

    :param angle_rad: any angle in rad.
    """
    wrapped = math.remainder(angle_rad, 2.0 * math.pi)
    return math.pi if wrapped == -math.pi else wrapped


@dataclass(frozen=True)
class PathErrors:
    """The road-relative state of a vehicle reference point.

    :param cross_track_error_m: signed lateral offset from the path, left positive, in m.
    :param heading_error_rad: vehicle yaw minus path tangent yaw, in (-pi, pi].
    :param path_curvature_1pm: curvature of the path at the projection, left positive, in 1/m.
    """

    cross_track_error_m: float
    heading_error_rad: float
    path_curvature_1pm: float


def shift_reference_point(
    cross_track_error_m: float,
    heading_error_rad: float,
    forward_offset_m: float,
    path_curvature_1pm: float = 0.0,
) -> tuple[float, float]:
    """Road-relative state of the point ``forward_offset_m`` ahead on the vehicle's axis.

    Exact for a straight path and for a path that is locally a circle of the given curvature
    (the vehicle within the circle's radius of it). Typical uses: rear axle -> front axle with
    ``forward_offset_m = wheelbase_m`` (Stanley); centre of gravity -> rear axle with
    ``forward_offset_m = -distance_cg_to_rear_axle_m``.

    :param cross_track_error_m: cross-track error of the current reference point, in m.
    :param heading_error_rad: heading error at the current reference point's projection, in rad.
    :param forward_offset_m: how far ahead (negative: behind) the new point lies, in m.
    :param path_curvature_1pm: path curvature, left positive, in 1/m.
    :return: ``(cross_track_error_m, heading_error_rad)`` of the new point; the heading error is
        relative to the path tangent at the new point's projection.
    """
    # Local frame: origin at the current point's projection onto the path, x along the tangent.
    px = forward_offset_m * math.cos(heading_error_rad)
    py = cross_track_error_m + forward_offset_m * math.sin(heading_error_rad)
    if abs(path_curvature_1pm) < STRAIGHT_CURVATURE_1PM:
        return py, heading_error_rad
    radius_m = 1.0 / path_curvature_1pm  # signed: the centre is at (0, radius_m)
    to_point = (px, py - radius_m)
    new_cross_track_m = radius_m - math.copysign(math.hypot(*to_point), radius_m)
    # Signed angle swept around the centre from the origin's projection to the new point's:
    # from (0, -radius_m) to to_point, counter-clockwise positive.
    swept_rad = math.atan2(radius_m * to_point[0], -radius_m * to_point[1])
    return new_cross_track_m, wrap_angle_rad(heading_error_rad - swept_rad)


@dataclass(frozen=True)
class StraightPath:
    """A straight line through ``(x0_m, y0_m)`` with direction ``yaw_rad``.

    :param x0_m: x of a point on the line, in m.
    :param y0_m: y of a point on the line, in m.
    :param yaw_rad: direction of travel along the line, in rad.
    """

    x0_m: float = 0.0
    y0_m: float = 0.0
    yaw_rad: float = 0.0

    def errors(self, x_m: float, y_m: float, yaw_rad: float) -> PathErrors:
        """Road-relative state of a vehicle point at ``(x_m, y_m)`` heading ``yaw_rad``.

        :param x_m: x of the vehicle's reference point, in m.
        :param y_m: y of the vehicle's reference point, in m.
        :param yaw_rad: vehicle yaw, in rad.
        """
        dx, dy = x_m - self.x0_m, y_m - self.y0_m
        cross_track_m = -math.sin(self.yaw_rad) * dx + math.cos(self.yaw_rad) * dy
        return PathErrors(cross_track_m, wrap_angle_rad(yaw_rad - self.yaw_rad), 0.0)


@dataclass(frozen=True)
class CirclePath:
    """A circle around ``(center_x_m, center_y_m)``, driven counter-clockwise (turning left) if
    ``counter_clockwise`` else clockwise.

    :param radius_m: radius in m (> 0).
    :param center_x_m: x of the centre, in m.
    :param center_y_m: y of the centre, in m.
    :param counter_clockwise: direction of travel.
    """

    radius_m: float
    center_x_m: float = 0.0
    center_y_m: float = 0.0
    counter_clockwise: bool = True

    @property
    def curvature_1pm(self) -> float:
        """Signed curvature: ``+1/radius`` counter-clockwise, ``-1/radius`` clockwise."""
        return (1.0 if self.counter_clockwise else -1.0) / self.radius_m

    def errors(self, x_m: float, y_m: float, yaw_rad: float) -> PathErrors:
        """Road-relative state of a vehicle point at ``(x_m, y_m)`` heading ``yaw_rad``.

        :param x_m: x of the vehicle's reference point, in m.
        :param y_m: y of the vehicle's reference point, in m.
        :param yaw_rad: vehicle yaw, in rad.
        """
        dx, dy = x_m - self.center_x_m, y_m - self.center_y_m
        distance_m = math.hypot(dx, dy)
        bearing_rad = math.atan2(dy, dx)
        if self.counter_clockwise:
            # The centre is on the left: inside the circle is left of the path.
            cross_track_m = self.radius_m - distance_m
            tangent_rad = bearing_rad + math.pi / 2.0
        else:
            cross_track_m = distance_m - self.radius_m
            tangent_rad = bearing_rad - math.pi / 2.0
        return PathErrors(cross_track_m, wrap_angle_rad(yaw_rad - tangent_rad), self.curvature_1pm)
