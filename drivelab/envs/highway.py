"""``DriveLab/Highway-v0``: drive fast through highway traffic without crashing, on real vehicle physics.

The ego car is LaneKeep's car (full PyBullet dynamics) on a multi-lane loop with gentle curves. The
other vehicles are kinematic, driven by IDM and MOBIL (:mod:`drivelab.envs.traffic`), outside the
physics engine. The agent decides what to do; in the ``"meta"`` action mode the planning stage turns
its manoeuvre into a lane-change trajectory and a target speed, and the lab's controllers carry it out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from drivelab.control import SpeedController, Stanley
from drivelab.envs.driving import (PLANNED_ACCEL_MPS2, PLANNED_DECEL_MPS2, ROLLOVER_LIMIT_RAD, SPEED_BRAKE_DEADBAND,
                                   SPEED_PREVIEW_S, TRAINING_TRACK_SEEDS_END, DrivingWorldEnv, SeedCache, check_camera_options,
                                   check_speed_loop_rate, check_track_seeds, is_number, is_whole, option_check,
                                   options_from_kwargs, speed_loop_every)
from drivelab.envs.camera import CAMERA_MOUNTS, Box3D, CameraSpec, Palette, RoadCamera, camera_pose
from drivelab.envs.modes import ACTION_MODES, ActionMode, MetaAction
from drivelab.envs.observations import CameraObservation, DrivingState, Feature, FeatureVector
from drivelab.envs.traffic import NO_LANE, Footprint, Traffic, TrafficOptions
from drivelab.envs.vehicle import VehicleSpec
from drivelab.envs.world import PhysicsSettings, World
from drivelab.planning import LaneSpeedProfile, Road, TrackSpec, generate_track, lane_speed_profile, minimum_jerk
from drivelab.planning.driver_models import IDMParams, MOBILParams

ENV_ID = "DriveLab/Highway-v0"
TRACK_CACHE_SIZE = 16
HEADWAY_LIMIT_S = 1.0
CAMERA_RANGE_M = 120.0  # the camera draws the vehicles this close along the road
VEHICLE_HEIGHT_M = 1.5
TRAFFIC_COLOR = (0.27, 0.51, 0.94)  # blue, as the dashboard draws them  # a time gap to the vehicle ahead below this is a headway violation
# Infraction penalties of the driving score (route completion times each penalty that applies), after the
# CARLA leaderboard's: a collision with a vehicle multiplies it by 0.60 there. A headway violation is ours.
COLLISION_PENALTY_FACTOR = 0.60
# How a crash came about, from the car's point of view (the final info's "crash", checked in this order):
CRASH_KINDS = ("own_lane_change",  # the car was changing lanes (a meta-action's change under way)
               "cut_in",           # the other vehicle was changing lanes
               "rear_end",         # the car ran into a vehicle ahead in its lane
               "from_behind")      # a vehicle behind ran into the car
HEADWAY_PENALTY_FACTOR = 0.95
OFF_ROAD_PENALTY_FACTOR = 0.70

BEHAVIOUR_KEYS = {
    "time_headway_s": ("idm", "time_headway_s"),
    "min_gap_m": ("idm", "min_gap_m"),
    "max_accel_mps2": ("idm", "max_accel_mps2"),
    "comfort_decel_mps2": ("idm", "comfort_decel_mps2"),
    "politeness": ("mobil", "politeness"),
    "lane_change_threshold_mps2": ("mobil", "threshold_mps2"),
    "safe_decel_mps2": ("mobil", "safe_decel_mps2"),
    "keep_right_bias_mps2": ("mobil", "keep_right_bias_mps2"),
    "lane_change_s": (None, "lane_change_s"),
    "mobil_interval_s": (None, "mobil_interval_s"),
}


@dataclass(frozen=True)
class HighwayOptions:
    """Every keyword option of ``DriveLab/Highway-v0`` with its default (see the env's docstring)."""

    track_seed: int | None = None
    track_seed_range: tuple[int, int] = (0, TRAINING_TRACK_SEEDS_END)
    road_length_m: float = 2000.0
    max_curvature_1pm: float = 1 / 250
    lane_count: int = 4
    lane_width_m: float = 3.75
    lane: int | None = None
    # Near highway-fast-v0's density: 12.5 vehicles per km in each of our 4 lanes, where its 20 start at 14.7 per km
    # in each of its 3 and spread out as they go (its road is open, ours a loop). Here the rule-based driver keeps
    # 22.7 m/s where a free road gives 27.9: getting past the traffic is the task.
    density_per_km: float = 50.0
    traffic_speed_mps: tuple[float, float] = (20.0, 26.0)
    behaviour: dict[str, float] = field(default_factory=dict)
    target_speeds_mps: tuple[float, ...] = (20.0, 25.0, 30.0)
    initial_speed_mps: float = 25.0
    max_lateral_accel_mps2: float = 3.5
    lane_change_s: float = 4.0
    route_length_m: float = 1000.0
    max_episode_s: float = 60.0
    decision_hz: float | None = None
    control_hz: float = 20.0
    traffic_hz: float = 5.0
    physics_hz: float = 100.0
    # How often the speed PID closes its loop (as on LaneKeep): None, every physics step; "control_hz", once a
    # control period. Every physics step here (LaneKeep's default is once a decision): the traffic comparison
    # in BENCHMARKS.md was measured with it.
    speed_loop_hz: float | str | None = None
    steer_levels: int = 9
    nearby_vehicles: int = 6
    sensing_range_m: float = 100.0
    # Every metre of the route is paid (1 a second at 20 m/s), so a car held up behind traffic still earns and a
    # crash forfeits the rest of the route. Paying only for speed above 20 m/s, with a penalty of 10, made a crash
    # cost little more than a slow lane's nothing: DQN learned to drive at 28.5 m/s and crashed on 11 of 20 roads,
    # for a higher return than the collision-free rule-based driver (BENCHMARKS.md, "The reward paid for crashing").
    progress_reward_per_m: float = 0.05
    speed_reward: float = 0.0
    collision_penalty: float = 30.0
    off_road_penalty: float = 30.0
    # More than a second's progress (1-1.5) for each second under 1 s of headway: 313 of the 360 crashes in the
    # evaluations of this reward's pilots and first sweep came in episodes with a headway violation, and this
    # penalty comes at once, where the crash's comes rarely and late. With 0.5, DQN drifted to 26 m/s and a crash
    # on a quarter of the roads; a collision penalty of 100 did not stop it (BENCHMARKS.md).
    headway_penalty: float = 2.0
    render_width: int = 320
    render_height: int = 240
    camera_width: int = 84
    camera_height: int = 84
    camera_fov_deg: float = 90.0
    camera_mount: str = "hood"

    def __post_init__(self) -> None:
        require, number = option_check(ENV_ID), is_number

        for name in ("road_length_m", "lane_width_m", "initial_speed_mps", "max_lateral_accel_mps2", "lane_change_s",
                     "route_length_m", "max_episode_s", "control_hz", "physics_hz", "sensing_range_m", "max_curvature_1pm",
                     "render_width", "render_height"):
            value = getattr(self, name)
            require(number(value) and value > 0, f"option {name} must be a positive number, got {value!r}")
        for name in ("density_per_km", "progress_reward_per_m", "speed_reward", "collision_penalty", "off_road_penalty", "headway_penalty"):
            value = getattr(self, name)
            require(number(value) and value >= 0, f"option {name} must be a number >= 0, got {value!r}")
        require(isinstance(self.lane_count, int) and not isinstance(self.lane_count, bool) and 2 <= self.lane_count <= 6,
                f"option lane_count must be an integer in 2..6, got {self.lane_count!r}")
        require(self.lane is None or (isinstance(self.lane, int) and 0 <= self.lane < self.lane_count),
                f"option lane must be None (drawn) or an integer in 0..{self.lane_count - 1} (0 = rightmost), got {self.lane!r}")
        check_track_seeds(require, self.track_seed, self.track_seed_range, "road")
        speeds = self.traffic_speed_mps
        require(len(speeds) == 2 and all(number(v) for v in speeds) and 0 < speeds[0] <= speeds[1],
                f"option traffic_speed_mps must be [low, high] with 0 < low <= high, got {speeds!r}")
        targets = self.target_speeds_mps
        require(len(targets) >= 1 and all(number(v) and v > 0 for v in targets) and list(targets) == sorted(set(targets)),
                f"option target_speeds_mps must be increasing positive speeds, got {targets!r}")
        require(isinstance(self.behaviour, dict), f"option behaviour must be a mapping of {', '.join(BEHAVIOUR_KEYS)}")
        for key, value in self.behaviour.items():
            require(key in BEHAVIOUR_KEYS, f"unknown behaviour key {key!r}; allowed: {', '.join(BEHAVIOUR_KEYS)}")
            require(number(value), f"behaviour {key} must be a number, got {value!r}")
        require(self.decision_hz is None or (number(self.decision_hz) and self.decision_hz > 0),
                f"option decision_hz must be None (1 for action 'meta', control_hz otherwise) or a positive number, got {self.decision_hz!r}")
        require(isinstance(self.steer_levels, int) and self.steer_levels >= 2, f"option steer_levels must be an integer >= 2, got {self.steer_levels!r}")
        check_camera_options(require, self)
        require(isinstance(self.nearby_vehicles, int) and 0 <= self.nearby_vehicles <= 32,
                f"option nearby_vehicles must be an integer in 0..32, got {self.nearby_vehicles!r}")
        substeps = self.physics_hz / self.control_hz
        require(is_whole(substeps),
                f"option physics_hz ({self.physics_hz}) must be a whole multiple of control_hz ({self.control_hz})")
        check_speed_loop_rate(require, self.speed_loop_hz, self.physics_hz, self.control_hz, "control_hz")
        every = self.control_hz / self.traffic_hz if number(self.traffic_hz) and self.traffic_hz > 0 else math.nan
        require(is_whole(every),
                f"option control_hz ({self.control_hz}) must be a whole multiple of traffic_hz ({self.traffic_hz!r})")
        try:
            self.track_spec()
            self.traffic_options()
        except ValueError as error:
            raise ValueError(f"{ENV_ID}: {str(error).splitlines()[0]}") from None

    def track_spec(self) -> TrackSpec:
        return TrackSpec(length_m=self.road_length_m, max_curvature_1pm=self.max_curvature_1pm, lane_count=self.lane_count,
                         lane_width_m=self.lane_width_m, max_harmonic=4, perturbation=0.3)

    def traffic_options(self) -> TrafficOptions:
        """The traffic these options ask for: ``density_per_km`` × the loop's length in vehicles, with the behaviour."""
        # Drivers change lanes only where the new follower need brake no harder than the car plans to (2 m/s²;
        # highway-env's drivers impose no more either): MOBIL's usual 4 m/s² let slower cars cut in where the car,
        # holding its set-point ramp, could not stop in time.
        idm, mobil, own = {}, {"safe_decel_mps2": PLANNED_DECEL_MPS2}, {}
        for key, value in self.behaviour.items():
            group, name = BEHAVIOUR_KEYS[key]
            {"idm": idm, "mobil": mobil, None: own}[group][name] = float(value)
        return TrafficOptions(vehicles=int(round(self.density_per_km * self.road_length_m / 1000.0)),
                              desired_speed_mps=tuple(float(v) for v in self.traffic_speed_mps),
                              idm=IDMParams(**idm), mobil=MOBILParams(**mobil), **own)

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any]) -> "HighwayOptions":
        return options_from_kwargs(cls, ENV_ID, kwargs, ("track_seed_range", "traffic_speed_mps", "target_speeds_mps"))


