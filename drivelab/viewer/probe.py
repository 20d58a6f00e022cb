"""Reading what each pipeline stage computed during one decision step, for the dashboard to draw.

The viewer computes nothing again: the sensing stage's vehicle state, perception's estimate and the
truth beside it, the planner's path, the agent's decision and the controllers' commands and terms are
read from where each stage keeps them (see :class:`StepView` for where each comes from).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from drivelab.agents.decisions import Decision, decide

EPISODE_METRICS = ("route_completion", "lateral_error_rms", "off_road", "mean_speed", "episode_time_s", "track_seed",
                   "collision", "lane_changes", "headway_violations", "driving_score")  # the last four: the highway's


@dataclass
class StepView:
    """Everything one dashboard frame shows, as the stages left it after one decision step.

    - sensing (the env's ``vehicle_state`` after the step): ``x_m``, ``y_m``, ``yaw_rad``, ``speed_mps``, ``steer_rad``;
    - the agent's input (the observation it decided on): ``image`` (its camera, the newest frame) or
      ``feature_names``/``features`` (state features in their own units); ``stacked_frames``;
    - perception (``observation_mode.last_estimate`` / ``last_truth``): ``perceived`` and ``truth``, by feature name;
    - planning: ``plan_xy`` (world x, y of the rule-based driver's local plan, or of the lane centre ahead
      for agents that plan nothing themselves) and ``plan_label``; ``target_speed_mps`` (the planned speed);
    - decision: ``decision`` (:class:`~drivelab.agents.decisions.Decision`), ``action_labels``;
    - control (the step's ``info``): ``steer_command_rad``, ``throttle``, ``brake``, ``speed_pid`` (P, I, D terms);
    - the episode: ``step``, ``time_s``, ``reward``, ``episode_return``, ``lane_offset_m`` and
      ``heading_error_rad`` (the truth), ``done``, ``info``.
    """

    step: int
    time_s: float
    x_m: float
    y_m: float
    yaw_rad: float
    speed_mps: float
    steer_rad: float
    steer_command_rad: float
    throttle: float
    brake: float
    target_speed_mps: float | None
    speed_pid: dict[str, float] | None
    reward: float
    episode_return: float
    lane_offset_m: float
    heading_error_rad: float
    decision: Decision
    action_labels: list[str]
    image: np.ndarray | None = None
    stacked_frames: int = 1
    feature_names: tuple[str, ...] = ()
    features: np.ndarray | None = None
    perceived: dict[str, float] | None = None
    truth: dict[str, float] | None = None
    plan_xy: np.ndarray | None = None
    plan_label: str = ""
    others: list[tuple[float, float, float]] = field(default_factory=list)
    done: bool = False
    info: dict[str, Any] = field(default_factory=dict)


def frames_per_decision(env) -> int:
    """How many dashboard frames one decision of ``env`` makes: its control steps, where the env hands them over
    (the highway's meta-actions: 20 a decision), else 1."""
    base = env.unwrapped
    return int(getattr(base, "controls_per_decision", 1)) if hasattr(base, "control_trace") else 1


def action_labels(base_env) -> list[str]:
    """Readable names of the env's actions (discrete steering levels by angle; continuous ones by axis)."""
    mode = base_env.action_mode
    manoeuvres = getattr(mode, "MANOEUVRES", None)
    if manoeuvres is not None:  # the highway's meta-actions
        return [name.replace("_", " ") for name in manoeuvres]
    angles = getattr(mode, "angles_rad", None)
    if angles is not None:
        return [f"{math.degrees(a):+.0f}°" for a in angles]
    if mode.name == "direct":
        return ["steer", "throttle", "brake"]
    return ["steer"]


def _unscaled(env, observation: np.ndarray) -> np.ndarray:
    """The observation in its features' own units: learning agents see it divided by ``scales``."""
    wrapper = env
    while hasattr(wrapper, "env"):
        scales = getattr(wrapper, "scales", None)
        if scales is not None:
            return np.asarray(observation, dtype=np.float64) * scales
        wrapper = wrapper.env
    return np.asarray(observation, dtype=np.float64)


def _lane_ahead(base_env, horizon_m: float = 30.0, spacing_m: float = 1.0) -> np.ndarray:
    """World x, y of the lane centre ahead of the car: the reference every agent is asked to follow."""
    road = base_env.road
    s = base_env.s_m + np.arange(0.0, horizon_m + spacing_m, spacing_m)
    return road.position(road.wrap_s(s), road.lane_center_d(base_env.options.lane))


def _car_to_world(points: np.ndarray, x_m: float, y_m: float, yaw_rad: float) -> np.ndarray:
    c, s = math.cos(yaw_rad), math.sin(yaw_rad)
    return np.column_stack([x_m + c * points[:, 0] - s * points[:, 1], y_m + s * points[:, 0] + c * points[:, 1]])


class EpisodeProbe:
    """Drives one env with one agent, one decision at a time, and reads every stage after each step.

    :param agent: anything with ``predict`` (a scripted agent, an SB3 model, a frame-stacking agent).
    :param env: the env as the agent sees it (possibly wrapped).
    """

    def __init__(self, agent: Any, env) -> None:
        self.agent = agent
        self.env = env
        self.base = env.unwrapped
        self.action_labels = action_labels(self.base)
        self.observation: np.ndarray | None = None
        self.episode_return = 0.0
        self.steps = 0
        self.done = True
        self.last_info: dict[str, Any] = {}
        self.frames_per_step = frames_per_decision(env)

    def reset(self, seed: int, track_seed: int | None = None) -> None:
        options = None if track_seed is None else {"track_seed": int(track_seed)}
        self.observation, self.last_info = self.env.reset(seed=int(seed), options=options)
        if hasattr(self.agent, "reset"):
            self.agent.reset()
        perceived = getattr(self.base.observation_mode, "reset_errors", None)
        if perceived is not None:
            perceived()
        self.episode_return, self.steps, self.done = 0.0, 0, False

    def step_views(self) -> list[StepView]:
        """One decision, as :meth:`step`, drawn at each of its control steps (``frames_per_step`` views, the last
        one :meth:`step`'s): an env that decides once a second is watched at its control rate."""
        if self.frames_per_step == 1:
            return [self.step()]
        trace = self.base.control_trace = []  # the env hands over each control step of this decision, then stops
        try:
            view = self.step()
        finally:
            self.base.control_trace = None
        if not trace:
            return [view]
        views = []
        for snapshot in trace[:-1]:
            state = snapshot["vehicle_state"]
            views.append(dataclasses.replace(
                view, time_s=snapshot["time_s"], x_m=state.x_m, y_m=state.y_m, yaw_rad=state.yaw_rad, speed_mps=state.speed_mps,
                steer_rad=state.steer_rad, steer_command_rad=snapshot["steer_command_rad"], throttle=snapshot["throttle"],
                brake=snapshot["brake"], target_speed_mps=snapshot["target_speed_mps"], speed_pid=snapshot["speed_controller"],
                lane_offset_m=snapshot["lane_offset_m"], heading_error_rad=snapshot["heading_error_rad"],
                others=snapshot["others"], plan_xy=snapshot["plan_xy"], done=False))
        return views + [view]

    def episode_metrics(self) -> dict[str, Any]:
        """The finished episode's metrics from its final ``info`` (those a drive reports), and its track."""
        return {key: self.last_info[key] for key in EPISODE_METRICS if key in self.last_info}

    def step(self) -> StepView:
        """One decision and the physics behind it; what every stage computed for it."""
        if self.done:
            raise RuntimeError("EpisodeProbe.step: the episode is over; call reset()")
        base, observation = self.base, self.observation
        # Read before stepping: the input the agent decides on, and perception's estimate of it.
        mode = base.observation_mode
        image = features = perceived = truth = None
        names: tuple[str, ...] = ()
        if mode.name == "camera":
            image = np.asarray(observation)
        else:
            names = tuple(base.observation_features)
            features = _unscaled(self.env, observation)
        if getattr(mode, "last_estimate", None) is not None:
            estimated = [names[i] for i in mode.estimated_indices]
            perceived = {name: float(mode.last_estimate[names.index(name)]) for name in estimated}
            truth = {name: float(mode.last_truth[names.index(name)]) for name in estimated}
            image = base.last_camera_image if image is None else image
        pose = base.vehicle_state
        decision: Decision = decide(self.agent, observation)
        plan = getattr(self.agent, "last_plan", None)
        planned_path = getattr(base, "planned_path", None)  # an env whose own planner plans (the highway's)
        if plan is not None:
            plan_xy, plan_label = _car_to_world(plan.points, pose.x_m, pose.y_m, pose.yaw_rad), "rule-based plan"
        elif planned_path is None:
            plan_xy, plan_label = _lane_ahead(base), "lane reference"
        stacked = decision.agent_input
        frames = 1 if stacked is None or image is None else max(1, stacked.shape[-1] // 3)
        self.observation, reward, terminated, truncated, info = self.env.step(decision.action)
        self.steps += 1
        self.episode_return += float(reward)
        self.done = bool(terminated or truncated)
        self.last_info = info
        state = base.vehicle_state
        if planned_path is not None:  # the plan after the decision: a lane change starts on this step
            plan_xy = planned_path()
            plan_label = "lane-change plan" if getattr(base, "change", None) is not None else "lane plan"
        if hasattr(base, "other_vehicles"):  # traffic outside the physics engine
            others = base.other_vehicles()
        else:
            others = [(s.x_m, s.y_m, s.yaw_rad) for s in (v.state() for v in base.world.vehicles if v is not base.ego)]
        return StepView(
            step=self.steps, time_s=float(info.get("time_s", self.steps * base.decision_dt_s)),
            x_m=state.x_m, y_m=state.y_m, yaw_rad=state.yaw_rad, speed_mps=state.speed_mps, steer_rad=state.steer_rad,
            steer_command_rad=float(info.get("steer_command_rad", 0.0)), throttle=float(info.get("throttle", 0.0)),
            brake=float(info.get("brake", 0.0)), target_speed_mps=info.get("target_speed_mps"),
            speed_pid=info.get("speed_controller"), reward=float(reward), episode_return=self.episode_return,
            lane_offset_m=float(info.get("lane_offset_m", 0.0)), heading_error_rad=base.driving_state.heading_error_rad,
            decision=decision, action_labels=self.action_labels,
            image=image, stacked_frames=frames, feature_names=names, features=features, perceived=perceived,
            truth=truth, plan_xy=plan_xy, plan_label=plan_label, others=others, done=self.done, info=info,
        )
