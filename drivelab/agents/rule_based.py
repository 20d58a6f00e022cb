"""The rule-based driver: planner + PID controllers, no learning.

It reads only the observation (the road-relative driving state), so it drives on ground truth or on
perception's estimate alike, and it answers ``predict`` like a stable-baselines3 model, so every
command that takes an agent takes it.

Per decision:

1. planning: the lane centre ahead in the car's frame, rebuilt from the previewed curvature
   (:func:`drivelab.planning.local_path.local_lane_path`), and a speed profile along it limited by
   lateral acceleration (:func:`drivelab.planning.speed_profile`); built only when the tracker or
   the pedals need it, or a viewer reads ``last_plan``;
2. control: a lateral tracker (PID on cross-track and heading error with curvature feed-forward,
   Stanley, or pure pursuit) gives the steering angle; in ``action="direct"`` a speed PID gives
   throttle and brake, otherwise the environment's speed PID holds its target speed;
3. the command is expressed in the env's action mode (normalised steering, or the nearest discrete level).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from drivelab.control import LateralPID, PurePursuit, SpeedController, Stanley
from drivelab.envs.modes import ActionMode, DirectAction, DiscreteSteerAction, SteerAction
from drivelab.envs.observations import DrivingState, StateObservation
from drivelab.envs.vehicle import VehicleSpec
from drivelab.planning import ReferencePath, speed_profile
from drivelab.planning.local_path import local_lane_path

TRACKERS = ("pid", "stanley", "pure_pursuit")


@dataclass(frozen=True)
class RuleBasedDriverConfig:
    """Settings of the rule-based driver.

    :param target_speed_mps: cruise speed when it drives the pedals itself (``action="direct"``);
        in the steering modes the environment's ``target_speed_mps`` (10 m/s by default) applies.
    :param max_lateral_accel_mps2: bends are taken no faster than this lateral acceleration allows.
    :param tracker: ``"pid"``, ``"stanley"`` or ``"pure_pursuit"``.
    :param feedforward_preview_s: the curvature feed-forward looks this far ahead in time, which
        covers the decision period and the steering servo's lag.
    :param horizon_m: how far ahead the local path is planned.
    :param k_cross_track, k_heading, k_integral: the PID tracker's gains (rad/m, rad/rad, rad/(m·s)).
        Stiffer than ``LateralPID``'s kinematic defaults (damping ratio 0.61 instead of 0.72), and with
        an integral: in a bend the tyres' slip turns the car's nose away from the lane tangent, which
        the heading term would otherwise answer with a steady offset towards the inside. Tuned on
        seeds 0-9 of LaneKeep (lateral error RMS ≤ 0.06 m at 10 m/s).
    """

    target_speed_mps: float = 10.0
    max_lateral_accel_mps2: float = 3.0
    tracker: str = "pid"
    feedforward_preview_s: float = 0.15
    horizon_m: float = 30.0
    k_cross_track: float = 0.25
    k_heading: float = 1.0
    k_integral: float = 0.15

    def __post_init__(self) -> None:
        if self.tracker not in TRACKERS:
            raise ValueError(f"unknown tracker {self.tracker!r}; allowed: {', '.join(TRACKERS)}")
        if not (self.target_speed_mps > 0 and self.max_lateral_accel_mps2 > 0 and self.horizon_m > 0
                and self.feedforward_preview_s >= 0):
            raise ValueError("target_speed_mps, max_lateral_accel_mps2 and horizon_m must be > 0, feedforward_preview_s >= 0")


class _Controllers:
    """The stateful part of one car's driver (PID integrals): one per vectorised env."""

    def __init__(self, config: RuleBasedDriverConfig, vehicle: VehicleSpec) -> None:
        if config.tracker == "pid":
            self.lateral = LateralPID(
                k_cross_track=config.k_cross_track, k_heading=config.k_heading, ki=config.k_integral,
                wheelbase_m=vehicle.wheelbase_m, max_steer_rad=vehicle.max_steer_rad,
            )
        elif config.tracker == "stanley":
            self.lateral = Stanley(wheelbase_m=vehicle.wheelbase_m, max_steer_rad=vehicle.max_steer_rad)
        else:
            self.lateral = PurePursuit(wheelbase_m=vehicle.wheelbase_m, max_steer_rad=vehicle.max_steer_rad)
        self.speed = SpeedController()

    def reset(self) -> None:
        self.lateral.reset()
        self.speed.reset()