class TrafficStateObservation(FeatureVector):
    """``"state"`` on the highway: the ego car, the ``N`` nearest vehicles and the lanes around it, as a
    ``Box(float32)`` of named features in their own units (``scale``: their typical magnitude)."""

    name = "state"
    EGO = (Feature("speed_mps", -20.0, 60.0, 10.0), Feature("lane_offset_m", -10.0, 10.0, 1.0),
           Feature("heading_error_rad", -math.pi, math.pi, 0.3), Feature("yaw_rate_radps", -5.0, 5.0, 0.5),
           Feature("lane_index", 0.0, 8.0, 1.0), Feature("cruise_speed_mps", 0.0, 60.0, 10.0),
           Feature("changing_lane", 0.0, 1.0, 1.0))

    def __init__(self, *, nearby_vehicles: int, sensing_range_m: float, lane_width_m: float, **_: object) -> None:
        self.nearby, self.range_m = nearby_vehicles, sensing_range_m
        vehicles = []
        for k in range(nearby_vehicles):
            vehicles += [Feature(f"car{k}_present", 0.0, 1.0, 1.0), Feature(f"car{k}_ds_m", -sensing_range_m, sensing_range_m, 50.0),
                         Feature(f"car{k}_dd_m", -30.0, 30.0, lane_width_m), Feature(f"car{k}_dv_mps", -60.0, 60.0, 5.0)]
        lanes = []
        for side in ("right", "own", "left"):
            lanes += [Feature(f"lane_{side}_exists", 0.0, 1.0, 1.0),
                      Feature(f"lane_{side}_gap_ahead_m", -10.0, sensing_range_m, 50.0),
                      Feature(f"lane_{side}_gap_behind_m", -10.0, sensing_range_m, 50.0)]
        super().__init__(self.EGO + tuple(vehicles) + tuple(lanes))


