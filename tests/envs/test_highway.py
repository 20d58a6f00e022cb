"""``DriveLab/Highway-v0``: meta-actions carried out by the planner and controllers, collisions, the metrics
of scripted episodes, the same seed giving the same traffic, and bad options named in one line."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import drivelab  # noqa: F401  (registers the environments)
from drivelab.envs.highway import HighwayEnv
from drivelab.envs.traffic import Traffic, TrafficOptions

KEEP, LEFT, RIGHT, FASTER, SLOWER = range(5)


def empty_road(**options) -> HighwayEnv:
    return HighwayEnv(density_per_km=0.0, lane=1, **options)


def one_vehicle(env: HighwayEnv, *, ahead_m: float, lane: int, speed_mps: float) -> None:
    """Replace the traffic by one vehicle ``ahead_m`` (centre to centre) ahead of the car in ``lane``, holding its speed."""
    road = env.road
    desired = max(speed_mps, 0.01)  # IDM needs a desired speed > 0: 1 cm/s stands for a stopped car
    traffic = Traffic(road, TrafficOptions(vehicles=1, mobil_interval_s=1e6, desired_speed_mps=(desired, desired),
                                           vehicle_length_m=(4.6, 4.6), vehicle_width_m=(1.9, 1.9)),
                      np.random.default_rng(0))
    traffic.s_m[0] = (env.s_m + ahead_m) % road.length_m
    traffic.lane[0] = lane
    traffic.d_m[0] = road.lane_center_d(lane)
    traffic.speed_mps[0] = speed_mps
    env.traffic = traffic


def test_the_env_passes_gymnasiums_checks_in_each_action_mode():
    for action in ("meta", "steer", "direct"):
        env = gym.make("DriveLab/Highway-v0", action=action, density_per_km=10.0)
        check_env(env.unwrapped, skip_render_check=True)
        env.close()


def test_the_same_seed_gives_the_same_road_start_and_traffic():
    def rollout(seed: int):
        env = HighwayEnv()
        observation, _ = env.reset(seed=seed)
        trace = [observation]
        for action in (KEEP, FASTER, LEFT, KEEP, RIGHT, SLOWER, KEEP):
            observation, reward, *_ = env.step(action)
            trace.append(observation)
        snapshot = env.traffic.snapshot()
        env.close()
        return np.array(trace), snapshot, env.track_seed

    first, second, other = rollout(5), rollout(5), rollout(6)
    np.testing.assert_array_equal(first[0], second[0])
    for name in first[1]:
        np.testing.assert_array_equal(first[1][name], second[1][name])
    assert first[2] == second[2] and other[2] != first[2]
    assert not np.array_equal(first[1]["s_m"], other[1]["s_m"])


def test_a_lane_change_ends_on_the_next_lane_centre_and_impossible_ones_do_nothing():
    env = empty_road()
    env.reset(seed=0)
    start_d = env.road.lane_center_d(1)
    _, _, _, _, info = env.step(LEFT)
    assert info["manoeuvre"] == "change_left" and not info["noop"] and info["changing_lane"]
    _, _, _, _, info = env.step(LEFT)  # a change is under way: nothing happens
    assert info["noop"]
    for _ in range(4):
        _, _, _, _, info = env.step(KEEP)
    target = env.road.lane_center_d(2)
    assert not info["changing_lane"] and info["lane"] == 2
    assert abs(info["d_m"] - target) < 0.15, (info["d_m"], target, start_d)
    env.step(LEFT)  # to lane 3, the leftmost
    for _ in range(5):
        env.step(KEEP)
    _, _, _, _, info = env.step(LEFT)  # no lane 4
    assert info["noop"] and info["lane"] == 3
    _, _, terminated, truncated, info = env.step(KEEP)
    while not (terminated or truncated):
        _, _, terminated, truncated, info = env.step(KEEP)
    assert info["lane_changes"] == 2 and info["noop_manoeuvres"] == 2 and not info["collision"]
    assert info["max_lateral_error_m"] < 2.0 and not info["off_road"]


def test_faster_and_slower_step_through_the_target_speeds():
    env = empty_road()
    env.reset(seed=1)
    _, _, _, _, info = env.step(FASTER)
    assert info["cruise_speed_mps"] == 30.0 and not info["noop"]
    for _ in range(8):
        _, _, _, _, info = env.step(KEEP)
    assert info["speed_mps"] == pytest.approx(min(30.0, info["target_speed_mps"]), abs=0.5)
    _, _, _, _, info = env.step(FASTER)
    assert info["noop"] and info["cruise_speed_mps"] == 30.0  # already the fastest
    for _ in range(2):
        env.step(SLOWER)
    _, _, _, _, info = env.step(SLOWER)
    assert info["noop"] and info["cruise_speed_mps"] == 20.0


def test_an_empty_highway_at_cruise_speed_scores_a_full_route():
    env = empty_road()
    env.reset(seed=2)
    terminated = truncated = False
    total = 0.0
    while not (terminated or truncated):
        _, reward, terminated, truncated, info = env.step(KEEP)
        total += reward
    assert terminated and not truncated  # the 1 km route, driven at 25 m/s in about 40 s
    assert info["route_completion"] == 1.0 and not info["collision"] and info["headway_violations"] == 0
    assert info["driving_score"] == 1.0 and info["lane_changes"] == 0
    assert info["mean_speed"] == pytest.approx(25.0, abs=0.5)
    assert 38 <= info["episode_time_s"] <= 42
    assert total == pytest.approx(0.05 * info["distance_m"], rel=1e-9)  # the progress reward alone: no speed reward by default


def test_the_speed_reward_pays_for_where_the_speed_sits_between_the_lowest_and_highest_target():
    env = empty_road(speed_reward=1.0, progress_reward_per_m=0.0)
    env.reset(seed=2)
    total = 0.0
    for _ in range(20):
        _, reward, *_ = env.step(KEEP)
        total += reward
    assert total == pytest.approx(20 * 0.5, rel=0.05)  # 25 m/s sits halfway between 20 and 30


def discounted_return(env: HighwayEnv, actions, gamma: float) -> tuple[float, dict]:
    total, terminated, truncated, step = 0.0, False, False, 0
    while not (terminated or truncated):
        _, reward, terminated, truncated, info = env.step(actions(step))
        total += gamma ** step * reward
        step += 1
    return total, info


def test_a_crash_halfway_at_top_speed_earns_less_than_a_slow_safe_drive_and_a_fast_safe_one_most():
    """The reward's point: speed pays, but never through a crash. Every whole route earns the same 50 (0.05 per
    metre), so speed pays through the discount, at the presets' gamma of 0.9."""
    slow_road, fast_road, crashing = empty_road(), empty_road(), empty_road()
    for env in (slow_road, fast_road, crashing):
        env.reset(seed=0)
    slow, slow_info = discounted_return(slow_road, lambda step: SLOWER, 0.9)
    fast, fast_info = discounted_return(fast_road, lambda step: FASTER, 0.9)
    one_vehicle(crashing, ahead_m=500.0, lane=1, speed_mps=0.0)
    crash, crash_info = discounted_return(crashing, lambda step: FASTER, 0.9)
    assert slow_info["mean_speed"] < 21.0 and fast_info["mean_speed"] > 28.0 and not slow_info["collision"]
    assert crash_info["collision"] and 0.4 < crash_info["route_completion"] < 0.6
    assert crash < slow < fast
    assert fast - slow > 2.0 and slow - crash > 2.0


