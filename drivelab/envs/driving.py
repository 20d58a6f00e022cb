"""What the driving worlds share: the PyBullet world with the ego car on a road, ground-truth sensing in
road coordinates, the speed loop at physics rate, the episode's bookkeeping, and rendering.

``DriveLab/LaneKeep-v0`` (:mod:`drivelab.envs.lanekeep`) and ``DriveLab/Highway-v0``
(:mod:`drivelab.envs.highway`) are :class:`DrivingWorldEnv` subclasses: they build their road and their
observation, action and reward, and leave the car, the world and the metrics every report uses here.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections import OrderedDict
from typing import Any, Callable

import gymnasium as gym
import numpy as np

from drivelab.envs.vehicle import Vehicle
from drivelab.planning import LaneSpeedProfile, Road

# The speed PID coasts for commands in (-0.05, 0) instead of touching the brakes. Without it, the
# PI loop's small overshoots pressed the brakes on a fifth of the cruising steps (measured on the
# rule-based driver's laps): chattering pedals no cruise control has, which also made each physics
# step ~8 % dearer (four braked wheel motors instead of two driven ones). Drag settles the overshoot;
# lap metrics did not change in their fourth digit.
SPEED_BRAKE_DEADBAND = 0.05
# The speed set-point is read this far ahead of the car (at its current speed): the speed loop lags
# by about its 0.25 s time constant plus the decision period, so braking for a bend starts on time.
SPEED_PREVIEW_S = 0.5
# Braking and acceleration the planned speed asks of the car: well inside what its brakes (5 m/s²)
# and engine (2 m/s² at full throttle) deliver, so the speed loop can follow the plan.
PLANNED_DECEL_MPS2 = 2.0
PLANNED_ACCEL_MPS2 = 1.0
# Traction control: the throttle the speed loop may use shrinks with the lateral acceleration, so the
# driven rear tyres keep grip for cornering (full throttle in a bend spun the car: power oversteer).
TRACTION_LATERAL_MPS2 = 4.0
TRACTION_MIN_THROTTLE = 0.3
ROLLOVER_LIMIT_RAD = 1.0  # roll or pitch beyond this: the car has left its wheels
# Roads drawn at random come from [0, 1,000,000) by default; evaluation uses seeds from 1,000,000 up
# (reset(options={"track_seed": ...})), so evaluation roads are never trained on.
TRAINING_TRACK_SEEDS_END = 1_000_000


def is_number(value: Any) -> bool:
    """A finite int or float, not a bool (YAML's ``yes`` must not pass as 1)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_whole(ratio: float) -> bool:
    """A ratio of two rates that is a whole number >= 1 (up to rounding): one rate ticks a whole number of times per
    tick of the other."""
    return math.isfinite(ratio) and abs(ratio - round(ratio)) < 1e-9 and round(ratio) >= 1


def check_speed_loop_rate(require: Callable[[bool, str], None], speed_loop_hz: Any, physics_hz: float, control_hz: float,
                          control_name: str) -> None:
    """The speed loop closes every physics step (``None``), once a control period (``control_name`` itself, e.g.
    ``"decision_hz"``), or every whole number of physics steps, a whole number of times per control period."""
    fits = speed_loop_hz is None or speed_loop_hz == control_name or (
        is_number(speed_loop_hz) and speed_loop_hz > 0 and is_whole(physics_hz / speed_loop_hz) and is_whole(speed_loop_hz / control_hz))
    require(fits, f"option speed_loop_hz must be None (every physics step), {control_name!r} (once per {control_name} period) or "
                  f"a rate that divides physics_hz ({physics_hz}) and is a whole multiple of {control_name} ({control_hz}), "
                  f"got {speed_loop_hz!r}")


def speed_loop_every(speed_loop_hz: float | str | None, physics_hz: float, control_hz: float) -> int:
    """Physics steps per period of the speed loop: 1 for ``None``, a control period's for the control rate's name."""
    if speed_loop_hz is None:
        return 1
    return round(physics_hz / (control_hz if isinstance(speed_loop_hz, str) else speed_loop_hz))


def option_check(env_id: str) -> Callable[[bool, str], None]:
    """``require(condition, message)``: a one-line ``ValueError`` naming ``env_id`` when the condition fails."""
    def require(condition: bool, message: str) -> None:
        if not condition:
            raise ValueError(f"{env_id}: {message}")

    return require


def check_track_seeds(require: Callable[[bool, str], None], track_seed: Any, track_seed_range: Any, road: str) -> None:
    """The ``track_seed`` and ``track_seed_range`` options every driving world takes (``road``: "track" or "road")."""
    require(track_seed is None or (isinstance(track_seed, int) and track_seed >= 0),
            f"option track_seed must be None (a new {road} each episode) or an integer >= 0, got {track_seed!r}")
    low_high = track_seed_range
    require(len(low_high) == 2 and all(isinstance(v, int) and v >= 0 for v in low_high) and low_high[0] < low_high[1],
            f"option track_seed_range must be two integers [low, high) with 0 <= low < high, got {low_high!r}")


def check_camera_options(require: Callable[[bool, str], None], options: Any) -> None:
    """``camera_width``, ``camera_height``, ``camera_fov_deg`` and ``camera_mount``."""
    from drivelab.envs.camera import CAMERA_MOUNTS

    for name in ("camera_width", "camera_height"):
        value = getattr(options, name)
        require(isinstance(value, int) and not isinstance(value, bool) and 8 <= value <= 1024,
                f"option {name} must be an integer number of pixels in 8..1024, got {value!r}")
    fov = options.camera_fov_deg
    require(is_number(fov) and 10 <= fov <= 150, f"option camera_fov_deg must be a vertical field of view in 10..150 degrees, got {fov!r}")
    require(options.camera_mount in CAMERA_MOUNTS,
            f"option camera_mount must be one of {', '.join(CAMERA_MOUNTS)}, got {options.camera_mount!r}")


def options_from_kwargs(cls: type, env_id: str, kwargs: dict[str, Any], tuple_options: tuple[str, ...]):
    """``cls(**kwargs)`` for an env's options dataclass; an unknown keyword is a one-line error listing the allowed
    ones, and lists given for ``tuple_options`` become tuples (the dataclass is frozen and hashable)."""
    allowed = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ValueError(f"{env_id}: unknown option {unknown[0]!r}; allowed: observation, action, render_mode, {', '.join(allowed)}")
    for name in tuple_options:
        if name in kwargs and isinstance(kwargs[name], (list, tuple)):
            kwargs = {**kwargs, name: tuple(kwargs[name])}
    return cls(**kwargs)


class SeedCache:
    """The last ``size`` roads built, by seed (with what was planned on them): a training env that meets a seed
    again does not build it again."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[int, Any] = OrderedDict()

    def get(self, seed: int, build: Callable[[int], Any]) -> Any:
        entry = self._entries.get(seed)
        if entry is None:
            entry = self._entries[seed] = build(seed)
            if len(self._entries) > self.size:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(seed)
        return entry

    def clear(self) -> None:
        self._entries.clear()


class DrivingWorldEnv(gym.Env):
    """The ego car in a PyBullet world on a road (the shared part of the driving envs).

    A subclass sets, in its ``__init__``: ``options`` (with ``target_speed_mps``, ``render_width`` and
    ``render_height``), ``world``, ``vehicle_spec``, ``speed_controller``, ``substeps`` (physics steps per
    control period), ``speed_loop_every`` (physics steps per period of the speed loop, which divides ``substeps``),
    ``speed_profile`` (or None) and ``_needs_road_meshes``; and, each reset, calls
    :meth:`_place_ego` and :meth:`_start_records`, then :meth:`_sense`.
    """

    road: Road | None = None
    ego: Vehicle | None = None
    speed_profile: LaneSpeedProfile | None = None

    def _episode_track_seed(self, env_id: str, reset_options: dict[str, Any] | None, configured: int | None,
                            seed_range: tuple[int, int]) -> int:
        """The road of this episode: ``reset(options={"track_seed": k})``, else the option's, else drawn from the
        range by the env's generator. A bad reset option is a one-line error."""
        unknown = sorted(set(reset_options or {}) - {"track_seed"})
        if unknown:
            raise ValueError(f"{env_id}: unknown reset option {unknown[0]!r}; allowed: track_seed")
        requested = (reset_options or {}).get("track_seed", configured)
        if requested is not None and not (isinstance(requested, (int, np.integer)) and requested >= 0):
            raise ValueError(f"{env_id}: track_seed must be an integer >= 0, got {requested!r}")
        return int(requested) if requested is not None else int(self.np_random.integers(*seed_range))

    def _place_ego(self, road: Road, pose: dict[str, float]) -> None:
        """The world at the episode's start: the car at ``pose`` on ``road``.

        Headless, the world goes back to its snapshot (ground and car, as built) in a fraction of a
        millisecond. PyBullet's renderer also sees the road's meshes, which change with the road, so
        then the world is built anew. Either way the car is built at the origin and then placed, so
        both paths give the same state, bit for bit (tests/envs/test_lanekeep.py checks it).
        """
        world = self.world
        if self._needs_road_meshes or not world.restore_snapshot():
            world.clear()
            self.ego = world.add_vehicle(self.vehicle_spec)
            if not self._needs_road_meshes:
                world.save_snapshot()
        self.ego.place(**pose)
        world.set_road(road)
        self.speed_controller.reset()
        if self._needs_road_meshes:
            world.ensure_road_visuals()

    def _start_records(self) -> None:
        """The episode's bookkeeping, from zero."""
        self._progress_m = 0.0
        self._steps = 0
        self._sum_sq_lane_offset = 0.0
        self._max_abs_lane_offset = 0.0
        self._sum_speed = 0.0
        self._last_command = (0.0, 0.0, 0.0)

    def _record_step(self, s_before: float, lane_offset: float) -> float:
        """One decision step in the episode's records: progress since ``s_before`` (returned, m), the offset
        from the lane centre and the speed."""
        progress_m = self.road.progress(s_before, self._s_m)
        self._progress_m += progress_m
        self._sum_sq_lane_offset += lane_offset * lane_offset
        if abs(lane_offset) > self._max_abs_lane_offset:
            self._max_abs_lane_offset = abs(lane_offset)
        self._sum_speed += self.vehicle_state.speed_mps
        return progress_m

    def _driving_metrics(self, route_length_m: float, *, off_road: bool, rolled_over: bool, collision: bool) -> dict[str, Any]:
        """The metrics every driving report uses, for the episode so far."""
        steps = max(self._steps, 1)
        return {
            "route_completion": float(np.clip(self._progress_m / route_length_m, 0.0, 1.0)),
            "lateral_error_rms": math.sqrt(self._sum_sq_lane_offset / steps),
            "max_lateral_error_m": self._max_abs_lane_offset,
            "off_road": bool(off_road),
            "rolled_over": bool(rolled_over),
            "collision": bool(collision),
            "mean_speed": self._sum_speed / steps,
            "distance_m": self._progress_m,
            "episode_time_s": self._steps * self.decision_dt_s,
            "track_seed": self.track_seed,
        }

    @property
    def s_m(self) -> float:
        """The car's arc length along the road (m), as sensed at the last reset or step."""
        return self._s_m

    def _sense(self) -> None:
        """Read the ego car's state and place it on the road (ground-truth sensing)."""
        state = self.vehicle_state = self.ego.state()
        if self._steps:
            frenet = self.road.project_point(state.x_m, state.y_m, self._s_m, window_m=30.0)
        else:
            frenet = self.road.project(np.array([state.x_m, state.y_m]))
        self._s_m, self._d_m = float(frenet.s), float(frenet.d)
        self._lane_heading = float(frenet.heading)

    def _hold_speed(self, steer_rad: float) -> None:
        """The control period's physics steps, with the speed PID closing its loop every ``speed_loop_every`` of them."""
        ego, world, controller, state = self.ego, self.world, self.speed_controller, self.vehicle_state
        target = self.target_speed_mps = self._planned_speed()
        if self.speed_profile is not None:
            lateral_accel = abs(state.speed_mps * state.yaw_rate_radps)
            cap = max(TRACTION_MIN_THROTTLE, 1.0 - lateral_accel / TRACTION_LATERAL_MPS2)
            controller.pid.output_limits = (-1.0, cap)
        every = self.speed_loop_every
        advance = world.step_physics if every == 1 else functools.partial(world.step_physics_for, every)
        # The first measurement is the one sensed at the end of the last step: no physics ran since,
        # and it is the speed along the same yaw, so it saves a PyBullet query.
        pedals = controller.run(target, state.speed_mps, world.dt_s * every, self.substeps // every,
                                measure_speed=functools.partial(ego.forward_speed_mps, state.yaw_rad),
                                apply_pedals=ego.drive, advance=advance)
        self._last_command = (steer_rad, pedals.throttle, pedals.brake)

    def _planned_speed(self) -> float:
        """The speed loop's set-point for this decision period: the planned speed just ahead of the car."""
        if self.speed_profile is None:
            return self.options.target_speed_mps
        state = self.vehicle_state
        return self.speed_profile.at(self._s_m + max(state.speed_mps, 0.0) * SPEED_PREVIEW_S)

    # -- rendering ------------------------------------------------------------------------------

    def render(self):
        if self.render_mode is None or self.ego is None:
            return None
        state = self.vehicle_state
        c = self.world.client
        if self.render_mode == "human":
            self._aim_gui_camera()
            return None
        p = self.world._p
        behind, height = 12.0, 5.0
        eye = [state.x_m - behind * math.cos(state.yaw_rad), state.y_m - behind * math.sin(state.yaw_rad), height]
        target = [state.x_m + 8 * math.cos(state.yaw_rad), state.y_m + 8 * math.sin(state.yaw_rad), 0.0]
        width, height_px = self.options.render_width, self.options.render_height
        view = c.computeViewMatrix(eye, target, [0, 0, 1])
        projection = c.computeProjectionMatrixFOV(60, width / height_px, 0.5, 300.0)
        _, _, rgba, _, _ = c.getCameraImage(width, height_px, view, projection, renderer=p.ER_TINY_RENDERER)
        return np.asarray(rgba, dtype=np.uint8).reshape(height_px, width, 4)[:, :, :3]

    def _aim_gui_camera(self) -> None:
        """The GUI's camera chases the car: 12 m from it, 25° down, looking along its heading."""
        state = self.vehicle_state
        self.world.client.resetDebugVisualizerCamera(12.0, math.degrees(state.yaw_rad) - 90, -25, [state.x_m, state.y_m, 0.5])

    def close(self) -> None:
        self.world.close()
