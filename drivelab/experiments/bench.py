"""Benchmarks, each measured against a reference run in the same process.

``bench_env``: DriveLab/LaneKeep-v0 driven by the rule-based driver, side by side with
highway-env's ``highway-fast-v0`` (the peer, when the dev extra is installed) and with raw PyBullet
``stepSimulation`` on the same scene (the physical ceiling). All run one after the other in this
process on one core, each for the same wall time.

Two ratios, because the envs decide at different rates: env steps per second (what an RL
algorithm's sample throughput sees) and simulated seconds per wall second (the real-time factor).
highway-fast-v0 decides once per simulated second on a 5 Hz kinematic model; LaneKeep decides at
20 Hz on 100 Hz rigid-body physics.
"""

from __future__ import annotations

import datetime
import os
import platform
import time
from pathlib import Path
from typing import Any, Callable

PEER_ID = "highway-fast-v0"


def machine_description() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:  # not Linux: platform's answer stands
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "system": platform.system(),
            "date": datetime.date.today().isoformat()}


def _timed_loop(step: Callable[[], None], seconds: float) -> tuple[int, float]:
    """Call ``step`` until ``seconds`` of wall time have passed; checks the clock every 50 calls."""
    count, start = 0, time.perf_counter()
    while True:
        for _ in range(50):
            step()
        count += 50
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return count, elapsed


def bench_lanekeep(seconds: float) -> dict[str, Any]:
    import gymnasium as gym

    import drivelab  # noqa: F401
    from drivelab.agents.rule_based import RuleBasedDriver

    env = gym.make("DriveLab/LaneKeep-v0", action="steer")
    driver = RuleBasedDriver.for_env(env)
    base = env.unwrapped
    state = {"observation": env.reset(seed=0)[0], "episodes": 0}

    def step() -> None:
        action, _ = driver.predict(state["observation"])
        observation, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            state["episodes"] += 1
            observation, _ = env.reset()
            driver.reset()
        state["observation"] = observation

    steps, elapsed = _timed_loop(step, seconds)
    env.close()
    steps_per_s = steps / elapsed
    return {
        "steps_per_s": steps_per_s,
        "sim_seconds_per_s": steps_per_s * base.decision_dt_s,
        "decision_hz": base.options.decision_hz,
        "physics_hz": base.options.physics_hz,
        "episodes_finished": state["episodes"],
    }


def bench_ceiling(seconds: float) -> dict[str, Any]:
    """Raw ``stepSimulation`` on LaneKeep's scene: the ground, a track, the car driving a steady circle."""
    from drivelab.envs.lanekeep import LaneKeepOptions
    from drivelab.envs.world import PhysicsSettings, World
    from drivelab.planning import TrackSpec, generate_track

    options = LaneKeepOptions()
    world = World(PhysicsSettings(physics_hz=options.physics_hz))
    road = generate_track(0, TrackSpec())
    world.set_road(road)
    x, y = road.position(0.0)
    car = world.add_vehicle(x_m=float(x), y_m=float(y), yaw_rad=float(road.heading_at(0.0)), speed_mps=options.target_speed_mps)
    car.steer(0.05)
    car.drive(0.1, 0.0)
    physics_steps, elapsed = _timed_loop(world.client.stepSimulation, seconds)
    world.close()
    physics_steps_per_s = physics_steps / elapsed
    substeps = options.physics_hz / options.decision_hz
    return {
        "physics_steps_per_s": physics_steps_per_s,
        "steps_per_s": physics_steps_per_s / substeps,
        "sim_seconds_per_s": physics_steps_per_s / options.physics_hz,
    }


def bench_peer(seconds: float) -> dict[str, Any] | None:
    """highway-fast-v0 with seeded random actions; ``None`` when highway-env is not installed."""
    try:
        import gymnasium as gym
        import highway_env  # noqa: F401
    except ImportError:
        return None
    env = gym.make(PEER_ID)
    env.reset(seed=0)
    env.action_space.seed(0)
    config = env.unwrapped.config

    def step() -> None:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()

    steps, elapsed = _timed_loop(step, seconds)
    env.close()
    steps_per_s = steps / elapsed
    return {
        "steps_per_s": steps_per_s,
        "sim_seconds_per_s": steps_per_s / config["policy_frequency"],
        "decision_hz": config["policy_frequency"],
        "physics_hz": config["simulation_frequency"],
    }


