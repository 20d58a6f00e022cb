"""Action modes: where the agent plugs into the control stack, looked up by name.

- ``"direct"``: the agent is the whole stack below decision: steering, throttle and brake, no controller.
- ``"steer"``: continuous steering; the speed PID holds the target speed.
- ``"steer_discrete"``: one of ``steer_levels`` evenly spaced steering angles; the speed PID holds the
  target speed (for DQN and other discrete-action agents).

- ``"meta"`` (:class:`MetaAction`, ``DriveLab/Highway-v0`` only): a manoeuvre that the env's planner and
  controllers carry out; not in ``ACTION_MODES``, which LaneKeep takes.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np
from gymnasium import spaces


class VehicleCommand(NamedTuple):
    """What the vehicle's actuators get for the next decision period.

    ``throttle``/``brake`` are ``None`` when the speed controller is to hold the target speed.
    (A named tuple rather than a frozen dataclass: one is made every env step, and a tuple is made
    in a third of the time.)
    """

    steer_rad: float
    throttle: float | None = None
    brake: float | None = None

    @property
    def speed_controlled(self) -> bool:
        return self.throttle is None


def _finite_action(action, space: spaces.Space) -> np.ndarray:
    array = np.asarray(action, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        _raise_not_finite(action)
    return array


def _raise_not_finite(action) -> None:
    raise ValueError(f"action must be finite, got {np.asarray(action).tolist()}: NaN and inf are not allowed")


def _clip(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


class ActionMode:
    """Turns an agent's action into a :class:`VehicleCommand`."""

    name: str
    space: spaces.Space

    def command(self, action) -> VehicleCommand:  # pragma: no cover - interface
        raise NotImplementedError


class DirectAction(ActionMode):
    """``Box([-1, 0, 0], [1, 1, 1])``: normalised steering (× max steer), throttle, brake; clipped to the box."""

    name = "direct"

    def __init__(self, max_steer_rad: float, **_: object) -> None:
        self.max_steer_rad = max_steer_rad
        self.space = spaces.Box(np.array([-1.0, 0.0, 0.0], np.float32), np.array([1.0, 1.0, 1.0], np.float32))

    def command(self, action) -> VehicleCommand:
        if type(action) is np.ndarray and action.shape == (3,):
            # What agents pass every step: plain float arithmetic, the same numbers as the numpy path below.
            steer, throttle, brake = action.tolist()
            if not (math.isfinite(steer) and math.isfinite(throttle) and math.isfinite(brake)):
                _raise_not_finite(action)
            return VehicleCommand(_clip(steer, -1.0, 1.0) * self.max_steer_rad, _clip(throttle, 0.0, 1.0),
                                  _clip(brake, 0.0, 1.0))
        array = _finite_action(action, self.space).reshape(-1)
        if array.shape != (3,):
            raise ValueError(f"action for action='direct' must have 3 values (steer, throttle, brake), got {array.shape[0]}")
        steer, throttle, brake = np.clip(array, self.space.low, self.space.high)
        return VehicleCommand(float(steer) * self.max_steer_rad, float(throttle), float(brake))


class SteerAction(ActionMode):
    """``Box(-1, 1, (1,))``: normalised steering (× max steer), clipped to the box; speed held by the PID."""

    name = "steer"

    def __init__(self, max_steer_rad: float, **_: object) -> None:
        self.max_steer_rad = max_steer_rad
        self.space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)

    def command(self, action) -> VehicleCommand:
        if type(action) is np.ndarray and action.shape == (1,):
            steer = action.item()  # the common case, without numpy's per-call overhead; same numbers
            if not math.isfinite(steer):
                _raise_not_finite(action)
            return VehicleCommand(_clip(steer, -1.0, 1.0) * self.max_steer_rad)
        array = _finite_action(action, self.space).reshape(-1)
        if array.shape != (1,):
            raise ValueError(f"action for action='steer' must have 1 value (steer), got {array.shape[0]}")
        return VehicleCommand(float(np.clip(array[0], -1.0, 1.0)) * self.max_steer_rad)


class DiscreteSteerAction(ActionMode):
    """``Discrete(steer_levels)``: action k steers at ``-max + 2·max·k/(levels-1)``; speed held by the PID."""

    name = "steer_discrete"

    def __init__(self, max_steer_rad: float, steer_levels: int, **_: object) -> None:
        self.space = spaces.Discrete(steer_levels)
        self.angles_rad = np.linspace(-max_steer_rad, max_steer_rad, steer_levels)
        self._angles = self.angles_rad.tolist()

    def command(self, action) -> VehicleCommand:
        if isinstance(action, (int, np.integer)) and not isinstance(action, bool) and 0 <= action < len(self._angles):
            return VehicleCommand(self._angles[action])
        if type(action) is np.ndarray and action.size == 1 and action.dtype.kind in "iu":
            index = action.item()
            if 0 <= index < len(self._angles):
                return VehicleCommand(self._angles[index])
        array = _finite_action(action, self.space).reshape(-1)
        index = float(array[0]) if array.size == 1 else math.nan
        if array.size != 1 or index != int(index) or not 0 <= index < self.space.n:
            raise ValueError(
                f"action for action='steer_discrete' must be one integer in 0..{self.space.n - 1}, got {np.asarray(action).tolist()}"
            )
        return VehicleCommand(float(self.angles_rad[int(index)]))

    def nearest(self, steer_rad: float) -> int:
        """The discrete action closest to a steering angle (for drivers that compute a continuous one)."""
        return int(np.argmin(np.abs(self.angles_rad - steer_rad)))


class MetaAction(ActionMode):
    """``Discrete(5)``: a manoeuvre for the planner and the controllers to carry out (``DriveLab/Highway-v0``):
    0 keep lane, 1 change left, 2 change right, 3 faster, 4 slower. Not a :class:`VehicleCommand`: the env plans
    the manoeuvre (:meth:`manoeuvre` names it) and its controllers turn the plan into commands."""

    name = "meta"
    MANOEUVRES = ("keep_lane", "change_left", "change_right", "faster", "slower")

    def __init__(self, **_: object) -> None:
        self.space = spaces.Discrete(len(self.MANOEUVRES))

    def manoeuvre(self, action) -> str:
        if isinstance(action, (int, np.integer)) and not isinstance(action, bool) and 0 <= action < len(self.MANOEUVRES):
            return self.MANOEUVRES[int(action)]
        array = np.asarray(action)
        if array.size == 1 and array.dtype.kind in "iu" and 0 <= array.item() < len(self.MANOEUVRES):
            return self.MANOEUVRES[array.item()]
        raise ValueError(f"action for action='meta' must be one integer in 0..{len(self.MANOEUVRES) - 1} "
                         f"({', '.join(f'{i} {name}' for i, name in enumerate(self.MANOEUVRES))}), got {array.tolist()}")

    def command(self, action) -> VehicleCommand:
        raise TypeError("action='meta' is carried out by the env's planner and controllers, not as a vehicle command")


ACTION_MODES: dict[str, Callable[..., ActionMode]] = {
    DirectAction.name: DirectAction,
    SteerAction.name: SteerAction,
    DiscreteSteerAction.name: DiscreteSteerAction,
}
