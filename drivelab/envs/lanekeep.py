"""``DriveLab/LaneKeep-v0``: keep a car in its lane around a procedurally generated track."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from drivelab.control import SpeedController
from drivelab.envs.camera import (CAMERA_MOUNTS, CAMERA_RENDERERS, Box3D, CameraSpec, Palette, RoadCamera, camera_pose,
                                  pybullet_camera_image, random_mount, random_palette)
from drivelab.envs.driving import (PLANNED_ACCEL_MPS2, PLANNED_DECEL_MPS2, ROLLOVER_LIMIT_RAD, SPEED_BRAKE_DEADBAND,
                                   TRAINING_TRACK_SEEDS_END, DrivingWorldEnv, SeedCache, check_camera_options, check_speed_loop_rate,
                                   check_track_seeds, is_number, is_whole, option_check, options_from_kwargs, speed_loop_every)
from drivelab.envs.modes import ACTION_MODES, ActionMode, DiscreteSteerAction, SteerAction
from drivelab.envs.observations import OBSERVATION_MODES, DrivingState
from drivelab.envs.vehicle import Vehicle, VehicleSpec
from drivelab.envs.world import PhysicsSettings, World
from drivelab.planning import LaneSpeedProfile, Road, TrackSpec, generate_track, lane_speed_profile

ENV_ID = "DriveLab/LaneKeep-v0"
TRACK_CACHE_SIZE = 64


@dataclass(frozen=True)
class LaneKeepOptions:
    """Every keyword option of ``DriveLab/LaneKeep-v0`` with its default (see the env's docstring)."""

    track_seed: int | None = None
    track_seed_range: tuple[int, int] = (0, TRAINING_TRACK_SEEDS_END)
    track_length_m: float = 400.0
    max_curvature_1pm: float = 1 / 30
    lane_count: int = 1
    lane_width_m: float = 3.5
    lane: int = 0
    laps: float = 1.0
    target_speed_mps: float = 10.0
    max_lateral_accel_mps2: float | None = 3.5
    initial_speed_mps: float = 0.0
    initial_offset_max_m: float = 0.0
    initial_heading_max_rad: float = 0.0
    decision_hz: float = 20.0
    physics_hz: float = 100.0
    # How often the speed PID closes its loop: once a decision, at the rate the steering is commanded ("decision_hz"),
    # or every physics step (None). Once a decision, the rule-based driver's laps of 10 default tracks at 10, 15 and
    # 20 m/s came out as at every physics step (mean lateral error RMS within 0.001 m, mean speed within 0.004 m/s),
    # and the work around the physics falls by a third (BENCHMARKS.md, "The speed loop once a decision").
    speed_loop_hz: float | str | None = "decision_hz"
    max_episode_s: float = 90.0
    curvature_preview_m: tuple[float, ...] = (0.0, 5.0, 10.0, 20.0, 30.0)
    steer_levels: int = 9
    progress_reward_per_m: float = 0.1
    lateral_error_weight: float = 2.0
    off_road_penalty: float = 10.0
    render_width: int = 320
    render_height: int = 240
    camera_width: int = 84
    camera_height: int = 84
    camera_fov_deg: float = 90.0
    camera_mount: str = "hood"
    camera_renderer: str = "opencv"
    camera_randomize: bool = False
    camera_pixel_noise: float = 0.0
    perception_model: str | None = None

    def __post_init__(self) -> None:
        require = option_check(ENV_ID)

        for name in ("track_length_m", "lane_width_m", "laps", "target_speed_mps", "decision_hz", "physics_hz",
                     "max_episode_s", "max_curvature_1pm", "render_width", "render_height"):
            value = getattr(self, name)
            require(is_number(value) and value > 0,
                    f"option {name} must be a positive number, got {value!r}")
        for name in ("initial_speed_mps", "initial_offset_max_m", "initial_heading_max_rad", "progress_reward_per_m",
                     "lateral_error_weight", "off_road_penalty"):
            value = getattr(self, name)
            require(is_number(value) and value >= 0,
                    f"option {name} must be a number >= 0, got {value!r}")
        value = self.max_lateral_accel_mps2
        require(value is None or (is_number(value) and value > 0),
                f"option max_lateral_accel_mps2 must be a positive number (m/s²) or None (hold target_speed_mps in bends too), got {value!r}")
        require(isinstance(self.lane_count, int) and self.lane_count >= 1, f"option lane_count must be an integer >= 1, got {self.lane_count!r}")
        require(isinstance(self.lane, int) and 0 <= self.lane < self.lane_count,
                f"option lane must be an integer in 0..{self.lane_count - 1} (0 = rightmost), got {self.lane!r}")
        check_track_seeds(require, self.track_seed, self.track_seed_range, "track")
        check_camera_options(require, self)
        require(self.camera_renderer in CAMERA_RENDERERS,
                f"option camera_renderer must be one of {', '.join(CAMERA_RENDERERS)}, got {self.camera_renderer!r}")
        require(isinstance(self.camera_randomize, bool), f"option camera_randomize must be true or false, got {self.camera_randomize!r}")
        noise = self.camera_pixel_noise
        require(is_number(noise) and 0 <= noise <= 100,
                f"option camera_pixel_noise must be a standard deviation in 0..100 (pixel values 0..255), got {noise!r}")
        require(self.perception_model is None or isinstance(self.perception_model, str),
                f"option perception_model must be a run directory (a string), got {self.perception_model!r}")
        require(isinstance(self.steer_levels, int) and self.steer_levels >= 2, f"option steer_levels must be an integer >= 2, got {self.steer_levels!r}")
        substeps = self.physics_hz / self.decision_hz
        require(is_whole(substeps),
                f"option physics_hz ({self.physics_hz}) must be a whole multiple of decision_hz ({self.decision_hz})")
        check_speed_loop_rate(require, self.speed_loop_hz, self.physics_hz, self.decision_hz, "decision_hz")
        try:
            self.track_spec()
        except ValueError as error:
            raise ValueError(f"{ENV_ID}: options track_length_m, max_curvature_1pm, lane_count and lane_width_m "
                             f"do not make a track: {str(error).splitlines()[0]}") from None
        require(len(self.curvature_preview_m) >= 1 and all(d >= 0 for d in self.curvature_preview_m),
                f"option curvature_preview_m must be a non-empty list of distances >= 0, got {self.curvature_preview_m!r}")

    def camera_spec(self) -> CameraSpec:
        return CameraSpec(width=self.camera_width, height=self.camera_height, fov_deg=float(self.camera_fov_deg),
                          mount=CAMERA_MOUNTS[self.camera_mount])

    def track_spec(self) -> TrackSpec:
        return TrackSpec(length_m=self.track_length_m, max_curvature_1pm=self.max_curvature_1pm,
                         lane_count=self.lane_count, lane_width_m=self.lane_width_m)

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any]) -> "LaneKeepOptions":
        return options_from_kwargs(cls, ENV_ID, kwargs, ("curvature_preview_m", "track_seed_range"))


