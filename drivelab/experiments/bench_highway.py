"""``drivelab bench env --env DriveLab/Highway-v0``: the highway env beside highway-env's ``highway-fast-v0``.

Both run in this process on one core, interleaved in short rounds, with the same number of other
vehicles (highway-fast-v0 has 20; ours gets ``--vehicles``, 20 by default). The peer steps with seeded
random actions, and so does our ``"meta"`` mode (the same five meta-actions). Each action mode runs at
its own decision rate: ``"meta"`` at 1 Hz, as highway-fast-v0's agent decides, and ``"steer"`` and
``"direct"`` at 20 Hz, steered by a proportional law on the observation (random steering leaves the
road within a second and would measure resets).

The fair figure is simulated time per wall second: a meta-action step covers a whole second of 100 Hz
physics and 20 Hz control, a highway-fast-v0 step a second of its 5 Hz kinematic model.
"""

from __future__ import annotations

from typing import Any, Callable

from drivelab.experiments.bench import PEER_ID, _Measurement, add_peer, machine_description, machine_line, run_interleaved

HIGHWAY_ID = "DriveLab/Highway-v0"
ROAD_LENGTH_M = 2000.0


def _highway_workload(action: str, vehicles: int, seed: int = 0) -> tuple[Callable[[], None], Any, Callable[[], None]]:
    """One highway env stepped in ``action`` mode: its step, its base env, and a closer."""
    import gymnasium as gym
    import numpy as np

    import drivelab  # noqa: F401

    env = gym.make(HIGHWAY_ID, action=action, density_per_km=vehicles / (ROAD_LENGTH_M / 1000.0), road_length_m=ROAD_LENGTH_M)
    base = env.unwrapped
    observation, _ = env.reset(seed=seed)
    names = base.observation_features
    offset, heading = names.index("lane_offset_m"), names.index("heading_error_rad")
    rng = np.random.default_rng(seed)
    state = {"observation": observation}

    def action_now():
        if action == "meta":
            return int(rng.integers(5))
        o = state["observation"]
        steer = float(np.clip(-0.4 * o[offset] - 1.5 * o[heading], -1.0, 1.0))
        return np.array([steer] if action == "steer" else [steer, 0.25, 0.0], dtype=np.float32)

    def step() -> None:
        observation, _, terminated, truncated, _ = env.step(action_now())
        if terminated or truncated:
            observation, _ = env.reset()
        state["observation"] = observation

    return step, base, env.close


def bench_highway(seconds: float = 10.0, rounds: int = 5, vehicles: int = 20, with_peer: bool = True,
                  progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Env steps/s and simulated seconds per second of the highway env in each action mode, and of the peer."""
    say = progress or (lambda _message: None)
    modes = ("meta", "steer", "direct")
    built = {mode: _highway_workload(mode, vehicles) for mode in modes}
    workloads = {mode: _Measurement(step) for mode, (step, _, _) in built.items()}
    peer = add_peer(workloads, with_peer, say)
    try:
        run_interleaved(workloads, seconds, rounds, say)
    finally:
        for _, _, close in built.values():
            close()
        if peer is not None:
            peer[2]()
    result: dict[str, Any] = {"env": HIGHWAY_ID, "vehicles": built["meta"][1].traffic.count,
                              "seconds_per_measurement": seconds, "rounds": rounds, "modes": {}}
    for mode in modes:
        base = built[mode][1]
        rate = workloads[mode].per_second
        result["modes"][mode] = {"steps_per_s": rate, "decision_hz": 1.0 / base.decision_dt_s,
                                 "sim_seconds_per_s": rate * base.decision_dt_s, "control_hz": base.options.control_hz,
                                 "physics_hz": base.options.physics_hz}
    meta = result["modes"]["meta"]
    result.update(steps_per_s=meta["steps_per_s"], sim_seconds_per_s=meta["sim_seconds_per_s"], peer=None,
                  peer_vehicles=None, peer_steps_per_s=None, peer_sim_seconds_per_s=None, ratio_vs_peer=None,
                  rtf_ratio_vs_peer=None, machine=machine_description())
    if peer is not None:
        config = peer[1]
        peer_rate = workloads["peer"].per_second
        peer_sim = peer_rate / config["policy_frequency"]
        result.update(peer=PEER_ID, peer_vehicles=config["vehicles_count"], peer_steps_per_s=peer_rate,
                      peer_sim_seconds_per_s=peer_sim, peer_decision_hz=config["policy_frequency"],
                      peer_physics_hz=config["simulation_frequency"], ratio_vs_peer=meta["steps_per_s"] / peer_rate,
                      rtf_ratio_vs_peer=meta["sim_seconds_per_s"] / peer_sim)
    return result


def format_highway_bench(result: dict[str, Any]) -> str:
    lines = [f"{'workload':<44}{'steps/s':>10}{'sim s/s':>10}{'decide Hz':>11}{'physics Hz':>12}"]
    for mode, figures in result["modes"].items():
        how = "random meta-actions" if mode == "meta" else "a proportional steering law"
        lines.append(f"{f'{HIGHWAY_ID} {mode} ({how})':<44}{figures['steps_per_s']:>10.1f}{figures['sim_seconds_per_s']:>10.1f}"
                     f"{figures['decision_hz']:>11g}{figures['physics_hz']:>12g}")
    if result["peer"]:
        lines.append(f"{result['peer'] + ' (random actions)':<44}{result['peer_steps_per_s']:>10.1f}"
                     f"{result['peer_sim_seconds_per_s']:>10.1f}{result['peer_decision_hz']:>11g}{result['peer_physics_hz']:>12g}")
        lines.append(f"meta-actions vs {result['peer']}, {result['vehicles']} vehicles against {result['peer_vehicles']}: "
                     f"{result['ratio_vs_peer']:.1f}x its env steps/s, {result['rtf_ratio_vs_peer']:.1f}x its simulated time")
    lines.append(machine_line(result))
    return "\n".join(lines)


def check_vehicles(vehicles: int) -> int:
    if not 0 <= vehicles <= 200:
        raise ValueError(f"--vehicles must be an integer in 0..200, got {vehicles}")
    return vehicles
