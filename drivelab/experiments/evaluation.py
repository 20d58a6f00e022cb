"""Evaluation: an agent drives one episode on each evaluation track; the metrics are the env's own."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

EPISODE_METRICS = ("route_completion", "lateral_error_rms", "off_road", "mean_speed")
CSV_COLUMNS = ("env_steps", "wall_time_s", "episode", "track_seed", "return", "episode_length", *EPISODE_METRICS)
# DriveLab/Highway-v0's metrics besides those (drivelab.envs.highway): recorded when the env reports them.
TRAFFIC_METRICS = ("collision", "lane_changes", "headway_violations", "driving_score")
TRAFFIC_CSV_COLUMNS = (*CSV_COLUMNS, *TRAFFIC_METRICS)
FLAG_COLUMNS = ("off_road", "truncated", "collision")  # booleans, written as 0 or 1
# An Atari game's evaluation (drivelab.envs.atari.evaluate_game): raw score, human-normalised score, frames played.
GAME_METRICS = ("score", "human_normalized_score", "frames", "truncated")
GAME_CSV_COLUMNS = ("env_steps", "wall_time_s", "episode", "seed", *GAME_METRICS)


def evaluation_track_seeds(first_track_seed: int, episodes: int) -> list[int]:
    return [first_track_seed + index for index in range(episodes)]


def run_episode(agent: Any, env, seed: int, reset_options: dict[str, Any] | None = None, deterministic: bool = True,
                after_step: Callable[[], Any] | None = None) -> tuple[float, int, dict[str, Any]]:
    """Drive one episode from ``env.reset(seed=seed, options=reset_options)``.

    :param after_step: called after every step (``env.render`` to watch it).
    :return: the return, the number of steps, and the final step's ``info`` (the episode metrics).
    """
    observation, _ = env.reset(seed=int(seed), options=reset_options)
    if hasattr(agent, "reset"):
        agent.reset()
    total, length, info, done = 0.0, 0, {}, False
    while not done:
        action, _ = agent.predict(observation, deterministic=deterministic)
        observation, reward, terminated, truncated, info = env.step(action)
        total += float(reward)
        length += 1
        if after_step is not None:
            after_step()
        done = terminated or truncated
    return total, length, info


def evaluate(agent: Any, env, track_seeds: Sequence[int], deterministic: bool = True) -> list[dict[str, Any]]:
    """One episode per track seed (reset seed = track seed, so episodes are reproducible).

    :return: one dict per episode: ``track_seed``, ``return``, ``episode_length`` and the env's
        episode metrics (``route_completion``, ``lateral_error_rms``, ``off_road``, ``mean_speed``).
    """
    episodes = []
    for track_seed in track_seeds:
        total, length, info = run_episode(agent, env, int(track_seed), {"track_seed": int(track_seed)}, deterministic)
        episodes.append({"track_seed": int(track_seed), "return": total, "episode_length": length,
                         **{key: info[key] for key in EPISODE_METRICS},
                         **({key: info[key] for key in TRAFFIC_METRICS} if "driving_score" in info else {})})
    return episodes


def csv_columns(env_id: str) -> tuple[str, ...]:
    """The columns of a driving env's ``evaluations.csv``: the traffic metrics too on the highway."""
    return TRAFFIC_CSV_COLUMNS if env_id == "DriveLab/Highway-v0" else CSV_COLUMNS


def summarize(episodes: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Means over episodes (``off_road`` becomes the off-road rate, ``collision`` the collision rate)."""
    summary = {
        "route_completion": float(np.mean([e["route_completion"] for e in episodes])),
        "lateral_error_rms": float(np.mean([e["lateral_error_rms"] for e in episodes])),
        "off_road_rate": float(np.mean([bool(e["off_road"]) for e in episodes])),
        "mean_speed": float(np.mean([e["mean_speed"] for e in episodes])),
        "return": float(np.mean([e["return"] for e in episodes])),
    }
    if episodes and "driving_score" in episodes[0]:  # the highway's
        summary["collision_rate"] = float(np.mean([bool(e["collision"]) for e in episodes]))
        for key in ("lane_changes", "headway_violations", "driving_score"):
            summary[key] = float(np.mean([e[key] for e in episodes]))
    return summary


def summarize_games(episodes: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Means over an Atari evaluation's games: raw ``score`` (also as ``return``, as reports read it),
    ``human_normalized_score``, and the share of games the frame cap cut short."""
    return {
        "score": float(np.mean([e["score"] for e in episodes])),
        "human_normalized_score": float(np.mean([e["human_normalized_score"] for e in episodes])),
        "truncated_rate": float(np.mean([bool(e["truncated"]) for e in episodes])),
        "return": float(np.mean([e["score"] for e in episodes])),
    }