def test_running_into_a_stopped_car_is_a_collision_that_ends_the_episode():
    env = empty_road()
    env.reset(seed=3)
    one_vehicle(env, ahead_m=40.0, lane=1, speed_mps=0.0)
    terminated = False
    steps = 0
    while not terminated:
        _, reward, terminated, truncated, info = env.step(KEEP)
        steps += 1
        assert not truncated
    assert info["collision"] and env.collided_with == 0 and steps <= 3
    assert reward < -29.0  # the collision penalty
    crash = info["crash"]
    assert crash["kind"] == "rear_end" and crash["vehicle"] == 0 and crash["other_speed_mps"] == 0.0
    assert 4.0 < crash["ds_m"] <= 4.6 + 0.5 and abs(crash["dd_m"]) < 0.5  # nose to tail: about one car length apart
    assert crash["speed_mps"] > 15.0 and not crash["own_lane_change"] and not crash["other_lane_change"]
    assert info["driving_score"] == pytest.approx(info["route_completion"] * 0.60 * 0.95 ** info["headway_violations"])


def test_tailgating_counts_headway_violations_and_changing_lanes_avoids_the_crash():
    env = empty_road()
    env.reset(seed=4)
    one_vehicle(env, ahead_m=60.0, lane=1, speed_mps=15.0)  # 10 m/s slower, 55 m ahead bumper to bumper
    _, _, _, _, info = env.step(LEFT)  # overtake on the left
    terminated = truncated = False
    while not (terminated or truncated):
        _, _, terminated, truncated, info = env.step(KEEP)
    assert not info["collision"] and info["route_completion"] == 1.0
    # Without the change: it closes in and violates the 1 s headway before it hits.
    env.reset(seed=4)
    one_vehicle(env, ahead_m=60.0, lane=1, speed_mps=15.0)
    terminated = truncated = False
    while not (terminated or truncated):
        _, _, terminated, truncated, info = env.step(KEEP)
    assert info["collision"] and info["headway_violations"] >= 1 and info["headway_violation_s"] > 0


