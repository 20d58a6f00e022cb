"""Traffic on a multi-lane loop: vehicles driven by IDM and MOBIL, kept out of the physics engine.

The vehicles live in road coordinates: arc length ``s`` along the loop and lateral offset ``d`` from
the centre line (left positive), each with its speed, desired speed and size. Every step (``dt``,
the env's control period) each one accelerates by IDM towards the nearest body ahead in the lanes it
occupies (the ego car included), and, once every ``mobil_interval_s``, asks MOBIL whether a change
to the left or to the right lane pays and is safe; a change then follows the minimum-jerk quintic
from one lane centre to the other over ``lane_change_s``. While it changes, from the moment it decides, a
vehicle occupies both lanes: it follows the nearer leader of the two, vehicles in both lanes follow it, and
no other driver moves into the lane it takes.

Why kinematic bodies outside PyBullet: the ego car keeps its full dynamics, and the others only need
to move plausibly and be hit. Moving 20–100 vehicles costs a few vectorised numpy operations per
control step, where as many PyBullet bodies would cost several PyBullet calls each per physics step.
A collision with the ego car is found geometrically (:meth:`Traffic.collisions`): the car's footprint,
turned by its heading relative to the lane, against each vehicle's footprint, in road coordinates
(exact on a straight road; on the gentle bends of a highway, the distortion across a lane is below
1 %).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

import numpy as np

from drivelab.planning.driver_models import IDMParams, MOBILParams, Neighbour, idm_acceleration, mobil_assessments
from drivelab.planning.reference import minimum_jerk
from drivelab.planning.road import Road

NO_LANE = -1
# Beyond this gap another vehicle hardly matters to IDM: with the default parameters at 25 m/s its
# interaction term is under 0.2 m/s², MOBIL's threshold, so a driver with nobody this close ahead or
# behind skips its turn to consider a lane change.
INTERACTION_M = 100.0


@dataclass(frozen=True)
class TrafficOptions:
    """How many vehicles there are and how they drive (SI units).

    :param vehicles: how many vehicles share the loop with the ego car (0..200).
    :param desired_speed_mps: ``(low, high)``: each driver's IDM desired speed, drawn uniformly.
    :param initial_speed_fraction: vehicles start at this fraction of their desired speed.
    :param vehicle_length_m: ``(low, high)``, drawn uniformly; ``vehicle_width_m`` likewise.
    :param lane_change_s: the duration of a lane change (the quintic's).
    :param mobil_interval_s: how often each driver considers changing lanes (the drivers' turns are staggered).
    :param idm, mobil: the drivers' behaviour parameters (desired speed excepted).
    :param clear_ahead_m, clear_behind_m: the stretch of the ego car's lane kept free at the start.
    """

    vehicles: int = 20
    desired_speed_mps: tuple[float, float] = (22.0, 28.0)
    initial_speed_fraction: float = 0.9
    vehicle_length_m: tuple[float, float] = (4.2, 5.0)
    vehicle_width_m: tuple[float, float] = (1.8, 2.0)
    lane_change_s: float = 4.0
    mobil_interval_s: float = 1.0
    idm: IDMParams = field(default_factory=IDMParams)
    mobil: MOBILParams = field(default_factory=MOBILParams)
    clear_ahead_m: float = 40.0
    clear_behind_m: float = 25.0

    def __post_init__(self) -> None:
        if not isinstance(self.vehicles, (int, np.integer)) or isinstance(self.vehicles, bool) or not 0 <= self.vehicles <= 200:
            raise ValueError(f"traffic vehicles must be an integer in [0, 200], got {self.vehicles!r}")
        for name in ("desired_speed_mps", "vehicle_length_m", "vehicle_width_m"):
            low, high = getattr(self, name)
            if not (math.isfinite(low) and math.isfinite(high) and 0 < low <= high):
                raise ValueError(f"traffic {name} must be (low, high) with 0 < low <= high, got {getattr(self, name)!r}")
        if not 0.0 <= self.initial_speed_fraction <= 1.5:
            raise ValueError(f"traffic initial_speed_fraction must be in [0, 1.5], got {self.initial_speed_fraction!r}")
        for name in ("lane_change_s", "mobil_interval_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"traffic {name} must be a finite number > 0, got {value!r}")
        for name in ("clear_ahead_m", "clear_behind_m"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"traffic {name} must be a finite number >= 0, got {value!r}")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


class Footprint(NamedTuple):
    """A body in road coordinates: centre ``s_m``, ``d_m``, ``length_m``, ``width_m``, and its heading relative
    to the lane (rad), ``heading_rad``; ``speed_mps`` along the lane."""

    s_m: float
    d_m: float
    length_m: float
    width_m: float
    heading_rad: float = 0.0
    speed_mps: float = 0.0


class Traffic:
    """Vehicles on ``road`` (a closed loop with ``lane_count`` lanes), placed from ``rng`` and moved by :meth:`step`.

    Arrays, one entry per vehicle: ``s_m`` (in ``[0, road.length_m)``), ``d_m``, ``speed_mps``, ``desired_speed_mps``,
    ``length_m``, ``width_m``, ``lane`` (the lane it drives in, or changes into), ``from_lane`` (the lane a change
    started from, :data:`NO_LANE` when not changing) and ``change_elapsed_s``.
    """

    def __init__(self, road: Road, options: TrafficOptions, rng: np.random.Generator, *, ego_s_m: float = 0.0,
                 ego_lane: int = 0) -> None:
        if not road.closed:
            raise ValueError("traffic needs a closed road (a loop): vehicles leave the end of an open one")
        self.road, self.options = road, options
        self.loop_m = road.length_m
        self.lane_centres = np.array([road.lane_center_d(lane) for lane in range(road.lane_count)])
        self.lane_lines = road.lane_lines_d()
        self._step_bodies = None  # everything on the road during one step (see _bodies)
        self._occupied = None  # the lanes each vehicle overlaps, once per step (see occupied_lanes)
        self._accel: np.ndarray | None = None  # IDM's last accelerations, held between its updates
        self.time_s = 0.0
        self.lane_changes = 0
        self._place(rng, ego_s_m, ego_lane)

    # -- placement ---------------------------------------------------------------------------------

    def _place(self, rng: np.random.Generator, ego_s_m: float, ego_lane: int) -> None:
        """Vehicles spread over the loop's lanes at random, each keeping at least its IDM equilibrium gap
        (at its starting speed) to the one ahead, and the ego car's start clear."""
        o, lanes, n = self.options, self.road.lane_count, self.options.vehicles
        self.desired_speed_mps = rng.uniform(*o.desired_speed_mps, size=n)
        self.length_m = rng.uniform(*o.vehicle_length_m, size=n)
        self.width_m = rng.uniform(*o.vehicle_width_m, size=n)
        self.speed_mps = o.initial_speed_fraction * self.desired_speed_mps
        self.lane = rng.integers(0, lanes, size=n)
        # Slots per lane: the loop cut into equal cells, one vehicle at most per cell, drawn without replacement.
        top_speed = o.initial_speed_fraction * o.desired_speed_mps[1]
        cell_m = o.vehicle_length_m[1] + o.idm.min_gap_m + o.idm.time_headway_s * top_speed / 2
        cells = int(self.loop_m // cell_m)
        free = [c for c in range(cells * lanes)
                if not (c // cells == ego_lane and self._near_ego((c % cells + 0.5) * cell_m, ego_s_m))]
        if n > len(free):
            raise ValueError(f"traffic: {n} vehicles do not fit on a {self.loop_m:.0f} m loop of {lanes} lanes "
                             f"(at most {len(free)} at these speeds)")
        chosen = rng.choice(len(free), size=n, replace=False)
        slots = np.array([free[i] for i in chosen], dtype=int)
        self.lane = slots // cells
        self.s_m = (slots % cells + 0.5) * cell_m
        self.d_m = self.lane_centres[self.lane].copy()
        self.from_lane = np.full(n, NO_LANE)
        self.change_elapsed_s = np.zeros(n)
        # Each driver's turn to consider a lane change, staggered over the interval.
        self._next_mobil_s = rng.uniform(0.0, o.mobil_interval_s, size=n)

    def _near_ego(self, s_m: float, ego_s_m: float) -> bool:
        ahead = (s_m - ego_s_m) % self.loop_m
        return ahead <= self.options.clear_ahead_m or self.loop_m - ahead <= self.options.clear_behind_m

    # -- geometry ----------------------------------------------------------------------------------

    @property
    def count(self) -> int:
        return len(self.s_m)

    def occupied_lanes(self) -> np.ndarray:
        """``(N, lanes)`` bool: the lanes each vehicle's footprint overlaps and, while it changes lanes, both the
        lane it left and the one it moves into, from the moment it decides (read once per step; do not modify)."""
        if self._occupied is None:
            self._occupied = _lanes_overlapped(self.d_m, self.width_m, self.lane_lines)
            changing = np.flatnonzero(self.from_lane != NO_LANE)
            self._occupied[changing, self.lane[changing]] = True
            self._occupied[changing, self.from_lane[changing]] = True
        return self._occupied

    def gaps_ahead(self, s_m: np.ndarray, length_m: np.ndarray, other_s_m: np.ndarray, other_length_m: np.ndarray) -> np.ndarray:
        """``(len(s_m), len(other_s_m))`` bumper-to-bumper gaps from each body to each other one ahead along the loop."""
        ahead = along_loop(other_s_m[None, :] - s_m[:, None], self.loop_m)
        return ahead - (length_m[:, None] + other_length_m[None, :]) / 2

    # -- stepping ----------------------------------------------------------------------------------

    def step(self, dt_s: float, ego: Footprint | None = None, *, drive: bool = True) -> None:
        """Move every vehicle ``dt_s`` seconds: IDM along the lane, lane changes under way, and MOBIL's turns.

        With ``drive=False`` the drivers do not decide: each keeps its last IDM acceleration and its lane
        change goes on (the env lets its drivers decide every other control step and moves them at each).
        """
        n = self.count
        if n == 0:
            self.time_s += dt_s
            return
        self._step_bodies = self._occupied = None
        if drive or self._accel is None:
            leader_gap, leader_speed, follower_gap = self._leaders(ego)
            self._accel = idm_acceleration(self.speed_mps, leader_gap, leader_speed, self._idm_arrays())
        speed = self.speed_mps + self._accel * dt_s
        np.maximum(speed, 0.0, out=speed)
        s_m = self.s_m + 0.5 * dt_s * (self.speed_mps + speed)
        self.s_m = np.remainder(s_m, self.loop_m, out=s_m)
        self.speed_mps = speed
        changing = self.from_lane != NO_LANE
        if changing.any():
            self.change_elapsed_s[changing] += dt_s
            u = np.clip(self.change_elapsed_s[changing] / self.options.lane_change_s, 0.0, 1.0)
            start, end = self.lane_centres[self.from_lane[changing]], self.lane_centres[self.lane[changing]]
            self.d_m[changing] = start + (end - start) * minimum_jerk(u)[0]
            finished = np.flatnonzero(changing)[u >= 1.0]
            self.from_lane[finished] = NO_LANE
            self.change_elapsed_s[finished] = 0.0
            self._occupied = None
        self.time_s += dt_s
        if not drive:
            return
        due = np.flatnonzero((self._next_mobil_s <= self.time_s) & (self.from_lane == NO_LANE))
        self._next_mobil_s[due] += self.options.mobil_interval_s
        if self.options.mobil.keep_right_bias_mps2 == 0.0:
            # Nobody within INTERACTION_M ahead or behind in its lane: IDM's interaction terms are all below
            # 0.2 m/s² there, so no change can gain MOBIL's threshold (the keep-right bias aside).
            due = due[(leader_gap[due] < INTERACTION_M) | (follower_gap[due] < INTERACTION_M)]
        self._step_bodies = None  # the vehicles moved: the bodies are read again, once, for MOBIL's turns
        self._mobil_turns(due, ego)

    def _mobil_turns(self, due: np.ndarray, ego: Footprint | None) -> None:
        """MOBIL's turn for each of ``due`` in order, their neighbours found and their changes weighed for all of
        them at once (:meth:`_neighbourhoods`, :meth:`_mobil_choices`).

        A change started by one driver takes its target lane at once (see :meth:`_start_change`): a later driver to
        whom that vehicle is now nearer, ahead or behind, in that lane than its neighbour there takes its turn
        again alone. So each driver decides as it would were the turns taken one by one.
        """
        if len(due) == 0:
            return
        ahead, behind, nearest_gap, nearest_speed = self._neighbourhoods(due, ego)
        choice = self._mobil_choices(due, nearest_gap, nearest_speed)
        started: list[tuple[int, int]] = []  # (vehicle, target lane) of the changes begun in this step
        for row, index in enumerate(due):
            target = int(choice[row])
            if started and any(ahead[row, other] <= nearest_gap[0, row, lane] or behind[row, other] <= nearest_gap[1, row, lane]
                               for other, lane in started):
                # A change begun in this step put a vehicle nearer than this driver's neighbour in that lane.
                alone = due[row:row + 1]
                target = int(self._mobil_choices(alone, *self._neighbourhoods(alone, ego)[2:])[0])
            if target != NO_LANE:
                self._start_change(int(index), target)
                started.append((int(index), target))

    def _neighbourhoods(self, due: np.ndarray, ego: Footprint | None):
        """For each of ``due``: the gaps ``ahead`` and ``behind`` (bumper to bumper, along the loop) to every body on
        the road, and the gap to and speed of its nearest neighbour ahead and behind in each lane,
        ``(ahead/behind, driver, lane)`` (inf and 0 where there is nobody)."""
        s, length, speed, occupied = self._bodies(ego)
        half = self.loop_m / 2
        rows = np.arange(len(due))
        reach = (length[None, :] + self.length_m[due, None]) / 2
        ahead = along_loop(s[None, :] - self.s_m[due, None], self.loop_m) - reach
        behind = along_loop(self.s_m[due, None] - s[None, :], self.loop_m) - reach
        # A body counts one way round the loop only (a body beside one has a negative gap one way and nearly
        # a lap the other: it is a neighbour that blocks), and nobody is its own neighbour.
        ahead[(ahead >= half) | (np.arange(len(s))[None, :] == due[:, None])] = np.inf
        behind[(behind >= half) | (np.arange(len(s))[None, :] == due[:, None])] = np.inf
        lanes = self.road.lane_count
        nearest_gap = np.empty((2, len(due), lanes))
        nearest_speed = np.empty((2, len(due), lanes))
        for lane in range(lanes):
            for way, gaps in enumerate((ahead, behind)):
                masked = np.where(occupied[None, :, lane], gaps, np.inf)
                nearest = np.argmin(masked, axis=1)
                nearest_gap[way, :, lane] = masked[rows, nearest]
                nearest_speed[way, :, lane] = speed[nearest]
        return ahead, behind, nearest_gap, np.where(np.isfinite(nearest_gap), nearest_speed, 0.0)

    def _mobil_choices(self, due: np.ndarray, gap: np.ndarray, speed: np.ndarray) -> np.ndarray:
        """For each of ``due``, the lane MOBIL moves it to (the better of left and right, if either pays and is safe),
        or NO_LANE; ``gap``, ``speed``: ``(ahead/behind, driver, lane)`` of its neighbours, as :meth:`_mobil_turns` finds them."""
        o, rows, lanes, k = self.options, np.arange(len(due)), self.road.lane_count, len(due)
        lane = self.lane[due]
        # Left and right (a tie goes left) weighed in one call on arrays twice as long: the same arithmetic entry by entry,
        # at half the numpy calls, which cost more than the arithmetic on a few dozen drivers.
        both = np.concatenate((lane + 1, lane - 1))
        exists = (both >= 0) & (both < lanes)
        there, rows2 = np.clip(both, 0, lanes - 1), np.concatenate((rows, rows))
        idm = _ArrayIDM(_twice(self.desired_speed_mps[due]), o.idm.time_headway_s, o.idm.min_gap_m, o.idm.max_accel_mps2,
                        o.idm.comfort_decel_mps2, o.idm.exponent)
        leader, follower = (Neighbour(_twice(gap[way, rows, lane]), _twice(speed[way, rows, lane])) for way in (0, 1))
        verdict = mobil_assessments(_twice(self.speed_mps[due]), _twice(self.length_m[due]), leader=leader, follower=follower,
                                    target_leader=Neighbour(gap[0, rows2, there], speed[0, rows2, there]),
                                    target_follower=Neighbour(gap[1, rows2, there], speed[1, rows2, there]),
                                    to_the_right=np.arange(2 * k) >= k, idm=idm, mobil=o.mobil, follower_idm=o.idm)
        change = verdict.change & exists
        left, right, left_incentive, right_incentive = change[:k], change[k:], verdict.incentive[:k], verdict.incentive[k:]
        prefer_right = right & (~left | (right_incentive > left_incentive))
        return np.where(prefer_right, lane - 1, np.where(left, lane + 1, NO_LANE))

    def _idm_arrays(self) -> IDMParams:
        # IDM with each driver's own desired speed (idm_acceleration broadcasts over arrays).
        p = self.options.idm
        return _ArrayIDM(self.desired_speed_mps, p.time_headway_s, p.min_gap_m, p.max_accel_mps2, p.comfort_decel_mps2, p.exponent)

    def _bodies(self, ego: Footprint | None):
        """Everything on the road: (s, length, speed, occupied lanes) of the vehicles, then the ego car if any.
        Read once per phase of a step (the lane changes that MOBIL starts do not move anybody)."""
        if self._step_bodies is not None:
            return self._step_bodies
        s, length, speed, lanes = self.s_m, self.length_m, self.speed_mps, self.occupied_lanes()
        if ego is not None:
            half = _lateral_extent(ego) / 2
            ego_lanes = ((ego.d_m + half > self.lane_lines[:-1]) & (ego.d_m - half < self.lane_lines[1:]))[None, :]
            s, length = np.append(s, ego.s_m % self.loop_m), np.append(length, _longitudinal_extent(ego))
            speed, lanes = np.append(speed, ego.speed_mps), np.vstack([lanes, ego_lanes])
        self._step_bodies = (s, length, speed, lanes)
        return self._step_bodies

    def _leaders(self, ego: Footprint | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each vehicle's gap to, and speed of, the nearest body ahead sharing one of its lanes; and the gap
        from the nearest body behind it (the ego car included)."""
        s, length, speed, lanes = self._bodies(ego)
        n = self.count
        gaps = self.gaps_ahead(self.s_m, self.length_m, s, length)
        # A product of 0/1 floats: exact, and through BLAS several times faster than numpy's integer product.
        shares = (lanes[:n].astype(np.float64) @ lanes.T.astype(np.float64)) > 0
        shares[np.arange(n), np.arange(n)] = False
        gaps = np.where(shares, gaps, np.inf)
        nearest = np.argmin(gaps, axis=1)
        gap = gaps[np.arange(n), nearest]
        behind = gaps[:, :n].min(axis=0)
        if ego is not None:  # the ego car as a follower: its gap to each vehicle ahead in a lane they share
            from_ego = (self.s_m - s[n]) % self.loop_m - (self.length_m + length[n]) / 2
            behind = np.minimum(behind, np.where(shares[:, n], from_ego, np.inf))
        return gap, np.where(np.isfinite(gap), speed[nearest], 0.0), behind

    def _start_change(self, index: int, target: int) -> None:
        self.from_lane[index], self.lane[index] = self.lane[index], target
        self.change_elapsed_s[index] = 0.0
        # The target lane is taken from now on: the drivers whose turn comes later in this step see it so. Without
        # that, two drivers side by side could both move into the lane between them, and the one behind stops dead.
        self.occupied_lanes()[index, target] = True
        if self._step_bodies is not None:
            self._step_bodies[3][index, target] = True
        self.lane_changes += 1

    # -- the ego car -------------------------------------------------------------------------------

    def lane_gaps(self, ego: Footprint) -> tuple[np.ndarray, np.ndarray]:
        """Per lane: the ego car's bumper-to-bumper gap to the nearest vehicle ahead and to the nearest behind that
        occupies it (inf where none); what the car's sensing and its headway read."""
        if self.count == 0:
            return np.full(self.road.lane_count, np.inf), np.full(self.road.lane_count, np.inf)
        in_lane = self.occupied_lanes()
        half_lengths = (self.length_m + ego.length_m) / 2
        gaps = []
        for along in (self.s_m - ego.s_m, ego.s_m - self.s_m):
            gap = along % self.loop_m - half_lengths
            gaps.append(np.where(in_lane & (gap < self.loop_m / 2)[:, None], gap[:, None], np.inf).min(axis=0))
        return gaps[0], gaps[1]

    def offsets_along(self, s_m: float) -> np.ndarray:
        """Each vehicle's centre relative to arc length ``s_m`` along the loop, the shorter way round: in
        ``[-loop_m / 2, loop_m / 2)``, ahead positive."""
        return (self.s_m - s_m + self.loop_m / 2) % self.loop_m - self.loop_m / 2

    def collisions(self, ego: Footprint) -> np.ndarray:
        """Indices of the vehicles whose footprint overlaps the ego car's (separating-axis test in road coordinates)."""
        if self.count == 0:
            return np.zeros(0, dtype=int)
        ds = self.offsets_along(ego.s_m)
        near = np.flatnonzero(np.abs(ds) < float(self.length_m.max()) + ego.length_m + ego.width_m)
        if len(near) == 0:
            return near
        hits = self._overlapping(ego, ds[near], self.d_m[near] - ego.d_m, self.length_m[near], self.width_m[near])
        return near[hits]

    @staticmethod
    def _overlapping(ego: Footprint, ds: np.ndarray, dd: np.ndarray, length_m: np.ndarray, width_m: np.ndarray) -> np.ndarray:
        """Which lane-aligned boxes (centre offsets ``ds``, ``dd`` from the ego car) overlap its turned footprint."""
        # The vehicles' boxes are aligned with the lane; the ego's is turned by its heading relative to it.
        c, s = abs(math.cos(ego.heading_rad)), abs(math.sin(ego.heading_rad))
        half_l, half_w = ego.length_m / 2, ego.width_m / 2
        ego_extent_s, ego_extent_d = half_l * c + half_w * s, half_l * s + half_w * c
        overlap_s = np.abs(ds) < length_m / 2 + ego_extent_s
        overlap_d = np.abs(dd) < width_m / 2 + ego_extent_d
        # The ego's own axes: project the centre offset and the vehicles' half-extents on them.
        cos_h, sin_h = math.cos(ego.heading_rad), math.sin(ego.heading_rad)
        along = np.abs(ds * cos_h + dd * sin_h)
        across = np.abs(-ds * sin_h + dd * cos_h)
        vehicle_on_along = length_m / 2 * c + width_m / 2 * s
        vehicle_on_across = length_m / 2 * s + width_m / 2 * c
        overlap_along = along < half_l + vehicle_on_along
        overlap_across = across < half_w + vehicle_on_across
        return overlap_s & overlap_d & overlap_along & overlap_across

    def snapshot(self) -> dict[str, Any]:
        """The vehicles' arrays (copies), for tests and viewers."""
        return {name: np.array(getattr(self, name)) for name in
                ("s_m", "d_m", "speed_mps", "desired_speed_mps", "length_m", "width_m", "lane", "from_lane")}


class _ArrayIDM(NamedTuple):
    """IDM parameters whose desired speed may be an array (one per driver); duck-types :class:`IDMParams`."""

    desired_speed_mps: Any
    time_headway_s: float
    min_gap_m: float
    max_accel_mps2: float
    comfort_decel_mps2: float
    exponent: float


def _lateral_extent(body: Footprint) -> float:
    """The width of a body's footprint across the lane, turned by its heading."""
    return body.length_m * abs(math.sin(body.heading_rad)) + body.width_m * abs(math.cos(body.heading_rad))


def _longitudinal_extent(body: Footprint) -> float:
    return body.length_m * abs(math.cos(body.heading_rad)) + body.width_m * abs(math.sin(body.heading_rad))


def _twice(values: np.ndarray) -> np.ndarray:
    return np.concatenate((values, values))


def along_loop(difference_m: np.ndarray, loop_m: float) -> np.ndarray:
    """``difference_m % loop_m`` for differences of two positions on the loop (each in ``[0, loop_m)``, so the
    difference is in ``[-loop_m, loop_m)``): the same values, bit for bit, as numpy's remainder, at a sixth of its
    cost. The traffic takes it on ``N × N`` arrays several times a step, and the remainder's general case dominated."""
    return np.where(difference_m < 0.0, difference_m + loop_m, difference_m)


def _lanes_overlapped(d_m: np.ndarray, width_m: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """``(N, lanes)`` bool: which lanes ``[d − w/2, d + w/2]`` overlaps, given the lane lines (off the road: none)."""
    right, left = d_m[:, None] - width_m[:, None] / 2, d_m[:, None] + width_m[:, None] / 2
    return (left > lines[None, :-1]) & (right < lines[None, 1:])
