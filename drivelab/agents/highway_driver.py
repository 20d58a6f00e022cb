"""The rule-based driver of ``DriveLab/Highway-v0``: MOBIL's lane changes and IDM's sense of the gap ahead,
turned into meta-actions that the env's planner and controllers carry out.

It reads only its observation, by feature name: the gaps ahead and behind in its own lane and the lanes
beside it, and the nearest vehicles (to know how fast the vehicles in those gaps go). Once per decision:

1. During a lane change it keeps to the plan (a second change would be refused anyway), slowing down when IDM
   brakes for the nearest vehicle ahead in any lane beside it.
2. MOBIL (:func:`drivelab.planning.driver_models.mobil_assessment`) weighs a change to the left and to the
   right with the car's own IDM at the top target speed; the better change that is safe and pays is made.
3. Otherwise the speed: IDM's acceleration towards the vehicle ahead says whether to go faster (above
   ``faster_above_mps2``), slower (below ``slower_below_mps2``) or hold the target speed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from drivelab.planning.driver_models import NOBODY, IDMParams, MOBILParams, Neighbour, idm_acceleration, mobil_assessment

KEEP, LEFT, RIGHT, FASTER, SLOWER = range(5)
SIDES = ("right", "own", "left")


@dataclass(frozen=True)
class HighwayDriverConfig:
    """The driver's behaviour. ``idm``'s desired speed is replaced by the env's top target speed."""

    idm: IDMParams = field(default_factory=lambda: IDMParams(time_headway_s=1.5, min_gap_m=5.0, max_accel_mps2=1.5,
                                                              comfort_decel_mps2=2.0))
    mobil: MOBILParams = field(default_factory=lambda: MOBILParams(politeness=0.2, threshold_mps2=0.3, safe_decel_mps2=3.0))
    faster_above_mps2: float = 0.2
    slower_below_mps2: float = -0.5


