"""Path planning: road geometry in Frenet coordinates, reference paths along a lane, lane changes, speed profiles,
and the models of other drivers that a planner predicts them with (IDM, MOBIL).

Pure numpy: no simulator, no torch, so everything here is unit-tested in milliseconds.
"""

from drivelab.planning.driver_models import IDMParams, MOBILParams, Neighbour, idm_acceleration, mobil_assessment
from drivelab.planning.reference import ReferencePath, lane_change_path, lookahead_point, minimum_jerk, reference_path
from drivelab.planning.road import FrenetPoint, Road, TrackSpec, generate_track, straight_road, wrap_angle
from drivelab.planning.speed_profile import LaneSpeedProfile, lane_speed_profile, speed_profile, target_speed_at

__all__ = [
    "FrenetPoint",
    "IDMParams",
    "MOBILParams",
    "Neighbour",
    "idm_acceleration",
    "mobil_assessment",
    "LaneSpeedProfile",
    "ReferencePath",
    "Road",
    "TrackSpec",
    "generate_track",
    "lane_speed_profile",
    "minimum_jerk",
    "lane_change_path",
    "lookahead_point",
    "reference_path",
    "speed_profile",
    "straight_road",
    "target_speed_at",
    "wrap_angle",
]