class HighwayEnv(DrivingWorldEnv):
    """
    ## Description
    LaneKeep's car (full PyBullet dynamics) on a ``lane_count``-lane loop (4 lanes of 3.75 m, about 2 km, curves
    no sharper than 1/250 m⁻¹), among ``density_per_km`` × 2 km vehicles (100 by default) driven by IDM and
    MOBIL outside the physics engine (:mod:`drivelab.envs.traffic`). The task: cover ``route_length_m``
    (1 km) fast, without hitting anybody, within ``max_episode_s`` (60 s).

    ## Action Space (``action=``)
    - ``"meta"`` (default): ``Discrete(5)``: 0 keep lane, 1 change left, 2 change right, 3 faster, 4 slower.
      The agent decides at ``decision_hz`` (default 1 Hz, as highway-env's agents do). A change is planned as a
      minimum-jerk quintic in Frenet coordinates from where the car is to the centre of the next lane over
      ``lane_change_s`` (4 s) of driving; faster and slower step through ``target_speeds_mps`` (20, 25, 30 m/s;
      the car starts at 25). Stanley's steering law tracks the path at ``control_hz`` (20 Hz); the speed PID
      holds the target speed (no faster than the lane's curves allow at ``max_lateral_accel_mps2``, reached along
      a ramp of 1 m/s² up and 2 m/s² down) at ``physics_hz`` (100 Hz; ``speed_loop_hz``: None, every physics step; ``"control_hz"``, once a control period; or a rate). The other drivers decide (IDM, MOBIL's turns) at ``traffic_hz`` (5 Hz, highway-fast-v0's
      simulation rate) and move at ``control_hz``, where collisions are checked. A change into a lane that does not exist, a change while one is under way, and
      faster or slower beyond the ends of the speed list do nothing; ``info["noop"]`` says so and the episode
      counts them (``noop_manoeuvres``).
    - ``"steer"``, ``"steer_discrete"``, ``"direct"``: as on LaneKeep, at ``decision_hz`` (default ``control_hz``);
      the speed PID holds the middle target speed in the steering modes.

    ## Observation Space (``observation=``)
    ``"camera"``: ``Box(0, 255, (camera_height, camera_width, 3), uint8)``, the car's camera as on LaneKeep (``camera_mount``
    ``"hood"`` or ``"chase"``, ``camera_fov_deg``), the other vehicles within 120 m drawn in as blue boxes 1.5 m high.

    ``"state"`` (default):
    ``Box(float32)`` of named features (``env.unwrapped.observation_features``), each in its own unit and
    clipped to its bounds; learning agents divide each by its ``scale`` (in brackets):
    the ego car's ``speed_mps`` (10), ``lane_offset_m`` from its lane's centre (1), ``heading_error_rad`` (0.3),
    ``yaw_rate_radps`` (0.5), ``lane_index`` (0 = rightmost; 1), ``cruise_speed_mps`` (the chosen speed; 10), ``changing_lane``
    (0/1); for each of the ``nearby_vehicles`` (6) nearest vehicles within ``sensing_range_m`` (100 m), nearest
    first: ``car{k}_present`` (0/1), ``car{k}_ds_m`` along the road (+ ahead; 50), ``car{k}_dd_m`` across it
    (+ left; the lane width), ``car{k}_dv_mps`` its speed minus the car's (5), zeros when absent; and for the
    lanes to the right, the car's own and to the left: ``lane_{side}_exists``, ``lane_{side}_gap_ahead_m`` and
    ``lane_{side}_gap_behind_m`` (bumper to bumper, ``sensing_range_m`` when free; 50).

    ## Rewards
    Per decision step of ``dt`` seconds: ``progress_reward_per_m`` (0.05) × the metres driven along the route, +
    ``speed_reward`` (0) × dt × the speed's place between the lowest and highest target speed (0 at or below
    20 m/s, 1 at or above 30), − ``headway_penalty`` (2.0) × the seconds spent less than 1 s behind the vehicle
    ahead, − ``collision_penalty`` (30) on a collision, − ``off_road_penalty`` (30) on leaving the road or rolling
    over. A collision ends the episode, so it also forfeits the rest of the route's reward.

    ## Episode End
    Termination: a collision with a vehicle, off the road, rolled over, or the route driven. Truncation:
    ``max_episode_s``. The final ``info`` has LaneKeep's metrics and ``collision``, ``lane_changes`` (started by
    the car), ``headway_violations`` (times the gap to the vehicle ahead fell under 1 s), ``headway_violation_s``,
    ``noop_manoeuvres`` and ``driving_score``: route completion × 0.60 after a collision × 0.70 off the road ×
    0.95 per headway violation. After a collision it also has ``crash``: the other vehicle's place relative to the
    car (``ds_m`` along the road, ahead positive, ``dd_m`` across it, left positive), both speeds, who was changing
    lanes, and its ``kind``: ``"own_lane_change"``, ``"cut_in"``, ``"rear_end"`` or ``"from_behind"``.

    ## Arguments
    ``gym.make("DriveLab/Highway-v0", observation="state", action="meta", **options)``; every option and its
    default is in :class:`HighwayOptions`. ``behaviour`` sets the traffic's driver parameters by name
    (``time_headway_s``, ``min_gap_m``, ``max_accel_mps2``, ``comfort_decel_mps2``, ``politeness``,
    ``lane_change_threshold_mps2``, ``safe_decel_mps2``, ``keep_right_bias_mps2``, ``lane_change_s``,
    ``mobil_interval_s``). ``reset(seed=..., options={"track_seed": k})`` drives road ``k``; the same reset seed
    gives the same road, start and traffic. The traffic is not in PyBullet: ``render_mode`` shows the car and the
    road alone (``drivelab watch`` draws the traffic).
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 20}
    OBSERVATION_MODES = ("state", "camera")

    def __init__(self, observation: str = "state", action: str = "meta", render_mode: str | None = None, **options: Any) -> None:
        super().__init__()
        self.options = o = HighwayOptions.from_kwargs(options)
        if observation not in self.OBSERVATION_MODES:
            raise ValueError(f"{ENV_ID}: unknown observation {observation!r}; allowed: {', '.join(self.OBSERVATION_MODES)}")
        modes = {**ACTION_MODES, MetaAction.name: MetaAction}
        if action not in modes:
            raise ValueError(f"{ENV_ID}: unknown action {action!r}; allowed: {', '.join(modes)}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"{ENV_ID}: unknown render_mode {render_mode!r}; allowed: None, {', '.join(self.metadata['render_modes'])}")
        self.render_mode = render_mode
        self.vehicle_spec = VehicleSpec()
        self.action_mode: ActionMode = modes[action](max_steer_rad=self.vehicle_spec.max_steer_rad, steer_levels=o.steer_levels)
        self.meta = isinstance(self.action_mode, MetaAction)
        if observation == "camera":
            self.observation_mode = CameraObservation(camera_shape=(o.camera_height, o.camera_width))
            self.camera_spec = CameraSpec(width=o.camera_width, height=o.camera_height, fov_deg=float(o.camera_fov_deg),
                                          mount=CAMERA_MOUNTS[o.camera_mount])
            self.camera: RoadCamera | None = RoadCamera(self.camera_spec)
        else:
            self.observation_mode = TrafficStateObservation(nearby_vehicles=o.nearby_vehicles,
                                                            sensing_range_m=o.sensing_range_m, lane_width_m=o.lane_width_m)
            self.camera = None
        self.last_camera_image: np.ndarray | None = None
        self.observation_space, self.action_space = self.observation_mode.space, self.action_mode.space
        self.observation_features = self.observation_mode.feature_names
        decision_hz = o.decision_hz if o.decision_hz is not None else (1.0 if self.meta else o.control_hz)
        controls = o.control_hz / decision_hz
        if not is_whole(controls):
            raise ValueError(f"{ENV_ID}: option control_hz ({o.control_hz}) must be a whole multiple of decision_hz ({decision_hz})")
        self.controls_per_decision = round(controls)
        self.decision_dt_s = 1.0 / decision_hz
        self.control_dt_s = 1.0 / o.control_hz
        self.substeps = round(o.physics_hz / o.control_hz)
        self.speed_loop_every = speed_loop_every(o.speed_loop_hz, o.physics_hz, o.control_hz)
        self.traffic_every = round(o.control_hz / o.traffic_hz)  # control steps between the drivers' decisions
        self.metadata = {**self.metadata, "render_fps": decision_hz}
        self.world = World(PhysicsSettings(physics_hz=o.physics_hz), gui=render_mode == "human")
        self.speed_controller = SpeedController(brake_deadband=SPEED_BRAKE_DEADBAND)
        self.tracker = Stanley(wheelbase_m=self.vehicle_spec.wheelbase_m, max_steer_rad=self.vehicle_spec.max_steer_rad)
        self._needs_road_meshes = render_mode is not None
        self._roads = SeedCache(TRACK_CACHE_SIZE)
        self.traffic: Traffic | None = None
        # A viewer sets a list here to be handed each control step of the next decision (one snapshot each).
        self.control_trace: list[dict[str, Any]] | None = None

    # -- episode ------------------------------------------------------------------------------

    def _road(self, seed: int) -> tuple[Road, list[LaneSpeedProfile]]:
        """The road of ``seed`` and the planned top speed along each of its lanes (the curves' limit)."""
        return self._roads.get(seed, self._build_road)

    def _build_road(self, seed: int) -> tuple[Road, list[LaneSpeedProfile]]:
        o = self.options
        road = generate_track(seed, o.track_spec())
        top = max(o.target_speeds_mps)
        return road, [lane_speed_profile(road, road.lane_center_d(lane), top, o.max_lateral_accel_mps2,
                                         max_accel_mps2=PLANNED_ACCEL_MPS2, max_decel_mps2=PLANNED_DECEL_MPS2)
                      for lane in range(road.lane_count)]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        o = self.options
        rng = self.np_random
        self.track_seed = self._episode_track_seed(ENV_ID, options, o.track_seed, o.track_seed_range)
        self.road, self.lane_profiles = self._road(self.track_seed)
        road = self.road
        self.lane = int(o.lane) if o.lane is not None else int(rng.integers(road.lane_count))
        lane_d = road.lane_center_d(self.lane)
        x0, y0 = road.position(0.0, lane_d)
        self._place_ego(road, dict(x_m=float(x0), y_m=float(y0), yaw_rad=float(road.heading_at(0.0)), speed_mps=o.initial_speed_mps))
        self.traffic = Traffic(road, o.traffic_options(), np.random.default_rng(int(rng.integers(2**63))),
                               ego_s_m=0.0, ego_lane=self.lane)
        self.tracker.reset()
        if self.camera is not None:
            self.camera.set_road(road, Palette())
        self._start_records()
        self._lane_d = lane_d
        self._road_limit_m = road.half_width_m + road.shoulder_m
        self.speed_index = int(np.searchsorted(o.target_speeds_mps, o.initial_speed_mps).clip(0, len(o.target_speeds_mps) - 1))
        # The speed chosen (by the meta-actions; the middle one in the other modes), and the speed loop's set-point,
        # which the curves may hold below it.
        self.cruise_speed_mps = o.target_speeds_mps[self.speed_index if self.meta else len(o.target_speeds_mps) // 2]
        self.target_speed_mps = self.cruise_speed_mps
        self._set_point_mps = o.initial_speed_mps
        self.speed_profile = self.lane_profiles[self.lane]  # (not None: the speed loop's traction control is on)
        self.change: tuple[float, float, float, float] | None = None  # (s at start, d from, d to, length) of a lane change
        self.lane_changes = self.noop_manoeuvres = self.headway_violations = 0
        self.headway_violation_s = 0.0
        self._under_headway = False
        self.collided_with: int | None = None
        self.crash: dict[str, Any] | None = None
        self._control_ticks = 0
        self._sense()
        if self.render_mode == "human":
            self._aim_gui_camera()
        return self._observe(), self._info(noop=False, manoeuvre=None)

    def _planned_speed(self) -> float:
        """The speed loop's set-point for this control step: the cruise speed, no faster than the curves of the car's
        lane allow just ahead of it, reached along a ramp of the planned acceleration and braking. A step in the
        set-point (30 to 25 m/s on "slower") made the PID brake in full, and braking hard in a bend during a lane
        change cost the front tyres their grip: the car ran straight on, off the road."""
        profile = self.lane_profiles[self.road.lane_index(self._d_m)]
        goal = min(self.cruise_speed_mps, profile.at(self._s_m + max(self.vehicle_state.speed_mps, 0.0) * SPEED_PREVIEW_S))
        dt = self.control_dt_s
        self._set_point_mps = min(max(goal, self._set_point_mps - PLANNED_DECEL_MPS2 * dt), self._set_point_mps + PLANNED_ACCEL_MPS2 * dt)
        return self._set_point_mps

    def ego_footprint(self) -> Footprint:
        state = self.vehicle_state
        heading = (state.yaw_rad - self._lane_heading + math.pi) % (2 * math.pi) - math.pi
        return Footprint(self._s_m, self._d_m, self.vehicle_spec.length_m, self.vehicle_spec.width_m, heading, state.speed_mps)

    # -- decisions ----------------------------------------------------------------------------

    def _start_manoeuvre(self, action) -> tuple[str, bool]:
        """Carry out a meta-action's decision: (its name, whether it did nothing)."""
        name = self.action_mode.manoeuvre(action)
        o, road = self.options, self.road
        if name in ("change_left", "change_right"):
            target = self.lane + (1 if name == "change_left" else -1)
            if self.change is not None or not 0 <= target < road.lane_count:
                return name, True
            length = max(self.vehicle_state.speed_mps, 5.0) * o.lane_change_s
            self.change = (self._s_m, self._d_m, road.lane_center_d(target), length)
            self.lane = target
            self.lane_changes += 1
        elif name in ("faster", "slower"):
            index = self.speed_index + (1 if name == "faster" else -1)
            if not 0 <= index < len(o.target_speeds_mps):
                return name, True
            self.speed_index = index
            self.cruise_speed_mps = o.target_speeds_mps[index]
        return name, False

    def _path_reference(self) -> tuple[float, float, float]:
        """Where the plan wants the car at its arc length: lateral offset, its slope dd/ds and curvature d²d/ds²."""
        if self.change is None:
            return self.road.lane_center_d(self.lane), 0.0, 0.0
        s_start, d_from, d_to, length = self.change
        u = self.road.progress(s_start, self._s_m) / length
        if u >= 1.0:
            self.change = None
            return d_to, 0.0, 0.0
        blend, slope, curvature = minimum_jerk(max(u, 0.0))
        span = d_to - d_from
        return d_from + span * blend, span * slope / length, span * curvature / length**2

    def _steer_to_plan(self) -> float:
        d_ref, slope, d_curvature = self._path_reference()
        state = self.vehicle_state
        heading_error = (state.yaw_rad - self._lane_heading - math.atan(slope) + math.pi) % (2 * math.pi) - math.pi
        curvature = float(self.road.curvature_at(self._s_m)) + d_curvature
        return self.tracker.update(self._d_m - d_ref, heading_error, max(state.speed_mps, 0.5), self.control_dt_s, curvature)

    # -- stepping ------------------------------------------------------------------------------

    def step(self, action):
        if self.ego is None:
            raise RuntimeError(f"{ENV_ID}: call reset() before step()")
        o = self.options
        manoeuvre, noop, command = None, False, None
        if self.meta:
            manoeuvre, noop = self._start_manoeuvre(action)
            self.noop_manoeuvres += noop
        else:
            command = self.action_mode.command(action)
        s_before = self._s_m
        headway_cost = 0.0
        collision = off_road = rolled_over = False
        if self.control_trace is not None:
            self.control_trace.clear()
        for control in range(self.controls_per_decision):
            steer = self._steer_to_plan() if self.meta else command.steer_rad
            self.ego.steer(steer)
            if command is not None and command.throttle is not None:
                self.ego.drive(command.throttle, command.brake)
                self._last_command = (steer, command.throttle, command.brake)
                for _ in range(self.substeps):
                    self.world.step_physics()
            else:
                self._hold_speed(steer)
            self._sense()
            footprint = self.ego_footprint()
            drive = self._control_ticks % self.traffic_every == 0
            self.traffic.step(self.control_dt_s, footprint, drive=drive)
            self._control_ticks += 1
            if drive:  # the headway, at the drivers' rate: a violation lasts far longer than their 0.2 s
                headway_cost += self._account_headway(footprint, self.traffic_every * self.control_dt_s)
            hits = self.traffic.collisions(footprint)
            state = self.vehicle_state
            off_road = not abs(self._d_m) <= self._road_limit_m
            rolled_over = max(abs(state.roll_rad), abs(state.pitch_rad)) > ROLLOVER_LIMIT_RAD
            if len(hits):
                collision, self.collided_with = True, int(hits[0])
                self.crash = self._describe_crash(self.collided_with, footprint)
            if self.control_trace is not None:
                self.control_trace.append(self._control_snapshot(control))
            if collision or off_road or rolled_over:
                break
        self._steps += 1
        if not self.meta:  # (with meta-actions, the lane is the plan's: the target of a change from its start)
            self.lane = int(self.road.lane_index(self._d_m))
        lane_offset = self._d_m - self.road.lane_center_d(self.road.lane_index(self._d_m))
        progress_m = self._record_step(s_before, lane_offset)
        route_done = self._progress_m >= o.route_length_m
        terminated = collision or off_road or rolled_over or route_done
        truncated = not terminated and self._steps * self.decision_dt_s >= o.max_episode_s - 1e-9
        low, high = o.target_speeds_mps[0], o.target_speeds_mps[-1]
        speed_share = 1.0 if high == low else min(max((self.vehicle_state.speed_mps - low) / (high - low), 0.0), 1.0)
        reward = (o.progress_reward_per_m * progress_m + o.speed_reward * speed_share * self.decision_dt_s
                  - o.headway_penalty * headway_cost)
        if collision:
            reward -= o.collision_penalty
        if off_road or rolled_over:
            reward -= o.off_road_penalty
        observation = self._observe()
        info = self._info(noop=noop, manoeuvre=manoeuvre)
        if terminated or truncated:
            info.update(self.episode_metrics(off_road=off_road, rolled_over=rolled_over, collision=collision))
        return observation, float(reward), terminated, truncated, info

    def _account_headway(self, ego: Footprint, period_s: float) -> float:
        """Seconds of the ``period_s`` ending now spent under the headway limit; counts each new violation."""
        gap = self.traffic.lane_gaps(ego)[0][self.road.lane_index(self._d_m)]
        under = ego.speed_mps > 1.0 and gap / ego.speed_mps < HEADWAY_LIMIT_S
        if under and not self._under_headway:
            self.headway_violations += 1
        self._under_headway = under
        if under:
            self.headway_violation_s += period_s
            return period_s
        return 0.0

    def _describe_crash(self, vehicle: int, ego: Footprint) -> dict[str, Any]:
        """The crash with ``vehicle`` as it happened: where that vehicle was relative to the car (``ds_m`` along the
        road, ahead positive; ``dd_m`` across it, left positive, centre to centre), both speeds, who was changing
        lanes, and its ``kind`` (:data:`CRASH_KINDS`)."""
        t = self.traffic
        ds = float(t.offsets_along(ego.s_m)[vehicle])
        other_changing, own_changing = bool(t.from_lane[vehicle] != NO_LANE), self.change is not None
        if own_changing:
            kind = "own_lane_change"
        elif other_changing:
            kind = "cut_in"
        else:
            kind = "rear_end" if ds > 0 else "from_behind"
        return {"kind": kind, "vehicle": vehicle, "ds_m": ds, "dd_m": float(t.d_m[vehicle] - ego.d_m),
                "speed_mps": float(ego.speed_mps), "other_speed_mps": float(t.speed_mps[vehicle]),
                "own_lane_change": own_changing, "other_lane_change": other_changing}

    def episode_metrics(self, *, off_road: bool, rolled_over: bool, collision: bool) -> dict[str, Any]:
        metrics = self._driving_metrics(self.options.route_length_m, off_road=off_road, rolled_over=rolled_over,
                                        collision=collision)
        score = metrics["route_completion"] * HEADWAY_PENALTY_FACTOR ** self.headway_violations
        if collision:
            score *= COLLISION_PENALTY_FACTOR
        if off_road or rolled_over:
            score *= OFF_ROAD_PENALTY_FACTOR
        metrics.update(lane_changes=self.lane_changes, headway_violations=self.headway_violations,
                       headway_violation_s=self.headway_violation_s, noop_manoeuvres=self.noop_manoeuvres,
                       driving_score=score)
        if collision and self.crash is not None:
            metrics["crash"] = self.crash
        return metrics

    # -- what a viewer reads --------------------------------------------------------------------

    @property
    def driving_state(self) -> DrivingState:
        """The car's road-relative state (the perception stage's output type), against its lane's centre."""
        state, road = self.vehicle_state, self.road
        offset = self._d_m - road.lane_center_d(road.lane_index(self._d_m))
        heading = (state.yaw_rad - self._lane_heading + math.pi) % (2 * math.pi) - math.pi
        return DrivingState(offset, heading, state.speed_mps, state.yaw_rate_radps, state.steer_rad,
                            (float(road.curvature_at(self._s_m)),))

    def planned_path(self, horizon_m: float = 60.0, spacing_m: float = 2.0) -> np.ndarray:
        """World x, y of what the planner asks the car to follow ahead: the lane change under way, or the lane's centre."""
        road, s = self.road, self._s_m + np.arange(0.0, horizon_m + spacing_m, spacing_m)
        if self.change is None:
            d = np.full(len(s), road.lane_center_d(self.lane))
        else:
            s_start, d_from, d_to, length = self.change
            u = np.clip((self.road.progress(s_start, self._s_m) + s - self._s_m) / length, 0.0, 1.0)
            d = d_from + (d_to - d_from) * minimum_jerk(u)[0]
        return road.position(road.wrap_s(s), d)

    def _control_snapshot(self, control: int) -> dict[str, Any]:
        """What a viewer draws of one control step inside a decision (see ``control_trace``)."""
        state = self.driving_state
        steer, throttle, brake = self._last_command
        return {"time_s": self._steps * self.decision_dt_s + (control + 1) * self.control_dt_s, "vehicle_state": self.vehicle_state,
                "steer_command_rad": steer, "throttle": throttle, "brake": brake, "target_speed_mps": self.target_speed_mps,
                "lane_offset_m": state.lateral_offset_m, "heading_error_rad": state.heading_error_rad,
                "others": self.other_vehicles(), "plan_xy": self.planned_path(),
                "speed_controller": self.speed_controller.pid.components._asdict()}

    def _nearby(self, within_m: float) -> np.ndarray:
        """Indices of the traffic within ``within_m`` of the car along the road."""
        t = self.traffic
        ds = t.offsets_along(self._s_m)
        return np.flatnonzero(np.abs(ds) <= within_m)

    def other_vehicles(self, within_m: float = 150.0, near: np.ndarray | None = None) -> list[tuple[float, float, float]]:
        """World x, y and yaw of the traffic within ``within_m`` of the car along the road (or of ``near``, its indices)."""
        t, road = self.traffic, self.road
        near = self._nearby(within_m) if near is None else near
        if len(near) == 0:
            return []
        xy = road.position(t.s_m[near], t.d_m[near])
        yaw = road.heading_at(t.s_m[near])
        return [(float(x), float(y), float(heading)) for (x, y), heading in zip(np.atleast_2d(xy), np.atleast_1d(yaw))]

    # -- observation ---------------------------------------------------------------------------

    def camera_image(self) -> np.ndarray:
        """The car's camera now, the other vehicles drawn in as boxes: ``uint8`` RGB ``(camera_height, camera_width, 3)``."""
        state, spec, mount = self.vehicle_state, self.vehicle_spec, self.camera_spec.mount
        pose = camera_pose(mount, state.x_m, state.y_m, state.yaw_rad, state.pitch_rad, state.roll_rad)
        near_indices = self._nearby(CAMERA_RANGE_M)
        t = self.traffic
        near = sorted(zip(self.other_vehicles(CAMERA_RANGE_M, near_indices), t.length_m[near_indices], t.width_m[near_indices]),
                      key=lambda item: -math.hypot(item[0][0] - state.x_m, item[0][1] - state.y_m))  # far ones first
        boxes = [Box3D(x, y, yaw, float(length), float(width), VEHICLE_HEIGHT_M, bottom_m=0.0, color=TRAFFIC_COLOR)
                 for (x, y, yaw), length, width in near]
        if mount.forward_m < spec.length_m / 2:  # behind the front bumper, the camera sees the car
            boxes.append(Box3D(state.x_m, state.y_m, state.yaw_rad, spec.length_m, spec.width_m, spec.body_height_m,
                               bottom_m=spec.wheel_radius_m, color=Palette().body))
        return self.camera.render(pose, boxes)

    def _observe(self) -> np.ndarray:
        if self.camera is not None:
            image = self.last_camera_image = self.camera_image()
            return image
        o, road, t, state = self.options, self.road, self.traffic, self.vehicle_state
        ego = self.ego_footprint()
        lane_now = road.lane_index(self._d_m)
        values = [state.speed_mps, self._d_m - road.lane_center_d(lane_now), ego.heading_rad, state.yaw_rate_radps,
                  float(lane_now), self.cruise_speed_mps, float(self.change is not None)]
        ds = t.offsets_along(ego.s_m)
        dd = t.d_m - ego.d_m
        distance = np.hypot(ds, dd)
        order = [int(i) for i in np.argsort(distance, kind="stable") if distance[i] <= o.sensing_range_m][:o.nearby_vehicles]
        for k in range(o.nearby_vehicles):
            if k < len(order):
                i = order[k]
                values += [1.0, float(ds[i]), float(dd[i]), float(t.speed_mps[i] - state.speed_mps)]
            else:
                values += [0.0, 0.0, 0.0, 0.0]
        gaps_ahead, gaps_behind = self.traffic.lane_gaps(ego)
        for lane in (lane_now - 1, lane_now, lane_now + 1):
            if 0 <= lane < road.lane_count:
                values += [1.0, min(float(gaps_ahead[lane]), o.sensing_range_m), min(float(gaps_behind[lane]), o.sensing_range_m)]
            else:
                values += [0.0, 0.0, 0.0]
        return self.observation_mode.clipped(values)

    def _info(self, *, noop: bool, manoeuvre: str | None) -> dict[str, Any]:
        steer, throttle, brake = self._last_command
        road = self.road
        return {"s_m": self._s_m, "d_m": self._d_m, "lane": self.lane, "speed_mps": self.vehicle_state.speed_mps,
                "lane_offset_m": self._d_m - road.lane_center_d(road.lane_index(self._d_m)),
                "steer_rad": self.vehicle_state.steer_rad, "steer_command_rad": steer, "throttle": throttle, "brake": brake,
                "cruise_speed_mps": self.cruise_speed_mps, "target_speed_mps": self.target_speed_mps, "changing_lane": self.change is not None,
                "manoeuvre": manoeuvre, "noop": bool(noop), "time_s": self._steps * self.decision_dt_s,
                "speed_controller": self.speed_controller.pid.components._asdict()}
