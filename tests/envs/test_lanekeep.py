"""DriveLab/LaneKeep-v0 through gym.make: checkers, determinism, errors, episode end, speed hold, rendering.

Numbers from the env's docstring: one step is 0.05 s (20 Hz decisions, 100 Hz physics); the road's half
width is 1.75 m plus a 0.5 m shoulder; leaving it costs off_road_penalty = 10.
"""

import dataclasses
import math
import re
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from gymnasium.utils.passive_env_checker import env_render_passive_checker
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import drivelab  # noqa: F401  (registers DriveLab/LaneKeep-v0)
from drivelab.agents.rule_based import RuleBasedDriver
from drivelab.envs.lanekeep import LaneKeepEnv, LaneKeepOptions

ENV_ID = "DriveLab/LaneKeep-v0"
MODES = ("direct", "steer", "steer_discrete")


@pytest.fixture
def make_env():
    envs = []

    def make(**kwargs):
        env = gym.make(ENV_ID, **kwargs)
        envs.append(env)
        return env

    yield make
    for env in envs:
        env.close()


def random_actions(action_mode, space, n, seed=0):
    """``n`` actions sampled from ``space``; in "direct" the brake is released, since any brake > 0
    overrides the throttle and a car under random pedals would never move."""
    space.seed(seed)
    actions = [space.sample() for _ in range(n)]
    if action_mode == "direct":
        for a in actions:
            a[2] = 0.0
    return actions


def rollout(env, seed, actions):
    """Observations (reset's first) and rewards until the actions run out or the episode ends."""
    obs, _ = env.reset(seed=seed)
    observations, rewards = [obs], []
    for action in actions:
        obs, reward, terminated, truncated, _ = env.step(action)
        observations.append(obs)
        rewards.append(reward)
        if terminated or truncated:
            break
    return np.stack(observations), np.array(rewards)