class HighwayDriver:
    """Meta-actions from the observation (see the module's docstring); ``predict`` as SB3's.

    :param feature_names: the env's ``observation_features``.
    :param lane_width_m: the road's lane width (to tell which lane a nearby vehicle is in).
    :param top_speed_mps: the env's highest target speed (the driver's IDM desired speed).
    :param sensing_range_m: the observation's range (a gap this long is a free lane).
    """

    def __init__(self, feature_names: tuple[str, ...], lane_width_m: float, top_speed_mps: float, length_m: float = 4.6,
                 config: HighwayDriverConfig = HighwayDriverConfig(), sensing_range_m: float = 100.0) -> None:
        self.index = {name: i for i, name in enumerate(feature_names)}
        self.cars = sorted({int(name[3:].split("_", 1)[0]) for name in feature_names if name.startswith("car") and name.endswith("_present")})
        self.lane_width_m, self.length_m, self.config = lane_width_m, length_m, config
        self.sensing_range_m = sensing_range_m
        self.idm = IDMParams(**{**config.idm.__dict__, "desired_speed_mps": float(top_speed_mps)})
        self.last_reason = ""

    @classmethod
    def for_env(cls, env, config: HighwayDriverConfig = HighwayDriverConfig()) -> "HighwayDriver":
        base = env.unwrapped
        if base.action_mode.name != "meta":
            raise ValueError(f"the highway's rule-based driver decides meta-actions, not action {base.action_mode.name!r}")
        return cls(tuple(base.observation_features), base.options.lane_width_m, max(base.options.target_speeds_mps),
                   base.vehicle_spec.length_m, config, base.options.sensing_range_m)

    def reset(self) -> None:
        self.last_reason = ""

    def _value(self, observation: np.ndarray, name: str) -> float:
        return float(observation[self.index[name]])

    def _neighbours(self, observation: np.ndarray, speed: float) -> dict[str, tuple[Neighbour, Neighbour] | None]:
        """Per side: (leader, follower) from the lane gaps and the speeds of the nearest vehicles there."""
        offset = self._value(observation, "lane_offset_m")
        nearest: dict[tuple[int, bool], tuple[float, float]] = {}
        for k in self.cars:
            if self._value(observation, f"car{k}_present") < 0.5:
                continue
            ds, dd = self._value(observation, f"car{k}_ds_m"), self._value(observation, f"car{k}_dd_m")
            lane = int(round((dd + offset) / self.lane_width_m))
            key = (lane, ds >= 0)
            if key not in nearest or abs(ds) < abs(nearest[key][0]):
                nearest[key] = (ds, speed + self._value(observation, f"car{k}_dv_mps"))
        result: dict[str, tuple[Neighbour, Neighbour] | None] = {}
        for relative, side in zip((-1, 0, 1), SIDES):
            if self._value(observation, f"lane_{side}_exists") < 0.5:
                result[side] = None
                continue
            pair = []
            for ahead, gap_name in ((True, f"lane_{side}_gap_ahead_m"), (False, f"lane_{side}_gap_behind_m")):
                seen = nearest.get((relative, ahead))
                gap = self._value(observation, gap_name)
                if seen is not None:
                    pair.append(Neighbour(gap, seen[1]))
                elif gap >= self.sensing_range_m - 1e-6:
                    pair.append(NOBODY)  # nobody within range: a free lane
                else:  # somebody there, but not among the nearest vehicles listed: assume it keeps our speed
                    pair.append(Neighbour(gap, speed))
            result[side] = (pair[0], pair[1])
        return result

    def decide(self, observation: np.ndarray) -> int:
        observation = np.asarray(observation, dtype=np.float64).reshape(-1)
        speed = self._value(observation, "speed_mps")
        around = self._neighbours(observation, speed)
        leader, follower = around["own"]
        if self._value(observation, "changing_lane") > 0.5:
            # Between two lanes: the plan stands, but the speed answers to the nearest leader in either lane.
            leaders = [pair[0] for pair in around.values() if pair is not None]
            accel = min(idm_acceleration(speed, lead.gap_m, lead.speed_mps if math.isfinite(lead.gap_m) else 0.0, self.idm)
                        for lead in leaders)
            if accel < self.config.slower_below_mps2:
                self.last_reason = f"changing lanes, IDM {accel:+.2f} m/s²: slower"
                return SLOWER
            self.last_reason = "changing lanes"
            return KEEP
        best, best_incentive = None, -math.inf
        for side, action in (("left", LEFT), ("right", RIGHT)):
            if around[side] is None:
                continue
            target_leader, target_follower = around[side]
            verdict = mobil_assessment(speed, self.length_m, leader=leader, follower=follower, target_leader=target_leader,
                                       target_follower=target_follower, to_the_right=side == "right", idm=self.idm,
                                       mobil=self.config.mobil)
            if verdict.change and verdict.incentive > best_incentive:
                best, best_incentive = action, verdict.incentive
        if best is not None:
            self.last_reason = f"MOBIL: change {'left' if best == LEFT else 'right'} (incentive {best_incentive:+.2f} m/s²)"
            return best
        accel = idm_acceleration(speed, leader.gap_m, leader.speed_mps if math.isfinite(leader.gap_m) else 0.0, self.idm)
        cruise = self._value(observation, "cruise_speed_mps")
        if accel < self.config.slower_below_mps2:
            self.last_reason = f"IDM {accel:+.2f} m/s²: slower"
            return SLOWER
        if accel > self.config.faster_above_mps2 and speed > cruise - 1.0 and cruise < self.idm.desired_speed_mps:
            self.last_reason = f"IDM {accel:+.2f} m/s²: faster"
            return FASTER
        self.last_reason = f"IDM {accel:+.2f} m/s²: keep"
        return KEEP

    def predict(self, observation, state: Any = None, episode_start: Any = None, deterministic: bool = True):
        return np.asarray(self.decide(observation)), state
