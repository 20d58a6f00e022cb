"""``drivelab bench perception``: the camera, the perception CNN, and perception's cost in the loop.

Three measurements, each beside its reference in this process:

- the fast camera (:mod:`drivelab.envs.camera`) against PyBullet's renderer of the same view, on
  LaneKeep's scene, interleaved in rounds (``camera_fps``, ``pybullet_camera_fps``, ``camera_ratio``);
- the CNN's batched inference, images per second, on the CPU and on CUDA when present;
- LaneKeep's env steps per second with ``"perceived"`` beside ``"state"``, replaying the rule-based
  driver's recorded actions in both (the estimate does not steer, so both drive the same laps).

Without ``--model`` the CNN is the default architecture with untrained weights: its speed does not
depend on what it learned.
"""

from __future__ import annotations

import tempfile
from typing import Any, Callable

import numpy as np

from drivelab.experiments.bench import _Measurement, machine_description, record_lap

ENV_ID = "DriveLab/LaneKeep-v0"


def bench_camera(seconds: float = 6.0, rounds: int = 3, size: tuple[int, int] = (84, 84)) -> dict[str, Any]:
    """Frames per second of the fast camera and of PyBullet's renderer, same view, interleaved."""
    import gymnasium as gym

    import drivelab  # noqa: F401

    width, height = size
    envs = {renderer: gym.make(ENV_ID, observation="camera", camera_renderer=renderer, camera_width=width,
                               camera_height=height) for renderer in ("opencv", "pybullet")}
    measurements = {renderer: _Measurement(env.unwrapped.camera_image) for renderer, env in envs.items()}
    try:
        for env in envs.values():
            env.reset(seed=0)
            for _ in range(40):  # into the first bend, so the view is not a straight road
                env.step(np.array([0.05], dtype=np.float32))
        for _ in range(rounds):
            for measurement in measurements.values():
                measurement.run(seconds / rounds)
        renderer_id = envs["pybullet"].unwrapped.world.camera_renderer()
        pybullet_renderer = "TinyRenderer (CPU)" if renderer_id == envs["pybullet"].unwrapped.world._p.ER_TINY_RENDERER \
            else "OpenGL through EGL"
    finally:
        for env in envs.values():
            env.close()
    fast, reference = (measurements[r].per_second for r in ("opencv", "pybullet"))
    return {"camera_size": [width, height], "camera_fps": fast, "pybullet_camera_fps": reference,
            "camera_ratio": fast / reference, "pybullet_renderer": pybullet_renderer}


def bench_inference(model_dir: str | None, seconds: float = 6.0, batch_size: int = 256) -> dict[str, Any]:
    """Batched images/s of the perception CNN on the CPU, and on CUDA when present."""
    import torch

    from drivelab.perception.model import Perceiver

    result: dict[str, Any] = {"batch_size": batch_size}
    for device in ("cpu", "cuda"):
        key = f"{device}_images_per_s"
        if device == "cuda" and not torch.cuda.is_available():
            result[key] = None
            continue
        perceiver = Perceiver(model_dir, device=device)
        images = np.random.default_rng(0).integers(0, 256, size=(batch_size, *perceiver.image_shape), dtype=np.uint8)
        perceiver.estimate(images)  # warm-up (cuDNN autotuning, allocator)
        measurement = _Measurement(lambda: perceiver.estimate(images))
        measurement.run(seconds / 10)
        result[key] = measurement.per_second * batch_size
        if device == "cuda":
            result["cuda_device"] = torch.cuda.get_device_name(0)
    return result


def bench_perceived_env(model_dir: str, seconds: float = 6.0, rounds: int = 3) -> dict[str, Any]:
    """Env steps/s on ``"state"`` and on ``"perceived"``, replaying the same recorded laps."""
    import gymnasium as gym

    import drivelab  # noqa: F401
    from drivelab.agents.rule_based import RuleBasedDriver

    recorder = gym.make(ENV_ID)
    actions = record_lap(recorder, RuleBasedDriver.for_env(recorder), seed=0)
    recorder.close()
    envs = {"state": gym.make(ENV_ID), "perceived": gym.make(ENV_ID, observation="perceived", perception_model=model_dir)}
    positions = {mode: len(actions) for mode in envs}

    def stepper(mode: str) -> Callable[[], None]:
        env = envs[mode]

        def step() -> None:
            if positions[mode] == len(actions):
                env.reset(seed=0)
                positions[mode] = 0
            env.step(actions[positions[mode]])
            positions[mode] += 1

        return step

    measurements = {mode: _Measurement(stepper(mode)) for mode in envs}
    try:
        for _ in range(rounds):
            for measurement in measurements.values():
                measurement.run(seconds / rounds)
    finally:
        for env in envs.values():
            env.close()
    state, perceived = (measurements[m].per_second for m in ("state", "perceived"))
    return {"state_steps_per_s": state, "perceived_steps_per_s": perceived, "perceived_cost_ratio": state / perceived}


def bench_perception(model_dir: str | None = None, seconds: float = 6.0,
                     progress: Callable[[str], None] | None = None, cnn_only: bool = False,
                     batch_size: int = 256) -> dict[str, Any]:
    """All three measurements; an untrained default model stands in when ``model_dir`` is None.

    ``cnn_only``: the CNN's inference alone, which needs neither PyBullet nor the env (a GPU machine
    without the simulator installed, say).
    """
    say = progress or (lambda _message: None)
    result: dict[str, Any] = {}
    if not cnn_only:
        say("camera: the fast renderer against PyBullet's, same view ...")
        result.update(bench_camera(seconds))
    with tempfile.TemporaryDirectory(prefix="drivelab-bench-") as scratch:
        if model_dir is None:
            from drivelab.perception.model import save_untrained_model

            model_dir = str(save_untrained_model(scratch, image_shape=(84, 84, 3)))
            result["model"] = "default architecture, untrained weights"
        else:
            result["model"] = str(model_dir)
        say("perception CNN: batched inference ...")
        result.update(bench_inference(model_dir, seconds, batch_size=batch_size))
        if not cnn_only:
            say("env steps/s on 'state' and 'perceived' (replayed laps) ...")
            result.update(bench_perceived_env(model_dir, seconds))
    result["machine"] = machine_description()
    return result


def format_perception_bench(result: dict[str, Any]) -> str:
    lines = []
    if "camera_size" in result:
        width, height = result["camera_size"]
        lines.append(f"camera {width}x{height}: {result['camera_fps']:.0f} frames/s (ours) vs {result['pybullet_camera_fps']:.0f} "
                     f"({result['pybullet_renderer']}): {result['camera_ratio']:.1f}x")
    lines += [
        f"perception CNN ({result['model']}), batches of {result['batch_size']}: "
        f"{result['cpu_images_per_s']:.0f} images/s on the CPU"
        + (f", {result['cuda_images_per_s']:.0f} on {result['cuda_device']}" if result.get("cuda_images_per_s") else
           ", no CUDA here"),
    ]
    if "state_steps_per_s" in result:
        lines.append(f"LaneKeep env steps/s: {result['state_steps_per_s']:.0f} on 'state', {result['perceived_steps_per_s']:.0f} on "
                     f"'perceived' (perception costs {result['perceived_cost_ratio']:.1f}x)")
    machine = result["machine"]
    lines.append(f"{machine['cores']} cores: {machine['cpu']}, Python {machine['python']}, {machine['date']}")
    return "\n".join(lines)