def one_line_value_error(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------------- API checkers
@pytest.mark.parametrize("action", MODES)
def test_passes_gymnasium_and_sb3_env_checkers(make_env, action):
    env = make_env(action=action)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # skip_render_check: gymnasium would make the env once per declared render mode, and
        # render_mode="human" opens the PyBullet GUI, which needs a display (see test_render_rgb_array).
        gymnasium_check_env(env.unwrapped, skip_render_check=True)
        sb3_check_env(env.unwrapped, warn=True)
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    if action == "direct":
        # By design: throttle and brake live in [0, 1] (documented); SB3 only recommends [-1, 1].
        messages = [m for m in messages if "symmetric and normalized Box action space" not in m]
    assert messages == []


# ---------------------------------------------------------------------- determinism
@pytest.mark.parametrize("action", MODES)
def test_same_seed_and_actions_give_bit_identical_rollouts(make_env, action):
    env_a, env_b = make_env(action=action), make_env(action=action)
    actions = random_actions(action, env_a.action_space, 200, seed=123)
    obs_a, rewards_a = rollout(env_a, 7, actions)
    obs_b, rewards_b = rollout(env_b, 7, actions)
    assert len(obs_a) > 20  # long enough to mean something (random steering ends it off the road eventually)
    np.testing.assert_array_equal(obs_a, obs_b)
    np.testing.assert_array_equal(rewards_a, rewards_b)
    # A reset of a used env (back to the world's snapshot) gives the same rollout as a fresh env.
    obs_again, rewards_again = rollout(env_a, 7, actions)
    np.testing.assert_array_equal(obs_again, obs_a)
    np.testing.assert_array_equal(rewards_again, rewards_a)


def test_an_episode_does_not_depend_on_the_episodes_before_it_nor_on_rendering(make_env):
    """Headless resets restore a snapshot of the world; a rendering env builds the world anew (its road
    meshes change with the track). Both, after any history, drive the same episode bit for bit."""
    driven = {}
    for name, kwargs, history in (("fresh", {}, ()), ("after others", {}, (3, 11)),
                                  ("rendering", {"render_mode": "rgb_array"}, (5,))):
        env = make_env(initial_offset_max_m=0.5, initial_heading_max_rad=0.1, **kwargs)
        driver = RuleBasedDriver.for_env(env)
        for seed in (*history, 2):
            observation, _ = env.reset(seed=seed)
            driver.reset()
            observations = [observation]
            for _ in range(150):
                observation, *_ = env.step(driver.predict(observation)[0])
                observations.append(observation)
        driven[name] = np.stack(observations)
    assert driven["fresh"][-1][2] > 5.0  # the car got up to speed: the comparison is of a real drive
    np.testing.assert_array_equal(driven["after others"], driven["fresh"])
    np.testing.assert_array_equal(driven["rendering"], driven["fresh"])


def test_different_reset_seed_gives_a_different_track(make_env):
    env = make_env()
    actions = [np.zeros(1, np.float32)] * 100
    obs_7, _ = rollout(env, 7, actions)
    track_7 = env.unwrapped.track_seed
    obs_8, _ = rollout(env, 8, actions)
    assert env.unwrapped.track_seed != track_7
    curvature = slice(5, None)
    assert not np.array_equal(obs_7[0, curvature], obs_8[0, curvature])  # a different preview at the start
    assert not np.array_equal(obs_7, obs_8)


def test_fixed_track_seed_gives_the_same_track_for_any_reset_seed(make_env):
    env = make_env(track_seed=3)
    obs_a, _ = env.reset(seed=1)
    obs_b, _ = env.reset(seed=2)
    assert env.unwrapped.track_seed == 3
    np.testing.assert_array_equal(obs_a, obs_b)


def test_reset_option_track_seed_picks_the_track_for_one_episode(make_env):
    env = make_env()
    obs_fixed, _ = env.reset(seed=1, options={"track_seed": 5})
    assert env.unwrapped.track_seed == 5
    obs_again, _ = env.reset(seed=2, options={"track_seed": 5})
    np.testing.assert_array_equal(obs_fixed, obs_again)
    env.reset(seed=1)
    assert env.unwrapped.track_seed != 5  # back to drawing tracks from the reset seed
    with pytest.raises(ValueError) as excinfo:
        env.reset(seed=1, options={"lane": 0})
    assert one_line_value_error(excinfo) == f"{ENV_ID}: unknown reset option 'lane'; allowed: track_seed"


# ---------------------------------------------------------------------- construction errors
def test_unknown_option_names_it_and_lists_the_allowed_ones():
    with pytest.raises(ValueError) as excinfo:
        gym.make(ENV_ID, max_speed_mps=3.0)
    message = one_line_value_error(excinfo)
    assert "unknown option 'max_speed_mps'" in message
    options = ", ".join(field.name for field in dataclasses.fields(LaneKeepOptions))
    assert message.endswith(f"; allowed: observation, action, render_mode, {options}")
    assert "target_speed_mps" in message and "render_height" in message


@pytest.mark.parametrize("kwargs, expected", [
    ({"observation": "pixels"}, f"{ENV_ID}: unknown observation 'pixels'; allowed: state, camera, perceived"),
    ({"action": "throttle"}, f"{ENV_ID}: unknown action 'throttle'; allowed: direct, steer, steer_discrete"),
])
def test_unknown_mode_names_list_the_allowed_ones(kwargs, expected):
    with pytest.raises(ValueError) as excinfo:
        gym.make(ENV_ID, **kwargs)
    assert one_line_value_error(excinfo) == expected


@pytest.mark.parametrize("kwargs, expected", [
    ({"target_speed_mps": -1.0}, "option target_speed_mps must be a positive number, got -1.0"),
    ({"target_speed_mps": math.nan}, "option target_speed_mps must be a positive number, got nan"),
    ({"initial_speed_mps": -2.0}, "option initial_speed_mps must be a number >= 0, got -2.0"),
    ({"physics_hz": 110.0}, "option physics_hz (110.0) must be a whole multiple of decision_hz (20.0)"),
    ({"physics_hz": 100.0, "decision_hz": 30.0}, "option physics_hz (100.0) must be a whole multiple of decision_hz (30.0)"),
    ({"lane": 1}, "option lane must be an integer in 0..0 (0 = rightmost), got 1"),
    ({"max_lateral_accel_mps2": 0.0}, "option max_lateral_accel_mps2 must be a positive number (m/s²) or None "
                                      "(hold target_speed_mps in bends too), got 0.0"),
    ({"lane": -1, "lane_count": 2}, "option lane must be an integer in 0..1 (0 = rightmost), got -1"),
    ({"steer_levels": 1}, "option steer_levels must be an integer >= 2, got 1"),
])
def test_invalid_option_values_raise_a_one_line_error_naming_the_option(kwargs, expected):
    with pytest.raises(ValueError) as excinfo:
        gym.make(ENV_ID, **kwargs)
    assert one_line_value_error(excinfo) == f"{ENV_ID}: {expected}"


# ---------------------------------------------------------------------- actions
@pytest.mark.parametrize("action, bad", [
    ("steer", [math.nan]),
    ("steer", [math.inf]),
    ("direct", [0.0, -math.inf, 0.0]),
    ("direct", [math.nan, 0.5, 0.0]),
    ("steer_discrete", math.nan),
])
def test_non_finite_actions_raise(make_env, action, bad):
    env = make_env(action=action)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action must be finite"):
        env.step(np.array(bad, dtype=np.float32))


@pytest.mark.parametrize("action, out_of_range, clipped", [
    ("steer", [5.0], [1.0]),
    ("steer", [-5.0], [-1.0]),
    ("direct", [5.0, 3.0, 0.0], [1.0, 1.0, 0.0]),
    ("direct", [-2.0, 0.5, -1.0], [-1.0, 0.5, 0.0]),
])
def test_out_of_range_continuous_actions_are_clipped_to_the_box(make_env, action, out_of_range, clipped):
    env_a, env_b = make_env(action=action), make_env(action=action)
    obs_a, _ = env_a.reset(seed=0)
    obs_b, _ = env_b.reset(seed=0)
    np.testing.assert_array_equal(obs_a, obs_b)
    for _ in range(20):
        obs_a, reward_a, *_ = env_a.step(np.array(out_of_range, dtype=np.float32))
        obs_b, reward_b, *_ = env_b.step(np.array(clipped, dtype=np.float32))
        np.testing.assert_array_equal(obs_a, obs_b)
        assert reward_a == reward_b
    assert obs_a[2] > 0.5  # the car moved: the comparison was not between two parked cars


@pytest.mark.parametrize("action, bad, expected", [
    ("steer", [0.1, 0.2], "action for action='steer' must have 1 value (steer), got 2"),
    ("direct", [0.1, 0.2], "action for action='direct' must have 3 values (steer, throttle, brake), got 2"),
    ("steer_discrete", [1, 2], "action for action='steer_discrete' must be one integer in 0..8, got [1, 2]"),
])
def test_wrong_size_actions_raise(make_env, action, bad, expected):
    env = make_env(action=action)
    env.reset(seed=0)
    with pytest.raises(ValueError) as excinfo:
        env.step(np.array(bad))
    assert one_line_value_error(excinfo) == expected


@pytest.mark.parametrize("bad", [9, -1, 2.5])
def test_discrete_action_out_of_range_raises(make_env, bad):
    env = make_env(action="steer_discrete")  # steer_levels = 9: actions 0..8
    env.reset(seed=0)
    with pytest.raises(ValueError) as excinfo:
        env.step(bad)
    assert one_line_value_error(excinfo) == f"action for action='steer_discrete' must be one integer in 0..8, got {bad}"


def test_discrete_levels_span_the_steering_range(make_env):
    env = make_env(action="steer_discrete")
    np.testing.assert_allclose(env.unwrapped.action_mode.angles_rad, np.linspace(-0.5, 0.5, 9))
    env.reset(seed=0)
    *_, info = env.step(np.int64(8))
    assert info["steer_command_rad"] == 0.5  # the last level steers fully left


def test_step_before_reset_raises():
    env = LaneKeepEnv()
    try:
        with pytest.raises(RuntimeError, match=re.escape("call reset() before step()")):
            env.step(np.zeros(1, np.float32))
    finally:
        env.close()


# ---------------------------------------------------------------------- observations
@pytest.mark.parametrize("action", MODES)
def test_observations_stay_finite_float32_and_inside_the_space_to_off_road(make_env, action):
    env = make_env(action=action, max_episode_s=60.0)
    space = env.observation_space
    obs, _ = env.reset(seed=0)
    observations = [obs]
    for step_action in random_actions(action, env.action_space, 1200, seed=0):
        obs, _, terminated, truncated, info = env.step(step_action)
        observations.append(obs)
        if terminated or truncated:
            break
    # Random steering leaves the road: the last observation is the one past the road's edge.
    assert terminated and info["off_road"]
    for obs in observations:
        assert obs.dtype == np.float32 and obs.shape == (10,)
        assert np.all(np.isfinite(obs))
        assert space.contains(obs), obs
    assert abs(observations[-1][0]) > 2.25  # off road: |lateral offset| beyond half width + shoulder


def test_observation_features_follow_the_docstring_table(make_env):
    env = make_env()
    rows = re.findall(r"^\s*\| (\d+)\.* \| ``([^`]+)``", LaneKeepEnv.__doc__, flags=re.MULTILINE)
    assert [int(index) for index, _ in rows] == [0, 1, 2, 3, 4, 5]
    documented = [name for _, name in rows[:5]]
    assert rows[5][1] == "curvature_{d}m_1pm"  # row "5..": one per default preview distance
    preview = [rows[5][1].format(d=d) for d in (0, 5, 10, 20, 30)]
    features = env.unwrapped.observation_features
    assert list(features) == documented + preview
    assert documented == ["lateral_offset_m", "heading_error_rad", "speed_mps", "yaw_rate_radps", "steer_rad"]
    # ... and the space's bounds are the table's: ±10, ±π, −20..60, ±5, ±0.5, then ±1.
    np.testing.assert_allclose(env.observation_space.low, np.float32([-10, -np.pi, -20, -5, -0.5] + [-1] * 5))
    np.testing.assert_allclose(env.observation_space.high, np.float32([10, np.pi, 60, 5, 0.5] + [1] * 5))


def test_curvature_preview_option_sets_the_feature_list(make_env):
    env = make_env(curvature_preview_m=[0, 7.5])
    assert env.unwrapped.observation_features[5:] == ("curvature_0m_1pm", "curvature_7.5m_1pm")
    assert env.observation_space.shape == (7,)


# ---------------------------------------------------------------------- episode end
def test_hard_left_leaves_the_road_and_terminates_with_the_penalty(make_env):
    env = make_env(action="steer")
    env.reset(seed=0)
    rewards = []
    for _ in range(400):
        _, reward, terminated, truncated, info = env.step(np.array([1.0], np.float32))
        rewards.append(reward)
        if terminated or truncated:
            break
    assert terminated and not truncated
    assert info["off_road"] is True and info["rolled_over"] is False
    assert info["d_m"] > 1.75 + 0.5  # off the left edge (left positive)
    assert info["route_completion"] < 0.2
    assert rewards[-1] < -5  # progress is worth 0.1/m, the penalty 10
    assert all(r > -5 for r in rewards[:-1])  # the penalty comes once, on the step that leaves


def test_reward_is_progress_minus_a_linear_centring_cost(make_env):
    """0.1 per metre of progress − 2.0 × |offset| / 1.75 m per second (the docstring's numbers)."""
    env = make_env(action="steer", initial_offset_max_m=0.8, initial_speed_mps=8.0)
    env.reset(seed=3)
    s_before = env.unwrapped._s_m
    checked = 0
    for _ in range(30):
        _, reward, terminated, _, info = env.step(np.zeros(1, np.float32))
        progress = env.unwrapped.road.progress(s_before, info["s_m"])
        s_before = info["s_m"]
        if not terminated:
            assert reward == pytest.approx(0.1 * progress - 2.0 * abs(info["lane_offset_m"]) / 1.75 * 0.05, abs=1e-12)
            checked += abs(info["lane_offset_m"]) > 0.05
    assert checked > 10  # the car was off centre, so the centring cost was really tested


def test_truncates_after_exactly_max_episode_s_with_the_metrics(make_env):
    env = make_env(action="steer", max_episode_s=2.0)
    env.reset(seed=0)
    for step in range(1, 41):
        _, _, terminated, truncated, info = env.step(np.zeros(1, np.float32))
        assert not terminated
        assert truncated == (step == 40)  # 2.0 s at 20 Hz
        if step < 40:
            assert "route_completion" not in info  # metrics only on the final step
    assert info["episode_time_s"] == pytest.approx(2.0)
    assert isinstance(info["route_completion"], float) and 0.0 < info["route_completion"] < 1.0
    assert isinstance(info["lateral_error_rms"], float) and 0.0 <= info["lateral_error_rms"] < 0.5
    assert info["off_road"] is False
    assert isinstance(info["mean_speed"], float) and info["mean_speed"] > 0.0
    # Mean of the sampled speeds ≈ distance / time (within half a step's speed gain at ~2 m/s²).
    assert info["mean_speed"] == pytest.approx(info["distance_m"] / 2.0, rel=0.05)
    assert info["route_completion"] == pytest.approx(info["distance_m"] / env.unwrapped.road.length_m)


def test_speed_pid_holds_the_target_speed(make_env):
    env = make_env(action="steer", target_speed_mps=8.0)
    driver = RuleBasedDriver.for_env(env)
    obs, _ = env.reset(seed=0)
    speeds = []
    for _ in range(300):  # 15 s, of which the first ~5 s accelerate
        obs, _, terminated, truncated, info = env.step(driver.act(obs))
        assert not (terminated or truncated)
        speeds.append(info["speed_mps"])
    assert np.mean(speeds[-100:]) == pytest.approx(8.0, abs=0.3)
    assert max(speeds) < 8.5  # no large overshoot out of the acceleration


def test_the_speed_set_point_slows_for_bends_by_the_lateral_acceleration_limit(make_env):
    """At 20 m/s with max_lateral_accel_mps2 = 3: the set-point reaches 20 m/s on the straights and
    drops to sqrt(3 / κ) in the bends; it is in the info of every step, with the PID's terms."""
    env = make_env(action="steer", target_speed_mps=20.0, max_lateral_accel_mps2=3.0, track_seed=811504)
    driver = RuleBasedDriver.for_env(env)
    obs, _ = env.reset(seed=0)
    road, profile = env.unwrapped.road, env.unwrapped.speed_profile
    assert profile.min_speed_mps == pytest.approx(math.sqrt(3.0 / np.abs(road.curvature).max()), rel=1e-6)
    targets, speeds = [], []
    while True:
        obs, _, terminated, truncated, info = env.step(driver.act(obs))
        targets.append(info["target_speed_mps"])
        speeds.append(info["speed_mps"])
        assert set(info["speed_controller"]) == {"proportional", "integral", "derivative", "feedforward"}
        if terminated or truncated:
            break
    assert info["route_completion"] == 1.0
    assert max(targets) > 15.0 and min(targets) == pytest.approx(profile.min_speed_mps, rel=0.02)
    assert max(speeds) > 13.0 and min(speeds[200:]) < 10.5  # it did speed up, and it did slow down


def test_max_lateral_accel_none_holds_the_target_speed_everywhere(make_env):
    env = make_env(action="steer", target_speed_mps=12.0, max_lateral_accel_mps2=None)
    env.reset(seed=0)
    assert env.unwrapped.speed_profile is None
    for _ in range(20):
        _, _, _, _, info = env.step(np.zeros(1, np.float32))
        assert info["target_speed_mps"] == 12.0


# ---------------------------------------------------------------------- rendering
def test_render_rgb_array_shows_the_road(make_env):
    env = make_env(render_mode="rgb_array")
    env.reset(seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env_render_passive_checker(env.unwrapped)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.shape == (240, 320, 3)
    assert frame.std() > 5
    # Asphalt is grey (channels within a few levels of each other, neither black nor white); grass is green.
    lower_middle = frame[200:, 120:200].astype(int)
    grey = (lower_middle.max(axis=-1) - lower_middle.min(axis=-1) <= 8) & (lower_middle.mean(axis=-1) > 20) \
        & (lower_middle.mean(axis=-1) < 120)
    assert grey.mean() > 0.5


def test_render_without_render_mode_returns_none(make_env):
    env = make_env()
    env.reset(seed=0)
    assert env.render() is None
