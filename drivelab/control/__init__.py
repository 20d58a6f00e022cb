"""Control: a PID, the speed controller, the steering trackers, and test plants and metrics.

Pure numpy, no simulator: every controller here can be unit-tested in milliseconds against the
plant models in ``drivelab.control.plants`` with the figures in ``drivelab.control.metrics``.
See docs/testing-controllers.md.
"""

from drivelab.control.lateral import (
    LateralController,
    LateralPID,
    LateralPIDTerms,
    PurePursuit,
    PurePursuitTerms,
    Stanley,
    StanleyTerms,
    curvature_feedforward_rad,
)
from drivelab.control.longitudinal import LongitudinalCommand, SpeedController, command_from_signed
from drivelab.control.metrics import StepResponse, step_response, tracking_rms
from drivelab.control.paths import (
    CirclePath,
    PathErrors,
    StraightPath,
    shift_reference_point,
    wrap_angle_rad,
)
from drivelab.control.pid import PID, PIDTerms
from drivelab.control.plants import FirstOrderLag, KinematicBicycle, LongitudinalPlant

__all__ = [
    "PID",
    "PIDTerms",
    "SpeedController",
    "LongitudinalCommand",
    "command_from_signed",
    "LateralController",
    "LateralPID",
    "LateralPIDTerms",
    "Stanley",
    "StanleyTerms",
    "PurePursuit",
    "PurePursuitTerms",
    "curvature_feedforward_rad",
    "FirstOrderLag",
    "LongitudinalPlant",
    "KinematicBicycle",
    "StepResponse",
    "step_response",
    "tracking_rms",
    "PathErrors",
    "StraightPath",
    "CirclePath",
    "shift_reference_point",
    "wrap_angle_rad",
]
