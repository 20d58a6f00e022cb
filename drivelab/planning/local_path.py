"""The lane ahead in the vehicle's own frame, planned from the road-relative driving state alone.

Perception hands the planner only what a camera can estimate: the car's offset and heading relative
to its lane and the lane's curvature at a few distances ahead. Integrating that curvature from the
car's pose rebuilds the lane centre ahead, expressed where a tracker needs it: in the car's frame
(x forward, y left, origin at the car's reference point). Nothing here needs the world's map, so a
driver built on it runs unchanged on ground truth or on a CNN's estimate.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from drivelab.planning.reference import ReferencePath


def local_lane_path(
    lateral_offset_m: float,
    heading_error_rad: float,
    preview_distances_m: Sequence[float],
    preview_curvatures_1pm: Sequence[float],
    *,
    horizon_m: float = 30.0,
    spacing_m: float = 1.0,
) -> ReferencePath:
    """The lane centre ahead in the vehicle frame.

    :param lateral_offset_m: the car's offset from the lane centre, left positive.
    :param heading_error_rad: car yaw minus lane tangent yaw.
    :param preview_distances_m: arc lengths ahead (increasing) at which the curvature is known.
    :param preview_curvatures_1pm: lane curvature at those distances (left positive); linearly
        interpolated between them and held beyond the last one.
    :param horizon_m: how far ahead along the lane to plan.
    :param spacing_m: distance between path points.
    :return: points (x forward, y left), headings relative to the car's yaw, curvatures, and arc
        lengths along the lane from the point abreast of the car.
    """
    if not spacing_m > 0 or not horizon_m > 0:
        raise ValueError(f"horizon_m and spacing_m must be > 0, got {horizon_m!r} and {spacing_m!r}")
    s = np.arange(0.0, horizon_m + spacing_m / 2, spacing_m)
    curvature = np.interp(s, np.asarray(preview_distances_m, float), np.asarray(preview_curvatures_1pm, float))
    # Lane frame: the lane-centre point abreast of the car at the origin, tangent along +x.
    # Trapezoidal integration of curvature → heading → position (midpoint headings for the chords).
    heading = np.concatenate(([0.0], np.cumsum(0.5 * (curvature[1:] + curvature[:-1]) * spacing_m)))
    mid_heading = 0.5 * (heading[1:] + heading[:-1])
    x = np.concatenate(([0.0], np.cumsum(np.cos(mid_heading) * spacing_m)))
    y = np.concatenate(([0.0], np.cumsum(np.sin(mid_heading) * spacing_m)))
    # Into the car's frame: the car sits at (0, lateral_offset) in the lane frame, rotated by heading_error.
    cos_e, sin_e = np.cos(heading_error_rad), np.sin(heading_error_rad)
    dx, dy = x, y - lateral_offset_m
    points = np.stack((cos_e * dx + sin_e * dy, -sin_e * dx + cos_e * dy), axis=-1)
    return ReferencePath(s=s, points=points, heading=heading - heading_error_rad, curvature=curvature)