def drive_until_done(env: HighwayEnv, first_action: int) -> dict:
    _, _, terminated, truncated, info = env.step(first_action)
    while not (terminated or truncated):
        _, _, terminated, truncated, info = env.step(KEEP)
    return info


def test_a_crash_says_how_it_came_about_a_cut_in_a_lane_change_of_its_own_or_from_behind():
    env = empty_road()
    env.reset(seed=5)
    # A slower vehicle 30 m ahead in the next lane to the left starts moving into the car's lane.
    one_vehicle(env, ahead_m=30.0, lane=1, speed_mps=15.0)
    env.traffic.from_lane[0], env.traffic.d_m[0] = 2, env.road.lane_center_d(2)
    info = drive_until_done(env, KEEP)
    assert info["collision"] and info["crash"]["kind"] == "cut_in" and info["crash"]["other_lane_change"]
    assert 0.0 < info["crash"]["dd_m"] < 2.0  # still coming over from the left
    # The car moves left into a vehicle beside it.
    env.reset(seed=5)
    one_vehicle(env, ahead_m=2.0, lane=2, speed_mps=float(env.vehicle_state.speed_mps))
    info = drive_until_done(env, LEFT)
    assert info["collision"] and info["crash"]["kind"] == "own_lane_change" and info["crash"]["own_lane_change"]
    # A vehicle behind in the car's lane: hit from behind.
    env.reset(seed=5)
    one_vehicle(env, ahead_m=-4.0, lane=1, speed_mps=25.0)
    crash = env._describe_crash(0, env.ego_footprint())
    assert crash["kind"] == "from_behind" and crash["ds_m"] == pytest.approx(-4.0)


def test_the_state_observation_is_read_by_feature_name():
    env = empty_road()
    observation, _ = env.reset(seed=5)
    one_vehicle(env, ahead_m=30.0, lane=2, speed_mps=20.0)
    observation, *_ = env.step(KEEP)
    names = env.observation_features
    value = dict(zip(names, observation))
    assert len(names) == len(set(names)) == observation.shape[0]
    assert value["lane_index"] == 1 and value["cruise_speed_mps"] == 25.0 and value["changing_lane"] == 0
    assert value["car0_present"] == 1 and value["car1_present"] == 0
    assert 0 < value["car0_ds_m"] < 30 and value["car0_dd_m"] == pytest.approx(3.75, abs=0.3)  # one lane to the left
    assert value["car0_dv_mps"] == pytest.approx(20.0 - 25.0, abs=1.0)
    assert value["lane_left_exists"] == 1 and value["lane_left_gap_ahead_m"] < 30
    assert value["lane_own_gap_ahead_m"] == 100.0 and value["lane_own_gap_behind_m"] == 100.0  # free: the range
    scaled = gym.make("DriveLab/Highway-v0")
    assert scaled.unwrapped.observation_mode.scales.shape == observation.shape


