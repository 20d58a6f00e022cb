"""Benchmarks, each measured against a reference run in the same process.

``bench_env``: DriveLab/LaneKeep-v0 on its own, side by side with highway-env's ``highway-fast-v0``
(the peer, when the dev extra is installed, driven by seeded random actions) and with raw PyBullet
``stepSimulation`` on the same scene (the physical ceiling); and LaneKeep again with the rule-based
driver's time included. All run in this process on one core, interleaved in short rounds so that
the machine's drift from minute to minute touches each of them alike.

"On its own" means with replayed actions: the rule-based driver drives a few laps first (not timed),
and the env then replays its recorded actions. Since the env is deterministic, the replay drives
the very same laps, so the figure is the env's cost on a realistic episode (about 850 decisions a
lap), not a random agent's: random steering leaves the road within a second and would measure
resets. Every replayed episode builds its track anew, as training does (a new track each episode).

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
REPLAYED_EPISODES = 3  # laps the driver records before the timing starts (reset seeds 0, 1, 2)


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


class _Measurement:
    """Steps and wall time of one workload, accumulated over the rounds it runs in."""

    def __init__(self, step: Callable[[], None]) -> None:
        self.step, self.steps, self.seconds = step, 0, 0.0

    def run(self, seconds: float) -> None:
        """Call ``step`` until ``seconds`` of wall time have passed; checks the clock every 50 calls."""
        step, count, start = self.step, 0, time.perf_counter()
        while True:
            for _ in range(50):
                step()
            count += 50
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                self.steps += count
                self.seconds += elapsed
                return

    @property
    def per_second(self) -> float:
        return self.steps / self.seconds


def record_lap(env, driver, seed: int) -> list:
    """The actions ``driver`` takes in one episode of ``env`` from ``reset(seed=seed)``, for a replay."""
    observation, _ = env.reset(seed=seed)
    driver.reset()
    actions, done = [], False
    while not done:
        action, _ = driver.predict(observation)
        actions.append(action)
        observation, _, terminated, truncated, _ = env.step(action)
        done = terminated or truncated
    return actions


def _lanekeep_workloads(options: dict[str, Any]) -> tuple[Callable[[], None], Callable[[], None], Any, list[int], Callable[[], None]]:
    """The replayed env, the env with the driver, the env's unwrapped base, episode lengths, and a closer."""
    import gymnasium as gym

    import drivelab  # noqa: F401
    from drivelab.agents.rule_based import RuleBasedDriver

    replay_env = gym.make("DriveLab/LaneKeep-v0", action="steer", **options)
    recorder = RuleBasedDriver.for_env(replay_env)
    episodes = [(seed, record_lap(replay_env, recorder, seed)) for seed in range(REPLAYED_EPISODES)]
    base = replay_env.unwrapped
    replay = {"episode": 0, "index": 0}
    base.clear_track_cache()
    replay_env.reset(seed=episodes[0][0])

    def replay_step() -> None:
        seed, actions = episodes[replay["episode"]]
        replay_env.step(actions[replay["index"]])
        replay["index"] += 1
        if replay["index"] == len(actions):  # the recorded episode ended here, and so does the replay
            replay["episode"] = (replay["episode"] + 1) % len(episodes)
            replay["index"] = 0
            base.clear_track_cache()  # a new track each episode, as in training
            replay_env.reset(seed=episodes[replay["episode"]][0])

    driven_env = gym.make("DriveLab/LaneKeep-v0", action="steer", **options)
    driver = RuleBasedDriver.for_env(driven_env)
    driven = {"observation": driven_env.reset(seed=0)[0]}

    def driven_step() -> None:
        action, _ = driver.predict(driven["observation"])
        observation, _, terminated, truncated, _ = driven_env.step(action)
        if terminated or truncated:
            observation, _ = driven_env.reset()
            driver.reset()
        driven["observation"] = observation

    def close() -> None:
        replay_env.close()
        driven_env.close()

    return replay_step, driven_step, base, [len(actions) for _, actions in episodes], close


