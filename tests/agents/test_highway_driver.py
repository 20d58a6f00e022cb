"""The highway's rule-based driver: MOBIL overtakes a slow car, IDM slows it when it cannot, and it reads only
its observation (by feature name)."""

from __future__ import annotations

import numpy as np

from drivelab.agents.highway_driver import FASTER, KEEP, LEFT, RIGHT, SLOWER, HighwayDriver
from drivelab.envs.highway import HighwayEnv
from tests.envs.test_highway import one_vehicle


def observation(env: HighwayEnv, **values: float) -> np.ndarray:
    """An observation made by hand: free lanes everywhere (gaps at the range), then ``values`` by name."""
    names = env.observation_features
    vector = np.zeros(len(names), dtype=np.float32)
    defaults = {"speed_mps": 25.0, "cruise_speed_mps": 25.0, "lane_index": 1.0}
    for side in ("right", "own", "left"):
        defaults.update({f"lane_{side}_exists": 1.0, f"lane_{side}_gap_ahead_m": 100.0, f"lane_{side}_gap_behind_m": 100.0})
    for name, value in {**defaults, **values}.items():
        vector[names.index(name)] = value
    return vector


def test_it_decides_from_the_observation_alone():
    env = HighwayEnv()
    driver = HighwayDriver.for_env(env)
    # A free road at 25 of 30 m/s: faster.
    assert driver.decide(observation(env)) == FASTER
    # A slow car 30 m ahead in its lane, the left lane free: overtake on the left.
    slow_ahead = dict(lane_own_gap_ahead_m=30.0, car0_present=1.0, car0_ds_m=34.6, car0_dd_m=0.0, car0_dv_mps=-10.0)
    assert driver.decide(observation(env, **slow_ahead)) == LEFT, driver.last_reason
    # The same with the left lane taken beside it: to the right instead.
    left_taken = dict(lane_left_gap_ahead_m=-2.0, lane_left_gap_behind_m=-2.0, car1_present=1.0, car1_ds_m=1.0,
                      car1_dd_m=3.75, car1_dv_mps=0.0)
    assert driver.decide(observation(env, **slow_ahead, **left_taken)) == RIGHT, driver.last_reason
    # Both sides taken: it slows down behind the slow car.
    right_taken = dict(lane_right_gap_ahead_m=-2.0, lane_right_gap_behind_m=-2.0, car2_present=1.0, car2_ds_m=-1.0,
                       car2_dd_m=-3.75, car2_dv_mps=0.0)
    assert driver.decide(observation(env, **slow_ahead, **left_taken, **right_taken)) == SLOWER, driver.last_reason
    # During a lane change it keeps to the plan, and slows down if the car ahead in either lane makes IDM brake.
    assert driver.decide(observation(env, changing_lane=1.0)) == KEEP
    assert driver.decide(observation(env, changing_lane=1.0, **slow_ahead)) == SLOWER, driver.last_reason
    env.close()


def test_it_overtakes_a_slow_car_and_completes_the_route():
    env = HighwayEnv(density_per_km=0.0, lane=1)
    driver = HighwayDriver.for_env(env)
    obs, _ = env.reset(seed=0)
    one_vehicle(env, ahead_m=70.0, lane=1, speed_mps=15.0)
    actions, done = [], False
    while not done:
        action = driver.decide(obs)
        actions.append(action)
        obs, _, terminated, truncated, info = env.step(action)
        done = terminated or truncated
    assert not info["collision"] and info["route_completion"] == 1.0
    assert info["lane_changes"] >= 1 and LEFT in actions[:4]
    assert info["mean_speed"] > 26.0  # it went faster than its start: the road ahead was free once past
