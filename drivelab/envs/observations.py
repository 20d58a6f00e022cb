"""Observation modes, looked up by name; each turns what the world senses into the agent's input.

``"state"`` is the road-relative driving state that perception estimates: the same vector, feature
for feature, comes from the camera CNN in ``"perceived"`` (:mod:`drivelab.perception`, found by name
here so that this module never imports torch), so a policy trained on ground truth runs unchanged on
the estimate. ``"camera"`` is the car's camera image itself.

A mode's ``observe(state, image)`` gets the ground-truth :class:`DrivingState` and, when the mode's
``needs_camera`` is true, the camera's image (``None`` otherwise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple, Sequence

import numpy as np
from gymnasium import spaces


class DrivingState(NamedTuple):
    """Road-relative state of the ego car (the perception stage's output type).

    A named tuple (immutable, fields by name), made every decision step.

    :param lateral_offset_m: signed offset of the car's centre from the centre of its lane, left positive.
    :param heading_error_rad: car yaw minus lane tangent yaw, wrapped to (−π, π].
    :param speed_mps: forward speed along the car's heading.
    :param yaw_rate_radps: rotation rate about the vertical axis, counter-clockwise positive.
    :param steer_rad: measured front-wheel angle, left positive.
    :param preview_curvature_1pm: lane curvature at each preview distance ahead, left turns positive.
    """

    lateral_offset_m: float
    heading_error_rad: float
    speed_mps: float
    yaw_rate_radps: float
    steer_rad: float
    preview_curvature_1pm: tuple[float, ...]


@dataclass(frozen=True)
class Feature:
    """One observation feature: its name (with unit), bounds, and typical magnitude.

    ``scale`` is what a learning agent divides by so that every feature is of order one
    (see :class:`drivelab.agents.wrappers.ScaledObservation`).
    """

    name: str
    low: float
    high: float
    scale: float


class FeatureVector:
    """A ``Box`` of float32 named features, each clipped to its bounds; ``scales`` for learning agents."""

    needs_camera = False

    def __init__(self, features: tuple[Feature, ...]) -> None:
        self.features = features
        self._low = np.array([f.low for f in features], dtype=np.float32)
        self._high = np.array([f.high for f in features], dtype=np.float32)
        self.space = spaces.Box(self._low, self._high, dtype=np.float32)
        self.scales = np.array([f.scale for f in features], dtype=np.float32)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    def clipped(self, values) -> np.ndarray:
        """``values`` (in feature order) as the observation: float32, clipped to the bounds."""
        vector = np.array(values, dtype=np.float32)
        # Rounding to float32 first and clipping then gives the same as clipping first: the bounds are
        # float32 numbers, and rounding never crosses one.
        return np.minimum(np.maximum(vector, self._low, out=vector), self._high, out=vector)


class StateObservation(FeatureVector):
    """``Box`` of float32 road-relative features, clipped to their documented bounds."""

    name = "state"

    def __init__(self, *, max_steer_rad: float, curvature_preview_m: Sequence[float], **_: object) -> None:
        self.preview_m = tuple(float(d) for d in curvature_preview_m)
        super().__init__((
            Feature("lateral_offset_m", -10.0, 10.0, scale=1.0),
            Feature("heading_error_rad", -math.pi, math.pi, scale=0.3),
            Feature("speed_mps", -20.0, 60.0, scale=10.0),
            Feature("yaw_rate_radps", -5.0, 5.0, scale=0.5),
            Feature("steer_rad", -max_steer_rad, max_steer_rad, scale=max_steer_rad),
        ) + tuple(Feature(f"curvature_{d:g}m_1pm", -1.0, 1.0, scale=0.03) for d in self.preview_m))

    def observe(self, state: DrivingState, image: np.ndarray | None = None) -> np.ndarray:
        return self.clipped((state.lateral_offset_m, state.heading_error_rad, state.speed_mps, state.yaw_rate_radps,
                             state.steer_rad, *state.preview_curvature_1pm))

    def decode(self, observation: np.ndarray) -> DrivingState:
        """The inverse of :meth:`observe` (up to clipping): lets drivers read observations by name."""
        values = np.asarray(observation, dtype=np.float64).reshape(-1)
        return DrivingState(
            lateral_offset_m=float(values[0]),
            heading_error_rad=float(values[1]),
            speed_mps=float(values[2]),
            yaw_rate_radps=float(values[3]),
            steer_rad=float(values[4]),
            preview_curvature_1pm=tuple(float(v) for v in values[5:]),
        )


class CameraObservation:
    """``Box(0, 255, (height, width, 3), uint8)``: the camera's RGB image, row 0 at the top."""

    name = "camera"
    needs_camera = True

    def __init__(self, *, camera_shape: tuple[int, int], **_: object) -> None:
        height, width = camera_shape
        self.space = spaces.Box(0, 255, (height, width, 3), dtype=np.uint8)
        self.features: tuple[Feature, ...] = ()

    @property
    def feature_names(self) -> tuple[str, ...]:
        return ()

    def observe(self, state: DrivingState, image: np.ndarray | None = None) -> np.ndarray:
        return image


def _perceived(**kwargs: object):
    """``"perceived"``: the state vector with the camera-visible features estimated by a CNN (torch)."""
    from drivelab.perception.observation import PerceivedObservation

    return PerceivedObservation(**kwargs)


OBSERVATION_MODES: dict[str, Callable[..., object]] = {
    StateObservation.name: StateObservation,
    CameraObservation.name: CameraObservation,
    "perceived": _perceived,
}