def bench_env(seconds: float = 10.0, with_peer: bool = True, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Measure LaneKeep, the peer and the ceiling; return the figures and their ratios."""
    say = progress or (lambda _message: None)
    say(f"measuring DriveLab/LaneKeep-v0 with the rule-based driver for {seconds:g} s ...")
    ours = bench_lanekeep(seconds)
    say(f"measuring raw PyBullet stepSimulation on the same scene for {seconds:g} s ...")
    ceiling = bench_ceiling(seconds)
    peer = None
    if with_peer:
        say(f"measuring {PEER_ID} for {seconds:g} s ...")
        peer = bench_peer(seconds)
        if peer is None:
            say("highway-env is not installed (pip install -e '.[dev]'): no peer figures")
    result: dict[str, Any] = {
        "env": "DriveLab/LaneKeep-v0",
        "agent": "rule_based",
        "seconds_per_measurement": seconds,
        "steps_per_s": ours["steps_per_s"],
        "sim_seconds_per_s": ours["sim_seconds_per_s"],
        "decision_hz": ours["decision_hz"],
        "physics_hz": ours["physics_hz"],
        "ceiling_steps_per_s": ceiling["steps_per_s"],
        "ceiling_physics_steps_per_s": ceiling["physics_steps_per_s"],
        "ceiling_sim_seconds_per_s": ceiling["sim_seconds_per_s"],
        "fraction_of_ceiling": ours["steps_per_s"] / ceiling["steps_per_s"],
        "peer": PEER_ID if peer else None,
        "peer_steps_per_s": peer["steps_per_s"] if peer else None,
        "peer_sim_seconds_per_s": peer["sim_seconds_per_s"] if peer else None,
        "peer_decision_hz": peer["decision_hz"] if peer else None,
        "peer_physics_hz": peer["physics_hz"] if peer else None,
        "ratio_vs_peer": ours["steps_per_s"] / peer["steps_per_s"] if peer else None,
        "rtf_ratio_vs_peer": ours["sim_seconds_per_s"] / peer["sim_seconds_per_s"] if peer else None,
        "machine": machine_description(),
    }
    return result


def format_env_bench(result: dict[str, Any]) -> str:
    lines = [
        f"{'env':<34}{'steps/s':>10}{'sim s/s':>10}{'decide Hz':>11}{'physics Hz':>12}",
        f"{'DriveLab/LaneKeep-v0 (rule-based)':<34}{result['steps_per_s']:>10.0f}{result['sim_seconds_per_s']:>10.1f}"
        f"{result['decision_hz']:>11g}{result['physics_hz']:>12g}",
    ]
    if result["peer"]:
        lines.append(
            f"{result['peer'] + ' (random actions)':<34}{result['peer_steps_per_s']:>10.1f}{result['peer_sim_seconds_per_s']:>10.1f}"
            f"{result['peer_decision_hz']:>11g}{result['peer_physics_hz']:>12g}"
        )
    lines.append(
        f"{'raw PyBullet stepSimulation':<34}{result['ceiling_steps_per_s']:>10.0f}{result['ceiling_sim_seconds_per_s']:>10.1f}"
        f"{result['decision_hz']:>11g}{result['physics_hz']:>12g}"
        f"   ({result['ceiling_physics_steps_per_s']:.0f} physics steps/s)"
    )
    if result["peer"]:
        lines.append(f"env steps/s vs {result['peer']}: {result['ratio_vs_peer']:.1f}x; "
                     f"simulated time vs {result['peer']}: {result['rtf_ratio_vs_peer']:.1f}x")
    lines.append(f"LaneKeep reaches {100 * result['fraction_of_ceiling']:.0f}% of the physics ceiling")
    machine = result["machine"]
    lines.append(f"one core of {machine['cores']}: {machine['cpu']}, Python {machine['python']}, {machine['date']}")
    return "\n".join(lines)


def bench_train(steps: int = 20_000, algo: str = "ppo", repeats: int = 2, out: str | None = None,
                progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """``drivelab train``'s trial runner against plain stable-baselines3, interleaved.

    Both train the same algorithm with the same preset hyperparameters on the same env for the same
    number of steps. Ours runs with everything a trial carries (W&B offline with its SB3 callback
    and TensorBoard sync, TensorBoard logs, atomic checkpoints every 10,000 steps); evaluations are
    left out of both figures (they are work, not overhead). Two ratios: the learning loop alone,
    and end to end (ours: W&B start-up and finish, checkpoints and saving the model; plain: making
    the env and model, learning, saving). Each repeat runs both, plain first in even repeats and
    ours first in odd ones, so that neither always runs on a warmer machine.
    """
    import shutil
    import tempfile

    import torch

    from drivelab.agents.factory import make_model, make_training_env
    from drivelab.experiments.config import parse_config, resolve_trial
    from drivelab.experiments.trial import run_trial

    say = progress or (lambda _message: None)
    torch.set_num_threads(1)
    config = parse_config({
        "name": "bench_train", "env": {"id": "DriveLab/LaneKeep-v0"}, "agents": [{"name": algo, "algo": algo}],
        "seeds": [0], "budget_steps": steps,
        "evaluation": {"every_steps": 10 * steps, "episodes": 1},  # only the start and end evaluations
        "checkpoint_every_steps": 10_000, "tracking": {"wandb": {"mode": "offline"}, "tensorboard": True},
        "device": "cpu",
    }, "bench")
    trial = resolve_trial(config, algo, 0)
    workdir = Path(out) if out else Path(tempfile.mkdtemp(prefix="drivelab-bench-train-"))
    plain_rates, ours_rates, plain_totals, ours_totals = [], [], [], []
    try:
        def plain_run(repeat: int) -> None:
            say(f"[{repeat + 1}/{repeats}] plain stable-baselines3: {algo}, {steps} steps ...")
            begin_total = time.perf_counter()
            venv = make_training_env(trial["env_id"], trial["train_env_options"], trial["action"], trial["n_envs"], 0)
            model = make_model(algo, venv, trial["hyperparams"], 0, device="cpu")
            begin = time.perf_counter()
            model.learn(total_timesteps=steps)
            plain_rates.append(model.num_timesteps / (time.perf_counter() - begin))
            model.save(Path(tempfile.gettempdir()) / f"drivelab-bench-plain-{os.getpid()}.zip")
            venv.close()
            plain_totals.append(model.num_timesteps / (time.perf_counter() - begin_total))

        def tracked_run(repeat: int) -> None:
            say(f"[{repeat + 1}/{repeats}] drivelab trial (W&B offline, TensorBoard, checkpoints) ...")
            status = run_trial(trial, workdir / f"repeat-{repeat}")
            ours_rates.append(status["env_steps"] / status["train_seconds"])
            # End to end: W&B start-up and finish, checkpoints, saving; evaluations are left out.
            ours_totals.append(status["env_steps"] / (status["wall_time_s"] - status["evaluation_seconds"]))

        for repeat in range(repeats):
            # Alternate which goes first, so neither always runs on a warmer machine.
            for run in ((plain_run, tracked_run) if repeat % 2 == 0 else (tracked_run, plain_run)):
                run(repeat)
    finally:
        (Path(tempfile.gettempdir()) / f"drivelab-bench-plain-{os.getpid()}.zip").unlink(missing_ok=True)
        if out is None:
            shutil.rmtree(workdir, ignore_errors=True)

    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    return {
        "algo": algo, "steps": steps, "repeats": repeats,
        "plain_sb3_steps_per_s": mean(plain_rates), "drivelab_train_steps_per_s": mean(ours_rates),
        "ratio": mean(ours_rates) / mean(plain_rates),
        "plain_sb3_end_to_end_steps_per_s": mean(plain_totals), "drivelab_train_end_to_end_steps_per_s": mean(ours_totals),
        "end_to_end_ratio": mean(ours_totals) / mean(plain_totals),
        "plain_sb3_runs": plain_rates, "drivelab_train_runs": ours_rates,
        "machine": machine_description(),
    }


def format_train_bench(result: dict[str, Any]) -> str:
    runs = ", ".join(f"{o:.0f}/{p:.0f}" for o, p in zip(result["drivelab_train_runs"], result["plain_sb3_runs"]))
    machine = result["machine"]
    return "\n".join([
        f"{result['algo']} on DriveLab/LaneKeep-v0, {result['steps']} env steps, {result['repeats']} interleaved repeats",
        f"plain stable-baselines3   {result['plain_sb3_steps_per_s']:8.0f} steps/s",
        f"drivelab train (tracked)  {result['drivelab_train_steps_per_s']:8.0f} steps/s",
        f"ratio {result['ratio']:.3f} (per repeat, ours/plain: {runs})",
        f"end to end, W&B start-up/finish, checkpoints and saving included: {result['drivelab_train_end_to_end_steps_per_s']:.0f} vs "
        f"{result['plain_sb3_end_to_end_steps_per_s']:.0f} steps/s, ratio {result['end_to_end_ratio']:.3f}",
        f"{machine['cores']} cores: {machine['cpu']}, Python {machine['python']}, {machine['date']}",
    ])
