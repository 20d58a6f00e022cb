"""Models of human drivers in traffic: IDM for car following and MOBIL for lane changes.

- **IDM**, the Intelligent Driver Model (Treiber, Hennecke and Helbing, 2000): a vehicle's acceleration
  from its speed, the gap to the vehicle ahead and the speed at which it closes that gap::

      a = a_max · [1 − (v / v0)^δ − (s*(v, Δv) / s)²],   s* = s0 + max(0, v·T + v·Δv / (2·√(a_max·b)))

  with ``v0`` the desired speed, ``T`` the time headway, ``s0`` the minimum gap, ``b`` the comfortable
  deceleration and ``Δv = v − v_lead`` the approach rate. On a free road (no vehicle ahead) the
  interaction term is 0.
- **MOBIL**, "minimizing overall braking induced by lane changes" (Kesting, Treiber and Helbing, 2007):
  a lane change is made when it is safe, the new follower's IDM acceleration after it staying above
  ``−b_safe``, and when it pays: ``ã_c − a_c + p·[(ã_n − a_n) + (ã_o − a_o)] > Δa_th``, where ``c`` is
  the vehicle that changes, ``n`` its new follower, ``o`` its old follower, ``a`` the accelerations
  before and ``ã`` after the change, ``p`` the politeness and ``Δa_th`` the threshold.

Both are pure numpy (no simulator), so a traffic world, the rule-based highway driver and the tests
use the same arithmetic. Gaps are bumper to bumper (m); ``math.inf`` stands for "no vehicle there".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

__all__ = ["IDMParams", "MOBILParams", "Neighbour", "LaneChangeAssessment", "idm_acceleration", "mobil_assessment", "mobil_assessments",
           "equilibrium_gap_m"]

FREE = math.inf  # the gap to a vehicle that is not there


@dataclass(frozen=True)
class IDMParams:
    """One driver's IDM parameters (SI units). The defaults are Treiber and Kesting's for a car on a highway,
    with a desired speed of 30 m/s (108 km/h).

    :param desired_speed_mps: ``v0``, the speed on a free road.
    :param time_headway_s: ``T``, the time gap kept behind a vehicle at the same speed.
    :param min_gap_m: ``s0``, the gap kept in a queue at standstill.
    :param max_accel_mps2: ``a_max``, the acceleration from standstill on a free road.
    :param comfort_decel_mps2: ``b``, the deceleration the driver is comfortable with (> 0).
    :param exponent: ``δ``, how soon the driver eases off when nearing ``v0``.
    """

    desired_speed_mps: float = 30.0
    time_headway_s: float = 1.5
    min_gap_m: float = 2.0
    max_accel_mps2: float = 1.0
    comfort_decel_mps2: float = 1.5
    exponent: float = 4.0

    def __post_init__(self) -> None:
        for name in ("desired_speed_mps", "max_accel_mps2", "comfort_decel_mps2", "exponent"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"IDM {name} must be a finite number > 0, got {value!r}")
        for name in ("time_headway_s", "min_gap_m"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"IDM {name} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True)
class MOBILParams:
    """One driver's MOBIL parameters.

    :param politeness: ``p``, how much the others' gain or loss counts (0: selfish, 1: altruistic).
    :param threshold_mps2: ``Δa_th``, the least gain in acceleration worth a lane change.
    :param safe_decel_mps2: ``b_safe``, the hardest braking a change may impose on the new follower (> 0).
    :param keep_right_bias_mps2: a bonus for changes to the right (and a malus to the left), the European rule
        to keep right; 0 for symmetric lanes.
    """

    politeness: float = 0.3
    threshold_mps2: float = 0.2
    safe_decel_mps2: float = 4.0
    keep_right_bias_mps2: float = 0.0

    def __post_init__(self) -> None:
        if not (0.0 <= self.politeness <= 1.0):
            raise ValueError(f"MOBIL politeness must be in [0, 1], got {self.politeness!r}")
        if not (math.isfinite(self.threshold_mps2) and self.threshold_mps2 >= 0):
            raise ValueError(f"MOBIL threshold_mps2 must be a finite number >= 0, got {self.threshold_mps2!r}")
        if not (math.isfinite(self.safe_decel_mps2) and self.safe_decel_mps2 > 0):
            raise ValueError(f"MOBIL safe_decel_mps2 must be a finite number > 0, got {self.safe_decel_mps2!r}")
        if not (math.isfinite(self.keep_right_bias_mps2) and self.keep_right_bias_mps2 >= 0):
            raise ValueError(f"MOBIL keep_right_bias_mps2 must be a finite number >= 0, got {self.keep_right_bias_mps2!r}")


def idm_acceleration(speed_mps, gap_m, lead_speed_mps, params: IDMParams = IDMParams()):
    """IDM's acceleration (m/s²) for a vehicle at ``speed_mps`` with ``gap_m`` to a leader at ``lead_speed_mps``.

    Scalars or arrays (broadcast); a gap of ``math.inf`` is a free road. A gap of 0 or less (touching or
    overlapping) gives the model's hardest braking, ``−a_max · (s*/0.01 m)²``, not an error: a traffic world
    asks before it separates vehicles.
    """
    p = params
    if type(speed_mps) is float and type(gap_m) is float and type(lead_speed_mps) is float \
            and type(p.desired_speed_mps) is float:
        # One vehicle (MOBIL asks many times per decision): the same arithmetic without numpy's overhead.
        gap = max(gap_m, 0.01)
        dynamic = speed_mps * p.time_headway_s + speed_mps * (speed_mps - lead_speed_mps) / (
            2.0 * math.sqrt(p.max_accel_mps2 * p.comfort_decel_mps2))
        desired_gap = p.min_gap_m + max(0.0, dynamic)
        free = (max(speed_mps, 0.0) / p.desired_speed_mps) ** p.exponent
        return p.max_accel_mps2 * (1.0 - free - (desired_gap / gap) ** 2)
    v = np.asarray(speed_mps, dtype=float)
    gap = np.maximum(np.asarray(gap_m, dtype=float), 0.01)
    approach = v - np.asarray(lead_speed_mps, dtype=float)
    desired_gap = p.min_gap_m + np.maximum(
        0.0, v * p.time_headway_s + v * approach / (2.0 * math.sqrt(p.max_accel_mps2 * p.comfort_decel_mps2)))
    interaction = (desired_gap / gap) ** 2  # 0 on a free road (an infinite gap)
    free = (np.maximum(v, 0.0) / p.desired_speed_mps) ** p.exponent
    result = p.max_accel_mps2 * (1.0 - free - interaction)
    return float(result) if result.ndim == 0 else result


def equilibrium_gap_m(speed_mps: float, params: IDMParams = IDMParams()) -> float:
    """The gap at which IDM holds ``speed_mps`` behind a leader at the same speed (acceleration 0)."""
    ratio = (speed_mps / params.desired_speed_mps) ** params.exponent
    if ratio >= 1.0:
        return math.inf
    return (params.min_gap_m + speed_mps * params.time_headway_s) / math.sqrt(1.0 - ratio)


class Neighbour(NamedTuple):
    """A vehicle around the one that may change lanes: its bumper-to-bumper gap (m) and its speed (m/s).
    ``Neighbour(math.inf, 0.0)`` (:data:`NOBODY`) stands for no vehicle there."""

    gap_m: float
    speed_mps: float


NOBODY = Neighbour(FREE, 0.0)


class LaneChangeAssessment(NamedTuple):
    """MOBIL's verdict on one lane change. ``change``: safe and worth it; ``incentive``: the left-hand side
    of the incentive criterion minus the threshold (> 0 pays); ``new_follower_accel``: ``ã_n`` (m/s²)."""

    change: bool
    safe: bool
    incentive: float
    new_follower_accel: float


def mobil_assessment(speed_mps: float, length_m: float, *, leader: Neighbour, follower: Neighbour,
                     target_leader: Neighbour, target_follower: Neighbour, to_the_right: bool = False,
                     idm: IDMParams = IDMParams(), mobil: MOBILParams = MOBILParams(),
                     follower_idm: IDMParams | None = None) -> LaneChangeAssessment:
    """MOBIL's assessment of a change into the target lane for a vehicle at ``speed_mps``, ``length_m`` long.

    ``leader``/``follower``: the vehicles ahead and behind in its own lane; ``target_leader``/``target_follower``:
    those it would have ahead and behind in the target lane (gaps measured from its own bumpers). The
    followers drive by ``follower_idm`` (``idm`` when not given). After the change the old follower follows the
    old leader, across the gap the changing vehicle leaves (its two gaps and its length).
    """
    others = follower_idm or idm
    a_c = idm_acceleration(speed_mps, leader.gap_m, leader.speed_mps, idm)
    a_c_new = idm_acceleration(speed_mps, target_leader.gap_m, target_leader.speed_mps, idm)
    gain_n = gain_o = new_follower_accel = 0.0
    if math.isfinite(target_follower.gap_m):
        # The new follower: now behind the target leader (across the gap the car fills), then behind the car.
        across = target_follower.gap_m + length_m + target_leader.gap_m
        a_n = idm_acceleration(target_follower.speed_mps, across, target_leader.speed_mps, others)
        new_follower_accel = idm_acceleration(target_follower.speed_mps, target_follower.gap_m, speed_mps, others)
        gain_n = new_follower_accel - a_n
    if math.isfinite(follower.gap_m):
        # The old follower: now behind the car, then behind the old leader across the gap it leaves.
        a_o = idm_acceleration(follower.speed_mps, follower.gap_m, speed_mps, others)
        a_o_new = idm_acceleration(follower.speed_mps, follower.gap_m + length_m + leader.gap_m, leader.speed_mps, others)
        gain_o = a_o_new - a_o
    safe = target_follower.gap_m > 0 and target_leader.gap_m > 0 and new_follower_accel >= -mobil.safe_decel_mps2
    bias = mobil.keep_right_bias_mps2 if to_the_right else -mobil.keep_right_bias_mps2
    incentive = (a_c_new - a_c) + mobil.politeness * (gain_n + gain_o) + bias - mobil.threshold_mps2
    return LaneChangeAssessment(change=bool(safe and incentive > 0), safe=bool(safe), incentive=float(incentive),
                                new_follower_accel=float(new_follower_accel))


class LaneChangeAssessments(NamedTuple):
    """MOBIL's verdicts on many lane changes at once: arrays, one entry per change, as in :class:`LaneChangeAssessment`."""

    change: np.ndarray
    safe: np.ndarray
    incentive: np.ndarray
    new_follower_accel: np.ndarray