def _ceiling_workload(options) -> tuple[Callable[[], None], Callable[[], None]]:
    """Raw ``stepSimulation`` on LaneKeep's scene (``options``: its ``LaneKeepOptions``): the ground, a track, the car
    driving a steady circle."""
    from drivelab.envs.world import PhysicsSettings, World
    from drivelab.planning import TrackSpec, generate_track

    world = World(PhysicsSettings(physics_hz=options.physics_hz))
    road = generate_track(0, TrackSpec())
    world.set_road(road)
    x, y = road.position(0.0)
    car = world.add_vehicle(x_m=float(x), y_m=float(y), yaw_rad=float(road.heading_at(0.0)), speed_mps=options.target_speed_mps)
    car.steer(0.05)
    car.drive(0.1, 0.0)
    return world.client.stepSimulation, world.close


def _peer_workload() -> tuple[Callable[[], None], dict[str, Any], Callable[[], None]] | None:
    """highway-fast-v0 with seeded random actions; ``None`` when highway-env is not installed."""
    try:
        import gymnasium as gym
        import highway_env  # noqa: F401
    except ImportError:
        return None
    env = gym.make(PEER_ID)
    env.reset(seed=0)
    env.action_space.seed(0)

    def step() -> None:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()

    return step, env.unwrapped.config, env.close


def add_peer(workloads: dict[str, _Measurement], with_peer: bool, say: Callable[[str], None]):
    """highway-fast-v0 as the workload ``peer`` (and its ``(step, config, close)``), unless not asked for or not installed."""
    peer = _peer_workload() if with_peer else None
    if with_peer and peer is None:
        say("highway-env is not installed (pip install -e '.[dev]'): no peer figures")
    if peer is not None:
        workloads["peer"] = _Measurement(peer[0])
    return peer


def run_interleaved(workloads: dict[str, _Measurement], seconds: float, rounds: int, say: Callable[[str], None]) -> None:
    """Each workload for ``seconds`` in all, in ``rounds`` rounds taken in turn: a drift of the machine touches all alike."""
    say(f"measuring {', '.join(workloads)} for {seconds:g} s each, in {rounds} interleaved rounds ...")
    for _ in range(rounds):
        for measurement in workloads.values():
            measurement.run(seconds / rounds)