@pytest.mark.parametrize("options, message", [
    ({"lane_count": 0}, "option lane_count must be an integer in 2..6, got 0"),
    ({"density_per_km": -1.0}, "option density_per_km must be a number >= 0, got -1.0"),
    ({"behaviour": {"politenes": 0.5}}, "unknown behaviour key 'politenes'; allowed: time_headway_s"),
    ({"behaviour": {"politeness": 2.0}}, "MOBIL politeness must be in [0, 1], got 2.0"),
    ({"traffic_speed_mps": [30, 20]}, "option traffic_speed_mps must be [low, high] with 0 < low <= high"),
    ({"lanes": 3}, "unknown option 'lanes'; allowed: observation, action, render_mode, track_seed"),
    ({"traffic_hz": 0}, "option control_hz (20.0) must be a whole multiple of traffic_hz (0)"),
    ({"traffic_hz": "fast"}, "option control_hz (20.0) must be a whole multiple of traffic_hz ('fast')"),
])
def test_bad_options_are_one_line_naming_the_key(options, message):
    with pytest.raises(ValueError) as error:
        HighwayEnv(**options)
    assert str(error.value).count("\n") == 0 and message in str(error.value), str(error.value)


def test_a_bad_meta_action_is_one_line():
    env = empty_road()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action for action='meta' must be one integer in 0..4 \(0 keep_lane"):
        env.step(7)
    assert math.isfinite(env.s_m)


def test_the_camera_sees_the_road_and_the_vehicle_ahead():
    env = HighwayEnv(observation="camera", density_per_km=0.0, lane=1)
    check_env(env, skip_render_check=True)
    image, _ = env.reset(seed=0)
    assert image.shape == (84, 84, 3) and image.dtype == np.uint8 and env.observation_features == ()
    def blue(picture: np.ndarray) -> float:  # the traffic's blue, shaded: far bluer than red, unlike the pale sky
        rgb = picture.astype(int)
        return float(((rgb[..., 2] - rgb[..., 0] > 90) & (rgb[..., 1] < 130)).mean())

    assert blue(image) == 0.0  # nobody on the road
    one_vehicle(env, ahead_m=15.0, lane=1, speed_mps=25.0)
    image, *_ = env.step(KEEP)
    assert blue(image) > 0.005  # the car ahead, a blue box in the middle of the view (about 8x8 pixels)
    again = HighwayEnv(observation="camera", density_per_km=20.0)
    first = again.reset(seed=3)[0]
    assert np.array_equal(first, again.reset(seed=3)[0])  # the same seed, the same picture


def test_the_planned_lane_change_is_continuous_in_position_heading_and_curvature():
    env = empty_road()
    env.reset(seed=6)
    env.step(LEFT)  # plans the change from where the car is to lane 2's centre
    s_start, d_from, d_to, length = env.change
    assert d_to == env.road.lane_center_d(2) and length == pytest.approx(25.0 * 4.0, rel=0.05)
    samples = []
    for offset in np.linspace(-5.0, length + 5.0, 801):
        env._s_m = env.road.wrap_s(s_start + offset)
        env.change = (s_start, d_from, d_to, length)  # _path_reference ends the change once past it
        samples.append(env._path_reference())
    d, slope, curvature = (np.array(column) for column in zip(*samples))
    step = (length + 10.0) / 800
    # No jump in the offset, the heading (slope) or the curvature, before, during or after the change.
    assert np.abs(np.diff(d)).max() <= 1.875 * (d_to - d_from) / length * step + 1e-9
    assert np.abs(np.diff(slope)).max() <= 5.78 * abs(d_to - d_from) / length**2 * step + 1e-9
    assert np.abs(np.diff(curvature)).max() <= 60 * abs(d_to - d_from) / length**3 * step + 1e-9
    assert d[0] == pytest.approx(d_from) and d[-1] == d_to and slope[-1] == 0.0 and curvature[-1] == 0.0


def test_tailgating_costs_more_than_the_progress_it_makes():
    """Each second under 1 s of headway costs 2.0, more than the second's progress earns (0.05 × 25 m)."""
    env = empty_road()
    env.reset(seed=4)
    one_vehicle(env, ahead_m=20.0, lane=1, speed_mps=25.0)  # 15.4 m bumper to bumper at 25 m/s: 0.6 s
    rewards = []
    for _ in range(4):
        _, reward, terminated, truncated, info = env.step(KEEP)
        assert not (terminated or truncated)
        rewards.append(reward)
    assert env.headway_violations == 1
    assert rewards[1:] == pytest.approx([0.05 * 25.0 - 2.0] * 3, abs=0.05)
