"""highway-env's own documented DQN recipe on its highway-fast-v0: the peer of experiments/highway_dqn_vs_ppo.yaml.

The recipe is highway-env's (its scripts/sb3_highway_dqn.py): SB3's DQN with an MLP of 256x256, learning
rate 5e-4, a buffer of 15,000, learning from step 200, batches of 32, gamma 0.8, a gradient step per env
step, a target update every 50 steps, 20,000 steps. Our preset dqn-meta is the same recipe but for gamma (0.9). After
training, the deterministic policy drives ``--episodes`` episodes from reset seeds 1,000,000 up (never
trained on), and the script reports, as DriveLab's evaluations do, the share of collision-free episodes
and the mean speed (m/s, over every decision of every episode).

    python benchmarks/highway_env_dqn.py [--steps 20000] [--episodes 20] [--seed 0] [--json] [--out FILE]

``--out FILE`` also writes the JSON object to FILE (whole or not at all): one such file per seed is what
``drivelab compare RUN_DIR --peer FILE...`` shows beside our agents.

Needs the dev extra (highway-env). One torch thread, as a DriveLab trial trains.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000, help="training steps (default: %(default)s, the recipe's)")
    parser.add_argument("--episodes", type=int, default=20, help="evaluation episodes (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="training seed (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--out", help="also write the JSON object to this file (for drivelab compare --peer)")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.episodes < 1:
        print("highway_env_dqn: --steps and --episodes must be >= 1", file=sys.stderr)
        return 2
    if args.out and Path(args.out).is_dir():
        print(f"highway_env_dqn: --out {args.out} is a directory; give a file name", file=sys.stderr)
        return 2
    try:
        import highway_env  # noqa: F401
    except ImportError:
        print("highway_env_dqn: highway-env is not installed: pip install -e '.[dev]'", file=sys.stderr)
        return 2
    import gymnasium as gym
    import numpy as np
    import torch
    from stable_baselines3 import DQN

    torch.set_num_threads(1)
    env = gym.make("highway-fast-v0")
    model = DQN("MlpPolicy", env, policy_kwargs=dict(net_arch=[256, 256]), learning_rate=5e-4, buffer_size=15_000,
                learning_starts=200, batch_size=32, gamma=0.8, train_freq=1, gradient_steps=1, target_update_interval=50,
                seed=args.seed, device="cpu", verbose=0)
    started = time.perf_counter()
    model.learn(args.steps)
    train_s = time.perf_counter() - started
    crashes, speeds, lengths = [], [], []
    for episode in range(args.episodes):
        observation, _ = env.reset(seed=1_000_000 + episode)
        done, crashed, steps = False, False, 0
        while not done:
            action, _ = model.predict(observation, deterministic=True)
            observation, _, terminated, truncated, info = env.step(action)
            speeds.append(float(info["speed"]))
            crashed = crashed or bool(info["crashed"])
            steps += 1
            done = terminated or truncated
        crashes.append(crashed)
        lengths.append(steps)
    config = env.unwrapped.config
    result = {"env": "highway-fast-v0", "recipe": "highway-env scripts/sb3_highway_dqn.py", "steps": args.steps,
              "seed": args.seed, "episodes": args.episodes, "collision_free_rate": 1.0 - float(np.mean(crashes)),
              "mean_speed": float(np.mean(speeds)), "mean_episode_decisions": float(np.mean(lengths)),
              "vehicles": config["vehicles_count"], "lanes": config["lanes_count"], "duration_s": config["duration"],
              "train_seconds": train_s, "train_steps_per_s": args.steps / train_s}
    if args.out:
        from drivelab.experiments.trial import write_atomic

        write_atomic(Path(args.out), json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result))
    else:
        print(f"highway-fast-v0, highway-env's DQN recipe, {args.steps:,} steps (seed {args.seed}, {train_s:.0f} s): "
              f"collision-free {result['collision_free_rate']:.2f} of {args.episodes} episodes, "
              f"mean speed {result['mean_speed']:.1f} m/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