def bench_env(seconds: float = 10.0, with_peer: bool = True, rounds: int = 5,
              progress: Callable[[str], None] | None = None, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Measure LaneKeep (replayed, and with its driver), the ceiling and the peer; return the figures and ratios.

    :param seconds: wall time given to each workload, split over ``rounds`` interleaved rounds.
    :param options: LaneKeep options for its two workloads and the ceiling's scene (``ValueError`` if bad).
    """
    from drivelab.envs.lanekeep import LaneKeepOptions

    options = dict(options or {})
    scene = LaneKeepOptions.from_kwargs(options)  # bad options fail here, before anything runs
    say = progress or (lambda _message: None)
    say(f"recording {REPLAYED_EPISODES} laps of the rule-based driver to replay ...")
    replay_step, driven_step, base, episode_lengths, close_lanekeep = _lanekeep_workloads(options)
    ceiling_step, close_ceiling = _ceiling_workload(scene)
    workloads = {"lanekeep": _Measurement(replay_step), "with_driver": _Measurement(driven_step),
                 "ceiling": _Measurement(ceiling_step)}
    peer = add_peer(workloads, with_peer, say)
    try:
        run_interleaved(workloads, seconds, rounds, say)
    finally:
        close_lanekeep()
        close_ceiling()
        if peer is not None:
            peer[2]()
    decision_hz, physics_hz = base.options.decision_hz, base.options.physics_hz
    ours = workloads["lanekeep"].per_second
    with_driver = workloads["with_driver"].per_second
    ceiling_physics = workloads["ceiling"].per_second
    ceiling = ceiling_physics / (physics_hz / decision_hz)
    result: dict[str, Any] = {
        "env": "DriveLab/LaneKeep-v0",
        "options": options,
        "actions": "replayed (the rule-based driver's, recorded first)",
        "seconds_per_measurement": seconds,
        "rounds": rounds,
        "replayed_episode_lengths": episode_lengths,
        "steps_per_s": ours,
        "sim_seconds_per_s": ours / decision_hz,
        "decision_hz": decision_hz,
        "physics_hz": physics_hz,
        "ceiling_steps_per_s": ceiling,
        "ceiling_physics_steps_per_s": ceiling_physics,
        "ceiling_sim_seconds_per_s": ceiling_physics / physics_hz,
        "fraction_of_ceiling": ours / ceiling,
        "with_driver_steps_per_s": with_driver,
        "with_driver_sim_seconds_per_s": with_driver / decision_hz,
        "with_driver_fraction_of_ceiling": with_driver / ceiling,
        "peer": PEER_ID if peer else None,
        "peer_steps_per_s": None, "peer_sim_seconds_per_s": None, "peer_decision_hz": None, "peer_physics_hz": None,
        "ratio_vs_peer": None, "rtf_ratio_vs_peer": None, "with_driver_ratio_vs_peer": None,
        "machine": machine_description(),
    }
    if peer is not None:
        config = peer[1]
        peer_rate = workloads["peer"].per_second
        peer_sim = peer_rate / config["policy_frequency"]
        result.update(
            peer_steps_per_s=peer_rate, peer_sim_seconds_per_s=peer_sim,
            peer_decision_hz=config["policy_frequency"], peer_physics_hz=config["simulation_frequency"],
            ratio_vs_peer=ours / peer_rate, rtf_ratio_vs_peer=(ours / decision_hz) / peer_sim,
            with_driver_ratio_vs_peer=with_driver / peer_rate,
        )
    return result


def format_env_bench(result: dict[str, Any]) -> str:
    lines = [
        f"{'workload':<40}{'steps/s':>10}{'sim s/s':>10}{'decide Hz':>11}{'physics Hz':>12}",
        f"{'DriveLab/LaneKeep-v0 (replayed actions)':<40}{result['steps_per_s']:>10.0f}{result['sim_seconds_per_s']:>10.1f}"
        f"{result['decision_hz']:>11g}{result['physics_hz']:>12g}",
        f"{'DriveLab/LaneKeep-v0 + rule-based driver':<40}{result['with_driver_steps_per_s']:>10.0f}"
        f"{result['with_driver_sim_seconds_per_s']:>10.1f}{result['decision_hz']:>11g}{result['physics_hz']:>12g}",
    ]
    if result["peer"]:
        lines.append(
            f"{result['peer'] + ' (random actions)':<40}{result['peer_steps_per_s']:>10.1f}{result['peer_sim_seconds_per_s']:>10.1f}"
            f"{result['peer_decision_hz']:>11g}{result['peer_physics_hz']:>12g}"
        )
    lines.append(
        f"{'raw PyBullet stepSimulation':<40}{result['ceiling_steps_per_s']:>10.0f}{result['ceiling_sim_seconds_per_s']:>10.1f}"
        f"{result['decision_hz']:>11g}{result['physics_hz']:>12g}"
        f"   ({result['ceiling_physics_steps_per_s']:.0f} physics steps/s)"
    )
    if result["peer"]:
        lines.append(f"env steps/s vs {result['peer']}: {result['ratio_vs_peer']:.1f}x "
                     f"({result['with_driver_ratio_vs_peer']:.1f}x with the driver); "
                     f"simulated time vs {result['peer']}: {result['rtf_ratio_vs_peer']:.1f}x")
    lines.append(f"LaneKeep reaches {100 * result['fraction_of_ceiling']:.0f}% of the physics ceiling "
                 f"({100 * result['with_driver_fraction_of_ceiling']:.0f}% with the driver's time included)")
    lines.append(machine_line(result))
    return "\n".join(lines)


def machine_line(result: dict[str, Any]) -> str:
    """The closing line of an interleaved bench's text: the machine, the date, the time per workload."""
    machine = result["machine"]
    return (f"one core of {machine['cores']}: {machine['cpu']}, Python {machine['python']}, {machine['date']}; "
            f"{result['seconds_per_measurement']:g} s each in {result['rounds']} interleaved rounds")


def bench_train(steps: int = 20_000, algo: str = "ppo", repeats: int = 2, out: str | None = None,
                progress: Callable[[str], None] | None = None, env_id: str = "DriveLab/LaneKeep-v0",
                vec_env: str = "default", device: str = "cpu") -> dict[str, Any]:
    """``drivelab train``'s trial runner against plain stable-baselines3, interleaved.

    Both train the same algorithm with the same preset hyperparameters on the same env for the same
    number of steps. Ours runs with everything a trial carries (W&B offline with its SB3 callback
    and TensorBoard sync, TensorBoard logs, atomic checkpoints every 10,000 steps); evaluations are
    left out of both figures (they are work, not overhead). Two ratios: the learning loop alone,
    and end to end (ours: W&B start-up and finish, checkpoints and saving the model; plain: making
    the env and model, learning, saving). Each repeat runs both, plain first in even repeats and
    ours first in odd ones, so that neither always runs on a warmer machine.

    On an Atari game (``env_id`` ``ALE/...``) both use the game's preset on the ``vec_env`` backend and
    ``device``; DQN starts learning after a tenth of ``steps`` (its preset waits 100,000 steps, which would
    leave the learning loop unmeasured). The raw env throughput of both backends comes with it
    (:func:`bench_atari_envs`).
    """
    import shutil
    import tempfile

    import torch

    from drivelab.agents.factory import frame_stack, make_model, make_training_env
    from drivelab.experiments.config import parse_config, resolve_trial
    from drivelab.experiments.trial import run_trial

    from drivelab.envs.atari import is_atari

    say = progress or (lambda _message: None)
    torch.set_num_threads(1)
    atari = is_atari(env_id)
    agent: dict[str, Any] = {"name": algo, "algo": algo}
    if atari and algo == "dqn":
        agent["hyperparams"] = {"learning_starts": steps // 10}
    config = parse_config({
        "name": "bench_train", "env": {"id": env_id, "options": {"vec_env": vec_env} if atari else {}}, "agents": [agent],
        "seeds": [0], "budget_steps": steps,
        "evaluation": {"every_steps": 10 * steps, "episodes": 1},  # only the start and end evaluations
        "checkpoint_every_steps": 10_000, "tracking": {"wandb": {"mode": "offline"}, "tensorboard": True},
        "device": device,
    }, "bench")
    trial = resolve_trial(config, algo, 0)
    if atari:
        from drivelab.envs.atari import make_training_vec_env

        def make_venv():
            return make_training_vec_env(env_id, trial["n_envs"], 0, vec_env=vec_env, frame_stack=frame_stack(trial["hyperparams"]))
    else:
        def make_venv():
            return make_training_env(trial["env_id"], trial["train_env_options"], trial["action"], trial["n_envs"], 0,
                                     frame_stack=frame_stack(trial["hyperparams"]))
    workdir = Path(out) if out else Path(tempfile.mkdtemp(prefix="drivelab-bench-train-"))
    plain_rates, ours_rates, plain_totals, ours_totals = [], [], [], []
    try:
        def plain_run(repeat: int) -> None:
            say(f"[{repeat + 1}/{repeats}] plain stable-baselines3: {algo}, {steps} steps ...")
            begin_total = time.perf_counter()
            venv = make_venv()
            model = make_model(algo, venv, trial["hyperparams"], 0, device=device,
                               image_encoder="nature" if atari else "perception")
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

    result = {
        "env": env_id, "vec_env": vec_env if atari else None, "device": _device_name(device),
        "algo": algo, "steps": steps, "repeats": repeats,
        "plain_sb3_steps_per_s": mean(plain_rates), "drivelab_train_steps_per_s": mean(ours_rates),
        "ratio": mean(ours_rates) / mean(plain_rates),
        "plain_sb3_end_to_end_steps_per_s": mean(plain_totals), "drivelab_train_end_to_end_steps_per_s": mean(ours_totals),
        "end_to_end_ratio": mean(ours_totals) / mean(plain_totals),
        "plain_sb3_runs": plain_rates, "drivelab_train_runs": ours_rates,
        "machine": machine_description(),
    }
    if atari:
        say("raw env throughput of both backends ...")
        result["env_throughput"] = bench_atari_envs(env_id, trial["n_envs"])
    return result


def _device_name(device: str) -> str:
    """What ``device`` resolves to, by name: the GPU's when it is CUDA."""
    import torch

    if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return "cpu"


def bench_atari_envs(env_id: str, n_envs: int, seconds: float = 3.0) -> dict[str, Any]:
    """Env steps/s of the game's training envs on each installed backend, random actions, in turn."""
    import importlib.util

    import numpy as np

    from drivelab.envs.atari import VEC_ENVS, make_training_vec_env

    rates: dict[str, Any] = {}
    for backend in VEC_ENVS:
        if backend == "envpool" and importlib.util.find_spec("envpool") is None:
            rates[f"{backend}_steps_per_s"] = None
            continue
        venv = make_training_vec_env(env_id, n_envs, 0, vec_env=backend)
        rng = np.random.default_rng(0)
        venv.reset()
        actions = rng.integers(0, venv.action_space.n, size=(256, n_envs))
        measurement = _Measurement(lambda: venv.step(actions[measurement.steps % 256]))
        measurement.run(seconds)
        rates[f"{backend}_steps_per_s"] = measurement.per_second * n_envs
        venv.close()
    if rates.get("envpool_steps_per_s"):
        rates["envpool_ratio"] = rates["envpool_steps_per_s"] / rates["default_steps_per_s"]
    rates["n_envs"] = n_envs
    return rates


def format_train_bench(result: dict[str, Any]) -> str:
    runs = ", ".join(f"{o:.0f}/{p:.0f}" for o, p in zip(result["drivelab_train_runs"], result["plain_sb3_runs"]))
    machine = result["machine"]
    backend = f", vec_env {result['vec_env']}" if result.get("vec_env") else ""
    lines = [
        f"{result['algo']} on {result['env']}{backend}, {result['steps']} env steps, {result['repeats']} interleaved repeats, "
        f"device {result['device']}",
        f"plain stable-baselines3   {result['plain_sb3_steps_per_s']:8.0f} steps/s",
        f"drivelab train (tracked)  {result['drivelab_train_steps_per_s']:8.0f} steps/s",
        f"ratio {result['ratio']:.3f} (per repeat, ours/plain: {runs})",
        f"end to end, W&B start-up/finish, checkpoints and saving included: {result['drivelab_train_end_to_end_steps_per_s']:.0f} vs "
        f"{result['plain_sb3_end_to_end_steps_per_s']:.0f} steps/s, ratio {result['end_to_end_ratio']:.3f}",
        f"{machine['cores']} cores: {machine['cpu']}, Python {machine['python']}, {machine['date']}",
    ]
    throughput = result.get("env_throughput")
    if throughput:
        envpool = throughput.get("envpool_steps_per_s")
        lines.append(f"raw env steps/s, {throughput['n_envs']} envs, random actions: default {throughput['default_steps_per_s']:.0f}, "
                     + (f"envpool {envpool:.0f} ({throughput['envpool_ratio']:.2f}x)" if envpool else "envpool not installed"))
    return "\n".join(lines)