class RuleBasedDriver:
    """Planner + PID driver for ``DriveLab/LaneKeep-v0`` (any action mode, ``observation="state"``).

    :param observation_mode: the env's observation mode (to read features by name).
    :param action_mode: the env's action mode (to express the command).
    :param decision_dt_s: the env's decision period.
    :param config: driver settings.
    :param vehicle: the car's geometry and limits.
    """

    def __init__(
        self,
        observation_mode: StateObservation,
        action_mode: ActionMode,
        decision_dt_s: float,
        config: RuleBasedDriverConfig = RuleBasedDriverConfig(),
        vehicle: VehicleSpec = VehicleSpec(),
    ) -> None:
        if not isinstance(observation_mode, StateObservation):
            raise ValueError(f"the rule-based lane keeper reads DriveLab/LaneKeep-v0's observation='state', got "
                             f"{type(observation_mode).__name__} {getattr(observation_mode, 'name', observation_mode)!r}; "
                             f"on DriveLab/Highway-v0 the rule-based driver is drivelab.agents.highway_driver.HighwayDriver")
        self.observation_mode = observation_mode
        self.action_mode = action_mode
        self.decision_dt_s = decision_dt_s
        self.config = config
        self.vehicle = vehicle
        self._controllers: list[_Controllers] = []
        self._last_state: DrivingState | None = None
        self._last_plan: ReferencePath | None = None

    @classmethod
    def for_env(cls, env, config: RuleBasedDriverConfig = RuleBasedDriverConfig()) -> "RuleBasedDriver":
        """A driver for a (possibly wrapped) ``DriveLab/LaneKeep-v0`` env."""
        base = env.unwrapped
        return cls(base.observation_mode, base.action_mode, base.decision_dt_s, config, base.vehicle_spec)

    def reset(self) -> None:
        for controllers in self._controllers:
            controllers.reset()

    def _controllers_for(self, index: int) -> _Controllers:
        while len(self._controllers) <= index:
            self._controllers.append(_Controllers(self.config, self.vehicle))
        return self._controllers[index]

    def plan(self, state: DrivingState) -> ReferencePath:
        """The planning stage: the lane centre ahead in the car's frame, with its speed profile."""
        config = self.config
        path = local_lane_path(
            state.lateral_offset_m, state.heading_error_rad, self.observation_mode.preview_m,
            state.preview_curvature_1pm, horizon_m=config.horizon_m,
        )
        spacing = float(path.s[1] - path.s[0])
        path.target_speed_mps = speed_profile(path.curvature, spacing, config.target_speed_mps, config.max_lateral_accel_mps2)
        return path

    @property
    def last_plan(self) -> ReferencePath | None:
        """The plan behind the last action (for a viewer). Built on demand: the PID tracker in the
        steering modes needs only the previewed curvature, and planning costs more than the physics."""
        if self._last_plan is None and self._last_state is not None:
            self._last_plan = self.plan(self._last_state)
        return self._last_plan

    def last_controller_terms(self, index: int = 0) -> dict[str, float]:
        """The lateral tracker's terms behind the last steering angle of env ``index`` (for a viewer):
        the tracker's own ``last_terms``, by name, empty before the first decision."""
        if index >= len(self._controllers):
            return {}
        terms = self._controllers[index].lateral.last_terms
        return {name: float(getattr(terms, name)) for name in terms.__dataclass_fields__}

    def _curvature_ahead(self, state: DrivingState, speed_mps: float) -> float:
        preview_m = speed_mps * self.config.feedforward_preview_s
        return float(np.interp(preview_m, self.observation_mode.preview_m, state.preview_curvature_1pm))

    def steer_rad(self, state: DrivingState, controllers: _Controllers) -> float:
        """The control stage's steering angle for one decision."""
        speed = max(state.speed_mps, 0.5)  # the trackers' gains are defined for forward motion
        curvature_ahead = self._curvature_ahead(state, speed)
        lateral = controllers.lateral
        if isinstance(lateral, LateralPID):
            return lateral.update(state.lateral_offset_m, state.heading_error_rad, speed, self.decision_dt_s, curvature_ahead)
        path = self.last_plan
        if isinstance(lateral, Stanley):
            # Stanley acts on the front axle's cross-track error: the local path's lateral offset abreast of it.
            front_x = self.vehicle.wheelbase_m / 2
            front_error = -float(np.interp(front_x, path.points[:, 0], path.points[:, 1]))
            # Stanley adds the curvature feed-forward itself, so it takes the heading error abreast
            # of the car, not at the front axle (which would count the bend twice).
            return lateral.steer_front_axle(front_error, state.heading_error_rad, speed, curvature_ahead)
        # Pure pursuit works from the rear axle, half a wheelbase behind the car's centre.
        rear_axle_x = -self.vehicle.wheelbase_m / 2
        lookahead = lateral.lookahead_distance_m(speed)
        distance_from_rear = np.hypot(path.points[:, 0] - rear_axle_x, path.points[:, 1])
        index = int(np.searchsorted(distance_from_rear, lookahead)) if distance_from_rear[-1] >= lookahead else -1
        target_x, target_y = path.points[index]
        return lateral.update_from_target(float(target_x - rear_axle_x), float(target_y))

    def act(self, observation: np.ndarray, index: int = 0) -> Any:
        """The action for one observation (of vectorised env ``index``)."""
        controllers = self._controllers_for(index)
        state = self.observation_mode.decode(observation)
        self._last_state, self._last_plan = state, None
        steer = self.steer_rad(state, controllers)
        max_steer = self.vehicle.max_steer_rad
        if isinstance(self.action_mode, DirectAction):
            target_speed = float(self.last_plan.target_speed_mps[0])
            pedals = controllers.speed.update(target_speed, state.speed_mps, self.decision_dt_s)
            return np.array([steer / max_steer, pedals.throttle, pedals.brake], dtype=np.float32)
        if isinstance(self.action_mode, SteerAction):
            return np.array([steer / max_steer], dtype=np.float32)
        if isinstance(self.action_mode, DiscreteSteerAction):
            return self.action_mode.nearest(steer)
        raise ValueError(f"the rule-based driver cannot drive action mode {self.action_mode.name!r}")

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: np.ndarray | None = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        """stable-baselines3's ``predict``: one observation or a batch from a vectorised env."""
        observation = np.asarray(observation)
        if observation.ndim == 1:
            return np.asarray(self.act(observation)), state
        if episode_start is not None:
            for index, starting in enumerate(np.asarray(episode_start).reshape(-1)):
                if starting:
                    self._controllers_for(index).reset()
        actions = [self.act(row, index) for index, row in enumerate(observation)]
        return np.stack([np.asarray(a) for a in actions]), state