class LaneKeepEnv(DrivingWorldEnv):
    """
    ## Description
    A car-sized vehicle (4.6 m long, 2.7 m wheelbase, rear-wheel drive, Ackermann steering; see
    :mod:`drivelab.envs.vehicle`) drives laps of a closed track generated from a seed, in PyBullet.
    The task is to stay in the lane and complete the route. Physics ticks at ``physics_hz`` (100 Hz), and the speed PID
    closes its loop once a decision (``speed_loop_hz``); the agent decides at ``decision_hz`` (20 Hz), so one ``step`` is 0.05 s of simulated time.

    ## Action Space (``action=``)
    - ``"direct"``: ``Box([-1, 0, 0], [1, 1, 1], float32)`` = (steering × max steer 0.5 rad, throttle, brake).
      Brake overrides throttle on the driven wheels.
    - ``"steer"`` (default): ``Box(-1, 1, (1,), float32)``, steering × 0.5 rad; the speed PID follows the planned speed.
    - ``"steer_discrete"``: ``Discrete(steer_levels)``; action k steers at ``−0.5 + k·1.0/(steer_levels−1)`` rad;
      the speed PID follows the planned speed.

    The planned speed (the planning stage's, :func:`drivelab.planning.lane_speed_profile`, once per track) is
    ``target_speed_mps`` wherever the lane's curvature κ allows it, and ``sqrt(max_lateral_accel_mps2 / |κ|)`` in
    the bends, with braking before them at 2 m/s² and acceleration out of them at 1 m/s². The speed PID reads it 0.5 s ahead of the car, coasts instead of braking for commands under 5 % brake, and
    has traction control: its throttle shrinks with the lateral acceleration (to 30 % at 2.8 m/s² and beyond),
    since full throttle in a bend spins this rear-wheel-drive car. ``max_lateral_accel_mps2=None`` holds
    ``target_speed_mps`` everywhere, bends included, without traction control (at 15 m/s the rule-based driver
    then left the road on each of 10 default tracks).

    Out-of-range continuous actions are clipped to the box. NaN or inf in an action raises ``ValueError``.
    Positive steering turns left. The steering servo is rate-limited (1.2 rad/s).

    ## Observation Space (``observation=``)
    ``"state"`` (default): ``Box(float32)`` of road-relative features, each clipped to its bounds:

    | index | feature | unit | bounds |
    | --- | --- | --- | --- |
    | 0 | ``lateral_offset_m``: car centre's offset from the lane centre, left positive | m | ±10 |
    | 1 | ``heading_error_rad``: car yaw − lane tangent yaw | rad | ±π |
    | 2 | ``speed_mps``: forward speed | m/s | −20..60 |
    | 3 | ``yaw_rate_radps`` | rad/s | ±5 |
    | 4 | ``steer_rad``: measured front-wheel angle | rad | ±0.5 |
    | 5.. | ``curvature_{d}m_1pm``: lane curvature ``d`` metres ahead, for each ``d`` in ``curvature_preview_m`` (0, 5, 10, 20, 30) | 1/m | ±1 |

    The names are in ``env.unwrapped.observation_features``.

    ``"camera"``: ``Box(0, 255, (camera_height, camera_width, 3), uint8)``, the car's camera (RGB, row 0 at the
    top): a pinhole camera of vertical field of view ``camera_fov_deg`` on ``camera_mount`` (``"hood"``: just
    ahead of the bumper, 1.2 m up, pitched 10° down; ``"chase"``: 6.5 m behind the centre, 3 m up, 14° down, the
    car in view), riding the chassis' roll and pitch. ``camera_renderer="opencv"`` (default, :mod:`drivelab.envs.camera`)
    warps a top-down texture of the road through the ground plane's homography; ``"pybullet"`` renders the
    PyBullet scene (TinyRenderer; OpenGL through EGL where a GPU is present). ``camera_randomize`` draws, per episode
    from the env's generator, the road, marking, verge and sky colours, brightness and texture grain (the opencv
    renderer's; PyBullet's meshes keep their colours) and the camera's height (±0.15 m) and pitch (±2°); ``camera_pixel_noise`` adds Gaussian noise of that standard
    deviation (pixel values 0..255) to every image. The same seed gives the same images.

    ``"perceived"``: the ``"state"`` box; lateral offset, heading error and curvature are estimated from the camera by
    the perception model in ``perception_model`` (a run directory of ``drivelab perception train``), the rest comes
    from the car's sensors. ``env.unwrapped.observation_mode.last_truth`` and ``mean_absolute_errors()`` hold the
    ground truth beside it.

    ## Rewards
    Per step: ``progress_reward_per_m`` (0.1) × metres of progress along the lane
    − ``lateral_error_weight`` (2.0) × |lateral offset| / half lane width × step duration (s);
    − ``off_road_penalty`` (10) on the step that leaves the road or rolls the car over.

    At 10 m/s progress earns 1.0 per second; driving 0.2 m off centre costs 0.23 per second. The offset is
    penalised linearly, not squared, so that the pull towards the centre does not fade near it: with a
    squared term (weight 1) a learned policy settled 0.24 m off centre, where the cost was 2 % of the
    progress reward.

    ## Starting State
    At the route's start (s = 0) on the centre of lane ``lane``, aligned with it, at ``initial_speed_mps`` (0);
    optionally displaced by up to ``initial_offset_max_m`` and rotated by up to ``initial_heading_max_rad``
    (uniform, from the env's seeded generator).

    ## Episode End
    - Termination: the car's centre is off the road (|d| > road half-width + 0.5 m shoulder), the car rolls
      over, or the route (``laps`` × lap length) is complete.
    - Truncation: ``max_episode_s`` (90 s) of simulated time.

    The final step's ``info`` carries the episode metrics: ``route_completion`` (0..1), ``lateral_error_rms`` (m),
    ``max_lateral_error_m``, ``off_road`` (bool), ``rolled_over`` (bool), ``collision`` (bool), ``mean_speed`` (m/s),
    ``distance_m``, ``episode_time_s``, ``track_seed``. Every step's ``info`` has ``s_m``, ``d_m``, ``lane_offset_m``,
    ``speed_mps``, ``steer_rad``, ``steer_command_rad``, ``throttle``, ``brake``, ``time_s``, and in the steering
    modes ``target_speed_mps`` (the speed PID's set-point) and ``speed_controller`` (the PID's terms).

    ## Arguments
    ``gym.make("DriveLab/LaneKeep-v0", observation="state", action="steer", render_mode=None, **options)`` with options:
    ``track_seed`` (None: a new track each episode from the reset seed; an int: always that track),
    ``track_length_m`` (400), ``max_curvature_1pm`` (1/30), ``lane_count`` (1), ``lane_width_m`` (3.5),
    ``lane`` (0, rightmost), ``laps`` (1.0), ``target_speed_mps`` (10), ``max_lateral_accel_mps2`` (3.5 m/s²; None:
    a constant speed set-point), ``initial_speed_mps`` (0),
    ``initial_offset_max_m`` (0), ``initial_heading_max_rad`` (0), ``decision_hz`` (20), ``physics_hz`` (100),
    ``speed_loop_hz`` ("decision_hz": once a decision; None: every physics step; or a rate that divides ``physics_hz``
    and is a whole multiple of ``decision_hz``),
    ``max_episode_s`` (90),
    ``curvature_preview_m`` ((0, 5, 10, 20, 30)), ``steer_levels`` (9),
    ``progress_reward_per_m`` (0.1), ``lateral_error_weight`` (2.0), ``off_road_penalty`` (10),
    ``render_width`` (320), ``render_height`` (240), ``track_seed_range`` ([0, 1000000)): where random
    tracks are drawn from; ``camera_width`` (84), ``camera_height`` (84), ``camera_fov_deg`` (90),
    ``camera_mount`` ("hood"), ``camera_renderer`` ("opencv"), ``camera_randomize`` (False),
    ``camera_pixel_noise`` (0), ``perception_model`` (None). An unknown option raises a one-line error listing these.

    ``reset(seed=..., options={"track_seed": k})`` drives track ``k`` for that episode (evaluation uses
    track seeds from 1,000,000 up, outside the default training range).

    ``render_mode``: ``"rgb_array"`` (a chase camera, PyBullet's TinyRenderer) or ``"human"`` (the PyBullet GUI).
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 20}

    def __init__(self, observation: str = "state", action: str = "steer", render_mode: str | None = None, **options: Any) -> None:
        super().__init__()
        self.options = LaneKeepOptions.from_kwargs(options)
        if observation not in OBSERVATION_MODES:
            raise ValueError(f"{ENV_ID}: unknown observation {observation!r}; allowed: {', '.join(OBSERVATION_MODES)}")
        if action not in ACTION_MODES:
            raise ValueError(f"{ENV_ID}: unknown action {action!r}; allowed: {', '.join(ACTION_MODES)}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"{ENV_ID}: unknown render_mode {render_mode!r}; allowed: None, {', '.join(self.metadata['render_modes'])}")
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": self.options.decision_hz}
        self.vehicle_spec = VehicleSpec()
        o = self.options
        self.observation_mode = OBSERVATION_MODES[observation](
            max_steer_rad=self.vehicle_spec.max_steer_rad, curvature_preview_m=o.curvature_preview_m,
            camera_shape=(o.camera_height, o.camera_width), perception_model=o.perception_model,
        )
        if o.perception_model is not None and observation != "perceived":
            raise ValueError(f"{ENV_ID}: option perception_model is for observation='perceived', not {observation!r}")
        self.camera_spec = o.camera_spec()
        self.camera_mount = self.camera_spec.mount
        self.camera = RoadCamera(self.camera_spec) if self.observation_mode.needs_camera and o.camera_renderer == "opencv" else None
        self._pixel_rng: np.random.Generator | None = None
        self._needs_road_meshes = render_mode is not None or (self.observation_mode.needs_camera and self.camera is None)
        self.action_mode: ActionMode = ACTION_MODES[action](
            max_steer_rad=self.vehicle_spec.max_steer_rad, steer_levels=self.options.steer_levels
        )
        self.observation_space = self.observation_mode.space
        self.action_space = self.action_mode.space
        self.observation_features = self.observation_mode.feature_names
        self.substeps = round(self.options.physics_hz / self.options.decision_hz)
        self.speed_loop_every = speed_loop_every(o.speed_loop_hz, o.physics_hz, o.decision_hz)
        self.decision_dt_s = 1.0 / self.options.decision_hz
        self.world = World(PhysicsSettings(physics_hz=self.options.physics_hz), gui=render_mode == "human")
        self.speed_controller = SpeedController(brake_deadband=SPEED_BRAKE_DEADBAND)
        self._tracks = SeedCache(TRACK_CACHE_SIZE)
        self.speed_profile: LaneSpeedProfile | None = None
        self.road: Road | None = None
        self.ego: Vehicle | None = None
        self.last_camera_image: np.ndarray | None = None

    # -- episode ------------------------------------------------------------------------------

    def _track(self, seed: int) -> tuple[Road, LaneSpeedProfile | None]:
        """The track of ``seed`` and the planned speed along the driven lane (None: constant target speed)."""
        return self._tracks.get(seed, self._build_track)

    def _build_track(self, seed: int) -> tuple[Road, LaneSpeedProfile | None]:
        o = self.options
        road = generate_track(seed, o.track_spec())
        profile = None
        if o.max_lateral_accel_mps2 is not None:
            profile = lane_speed_profile(road, road.lane_center_d(o.lane), o.target_speed_mps, o.max_lateral_accel_mps2,
                                         max_accel_mps2=PLANNED_ACCEL_MPS2, max_decel_mps2=PLANNED_DECEL_MPS2)
        return road, profile

    def clear_track_cache(self) -> None:
        """Forget the tracks built so far (the last ``TRACK_CACHE_SIZE`` are kept for reuse), so that the
        next reset builds its track anew: benchmarks use it to pay for every track, as training does."""
        self._tracks.clear()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        o = self.options
        self.track_seed = self._episode_track_seed(ENV_ID, options, o.track_seed, o.track_seed_range)
        road, self.speed_profile = self._track(self.track_seed)
        self.road = road
        lane_d = road.lane_center_d(o.lane)
        d0 = lane_d + self.np_random.uniform(-1, 1) * o.initial_offset_max_m
        heading0 = float(road.heading_at(0.0)) + self.np_random.uniform(-1, 1) * o.initial_heading_max_rad
        x0, y0 = road.position(0.0, d0)
        pose = dict(x_m=float(x0), y_m=float(y0), yaw_rad=heading0, speed_mps=o.initial_speed_mps)
        self._place_ego(road, pose)
        if self.observation_mode.needs_camera or self.camera is not None:
            self._set_up_camera(road)
        self.route_length_m = o.laps * self.road.length_m
        self._lane_d = lane_d
        self._road_limit_m = self.road.half_width_m + self.road.shoulder_m
        self._start_records()
        self.target_speed_mps = o.target_speed_mps
        self._sense()
        if self.render_mode == "human":
            self._aim_gui_camera()  # the GUI opens on the car, not on the world's origin
        return self._observe(), self._info()

    def _set_up_camera(self, road: Road) -> None:
        """The episode's camera: its mount and the scene's look (randomised when asked), and the road's texture.

        Randomisation draws from the env's generator after everything else at reset, so the tracks and
        starts of a seed stay what they are without it.
        """
        o, rng = self.options, self.np_random
        mount, palette, grain_rng = CAMERA_MOUNTS[o.camera_mount], Palette(), None
        if o.camera_randomize:
            palette, mount, grain_rng = random_palette(rng), random_mount(mount, rng), rng
        self.camera_mount = mount
        if o.camera_pixel_noise > 0:
            self._pixel_rng = np.random.default_rng(int(rng.integers(2**63)))
        if self.camera is not None:
            self.camera.set_road(road, palette, grain_rng)

    def camera_image(self) -> np.ndarray:
        """What the car's camera sees now: ``uint8`` RGB, ``(camera_height, camera_width, 3)``."""
        if self.ego is None:
            raise RuntimeError(f"{ENV_ID}: call reset() before camera_image()")
        if self.camera is None and not self._needs_road_meshes:
            if self.options.camera_renderer != "opencv":
                raise RuntimeError(f"{ENV_ID}: camera_image() with camera_renderer='pybullet' needs the road's meshes, "
                                   f"which only the camera observation modes build; use camera_renderer='opencv'")
            # Another observation mode asks for a picture (a viewer, say): the camera is made when first asked.
            self.camera = RoadCamera(self.camera_spec)
            self._set_up_camera(self.road)
        state = self.vehicle_state
        pose = camera_pose(self.camera_mount, state.x_m, state.y_m, state.yaw_rad, state.pitch_rad, state.roll_rad)
        if self.camera is not None:
            s, boxes = self.vehicle_spec, ()
            if self.camera_mount.forward_m < s.length_m / 2:  # behind the front bumper, the camera sees the car
                boxes = (Box3D(state.x_m, state.y_m, state.yaw_rad, s.length_m, s.width_m, s.body_height_m,
                               bottom_m=s.wheel_radius_m, color=Palette().body),)  # the body rests on the wheel centres
            image = self.camera.render(pose, boxes)
        else:
            image = pybullet_camera_image(self.world.client, self.camera_spec, pose, self.world.camera_renderer())
        if self.options.camera_pixel_noise > 0:
            noise = self._pixel_rng.normal(0.0, self.options.camera_pixel_noise, image.shape)
            image = np.clip(image + noise, 0, 255).astype(np.uint8)
        return image

    def _driving_state(self) -> DrivingState:
        state = self.vehicle_state
        heading_error = (state.yaw_rad - self._lane_heading + math.pi) % (2 * math.pi) - math.pi
        return DrivingState(self._d_m - self._lane_d, heading_error, state.speed_mps, state.yaw_rate_radps,
                            state.steer_rad, self.road.curvatures_ahead(self._s_m, self.options.curvature_preview_m))

    def _observe(self) -> np.ndarray:
        self.driving_state = self._driving_state()
        # Kept for a viewer (what the car's camera saw this step), so it need not render it again.
        image = self.last_camera_image = self.camera_image() if self.observation_mode.needs_camera else None
        return self.observation_mode.observe(self.driving_state, image)

    def step(self, action):
        ego = self.ego
        if ego is None:
            raise RuntimeError(f"{ENV_ID}: call reset() before step()")
        command = self.action_mode.command(action)
        world, o = self.world, self.options
        ego.steer(command.steer_rad)
        if command.throttle is None:
            self._hold_speed(command.steer_rad)
        else:
            ego.drive(command.throttle, command.brake)
            self._last_command = (command.steer_rad, command.throttle, command.brake)
            for _ in range(self.substeps):
                world.step_physics()
        s_before = self._s_m
        self._steps += 1
        self._sense()
        state = self.vehicle_state
        lane_offset = self._d_m - self._lane_d
        progress_m = self._record_step(s_before, lane_offset)

        off_road = not abs(self._d_m) <= self._road_limit_m  # NaN counts as off the road
        rolled_over = max(abs(state.roll_rad), abs(state.pitch_rad)) > ROLLOVER_LIMIT_RAD
        route_done = self._progress_m >= self.route_length_m
        terminated = off_road or rolled_over or route_done
        truncated = not terminated and self._steps * self.decision_dt_s >= o.max_episode_s - 1e-9

        half_lane = o.lane_width_m / 2
        reward = o.progress_reward_per_m * progress_m - o.lateral_error_weight * abs(lane_offset) / half_lane * self.decision_dt_s
        if off_road or rolled_over:
            reward -= o.off_road_penalty

        observation = self._observe()
        info = self._info()
        if terminated or truncated:
            info.update(self.episode_metrics(off_road=off_road, rolled_over=rolled_over))
        return observation, float(reward), terminated, truncated, info

    def episode_metrics(self, *, off_road: bool, rolled_over: bool) -> dict[str, Any]:
        return self._driving_metrics(self.route_length_m, off_road=off_road, rolled_over=rolled_over, collision=False)

    def _info(self) -> dict[str, Any]:
        steer, throttle, brake = self._last_command
        info = {
            "s_m": self._s_m,
            "d_m": self._d_m,
            "lane_offset_m": self.driving_state.lateral_offset_m if hasattr(self, "driving_state") else 0.0,
            "speed_mps": self.vehicle_state.speed_mps,
            "steer_rad": self.vehicle_state.steer_rad,
            "steer_command_rad": steer,
            "throttle": throttle,
            "brake": brake,
            "time_s": self._steps * self.decision_dt_s,
        }
        if isinstance(self.action_mode, (SteerAction, DiscreteSteerAction)):
            info["target_speed_mps"] = self.target_speed_mps
            info["speed_controller"] = self.speed_controller.pid.components._asdict()
        return info