def mobil_assessments(speed_mps, length_m, *, leader: Neighbour, follower: Neighbour, target_leader: Neighbour,
                      target_follower: Neighbour, to_the_right, idm: IDMParams = IDMParams(),
                      mobil: MOBILParams = MOBILParams(), follower_idm: IDMParams | None = None) -> LaneChangeAssessments:
    """:func:`mobil_assessment` for many vehicles at once: every argument but ``mobil`` may be an array (the
    neighbours' gaps and speeds too, and ``idm``'s desired speed, one per vehicle); they broadcast together.
    The same arithmetic, so the verdicts agree with the one-by-one function's up to rounding."""
    others = follower_idm or idm
    speed_mps = np.asarray(speed_mps, dtype=float)
    a_c = idm_acceleration(speed_mps, leader.gap_m, leader.speed_mps, idm)
    a_c_new = idm_acceleration(speed_mps, target_leader.gap_m, target_leader.speed_mps, idm)
    # The new follower: now behind the target leader (across the gap the car fills), then behind the car.
    new_follower = np.isfinite(target_follower.gap_m)
    across = np.where(new_follower, target_follower.gap_m + length_m + target_leader.gap_m, FREE)
    a_n = idm_acceleration(target_follower.speed_mps, across, target_leader.speed_mps, others)
    behind_car = idm_acceleration(target_follower.speed_mps, np.where(new_follower, target_follower.gap_m, FREE), speed_mps, others)
    new_follower_accel = np.where(new_follower, behind_car, 0.0)
    gain_n = np.where(new_follower, behind_car - a_n, 0.0)
    # The old follower: now behind the car, then behind the old leader across the gap it leaves.
    old_follower = np.isfinite(follower.gap_m)
    a_o = idm_acceleration(follower.speed_mps, np.where(old_follower, follower.gap_m, FREE), speed_mps, others)
    a_o_new = idm_acceleration(follower.speed_mps, np.where(old_follower, follower.gap_m + length_m + leader.gap_m, FREE),
                               leader.speed_mps, others)
    gain_o = np.where(old_follower, a_o_new - a_o, 0.0)
    safe = (np.asarray(target_follower.gap_m) > 0) & (np.asarray(target_leader.gap_m) > 0) & \
        (new_follower_accel >= -mobil.safe_decel_mps2)
    bias = np.where(to_the_right, mobil.keep_right_bias_mps2, -mobil.keep_right_bias_mps2)
    incentive = (a_c_new - a_c) + mobil.politeness * (gain_n + gain_o) + bias - mobil.threshold_mps2
    return LaneChangeAssessments(change=safe & (incentive > 0), safe=safe, incentive=incentive,
                                 new_follower_accel=new_follower_accel)
