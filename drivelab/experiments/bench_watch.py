"""``drivelab bench watch``: how fast the dashboard draws, panel by panel, against PyBullet's own chase view.

On one core (OpenCV's threads set to 1), in this process, interleaved in rounds:

- ``dashboard_fps``: full dashboard frames per second at the default size (1280×720), drawn from the
  recorded steps of a rule-based lap (what each stage exposed), and each panel's share of a frame;
- ``pybullet_chase_fps``: the env's own ``rgb_array`` chase view (PyBullet's TinyRenderer, 320×240),
  the reference a user would otherwise watch; ``ratio_vs_pybullet`` = dashboard / PyBullet;
- ``recording_fps``: end to end, as ``drivelab watch`` records: stepping the env and the agent, drawing,
  and encoding the mp4 (ffmpeg runs in its own process), and ``recording_realtime_factor`` against the
  env's decision rate (a factor above 1 records faster than the rollout plays).
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from typing import Any, Callable


from drivelab.experiments.bench import _Measurement, machine_description

ENV_ID = "DriveLab/LaneKeep-v0"
RECORDED_STEPS = 300


def bench_watch(seconds: float = 6.0, rounds: int = 3, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    import cv2
    import gymnasium as gym

    import drivelab  # noqa: F401
    from drivelab.agents.rule_based import RuleBasedDriver
    from drivelab.viewer.dashboard import PANEL_NAMES, REFERENCE_SIZE, Dashboard
    from drivelab.viewer.probe import EpisodeProbe

    say = progress or (lambda message: None)
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    env = gym.make(ENV_ID, render_mode="rgb_array")
    try:
        driver = RuleBasedDriver.for_env(env)
        probe = EpisodeProbe(driver, env)
        probe.reset(seed=0)
        dashboard = Dashboard("rule-based driver", REFERENCE_SIZE, time_panels=True)
        dashboard.start_episode(env, 0, 1, 0)
        say(f"recording {RECORDED_STEPS} steps of the rule-based driver ...")
        views = [probe.step() for _ in range(RECORDED_STEPS)]
        cursor = {"index": 0}

        def draw() -> None:
            dashboard.draw(views[cursor["index"] % len(views)])
            cursor["index"] += 1

        dashboard_run = _Measurement(draw)
        pybullet_run = _Measurement(env.unwrapped.render)
        with tempfile.TemporaryDirectory(prefix="drivelab-bench-watch-") as scratch:
            recording = _Recording(env, driver, os.path.join(scratch, "bench.mp4"))
            try:
                say(f"measuring the dashboard, PyBullet's chase view and recording, {rounds} rounds of {seconds / rounds:.1f} s each ...")
                for _ in range(rounds):
                    dashboard_run.run(seconds / rounds / 3)
                    pybullet_run.run(seconds / rounds / 3)
                    recording.run(seconds / rounds / 3)
            finally:
                recording.close()
        frames = dashboard.frames_drawn
        panel_ms = {name: 1000.0 * dashboard.panel_seconds[name] / frames for name in PANEL_NAMES}
    finally:
        env.close()
        cv2.setNumThreads(threads)
    dashboard_fps = dashboard_run.per_second
    pybullet_fps = pybullet_run.per_second
    decision_hz = 1.0 / env.unwrapped.decision_dt_s
    frame_ms = 1000.0 / dashboard_fps
    return {
        "machine": machine_description(),
        "threads": 1,
        "dashboard_size": list(REFERENCE_SIZE),
        "dashboard_fps": dashboard_fps,
        "panel_ms": panel_ms,
        "panel_share": {name: ms / frame_ms for name, ms in panel_ms.items()},
        "pybullet_chase_size": [env.unwrapped.options.render_width, env.unwrapped.options.render_height],
        "pybullet_chase_fps": pybullet_fps,
        "ratio_vs_pybullet": dashboard_fps / pybullet_fps,
        "recording_fps": recording.per_second,
        "recording_realtime_factor": recording.per_second / decision_hz,
        "decision_hz": decision_hz,
    }


class _Recording:
    """What ``drivelab watch`` does per frame: a decision step with the probe, the dashboard, the mp4 encoder."""

    def __init__(self, env, driver, path: str) -> None:
        from drivelab.viewer.dashboard import Dashboard
        from drivelab.viewer.probe import EpisodeProbe
        from drivelab.viewer.video import VideoFile

        self.env, self.probe = env, EpisodeProbe(driver, env)
        self.dashboard = Dashboard("rule-based driver")
        self.video = VideoFile(path, fps=1.0 / env.unwrapped.decision_dt_s)
        self.frames, self.seconds, self.episode = 0, 0.0, 0

    def run(self, seconds: float) -> None:
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            if self.probe.done:
                self.probe.reset(seed=self.episode)
                self.dashboard.start_episode(self.env, self.episode, 1, self.episode)
                self.episode += 1
            self.video.append(self.dashboard.draw(self.probe.step()))
            self.frames += 1
        self.seconds += time.perf_counter() - start

    @property
    def per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else math.nan

    def close(self) -> None:
        self.video.abort()  # the frames were only for timing


def format_watch_bench(result: dict[str, Any]) -> str:
    width, height = result["dashboard_size"]
    machine = result["machine"]
    lines = [
        f"{machine['cores']} cores: {machine['cpu']}, Python {machine['python']}, {machine['date']}",
        f"dashboard {width}x{height} on one core: {result['dashboard_fps']:.1f} frames/s "
        f"({1000 / result['dashboard_fps']:.1f} ms a frame)",
        "  per panel: " + ", ".join(f"{name} {ms:.2f} ms ({100 * result['panel_share'][name]:.0f} %)"
                                    for name, ms in result["panel_ms"].items()),
        f"PyBullet's chase view {result['pybullet_chase_size'][0]}x{result['pybullet_chase_size'][1]} (TinyRenderer): "
        f"{result['pybullet_chase_fps']:.1f} frames/s; dashboard / PyBullet = {result['ratio_vs_pybullet']:.2f}",
        f"recording (env + agent + dashboard + mp4): {result['recording_fps']:.1f} frames/s, "
        f"{result['recording_realtime_factor']:.2f}x real time at {result['decision_hz']:.0f} decisions/s",
    ]
    return "\n".join(lines)
