"""The dashboard: one frame per decision step with every stage of the pipeline, and the episode card.

Layout at the reference size of 1280×720 (other sizes are drawn there and resized)::

    +--------------------------------------+------------------------+
    | 3-D chase view (the lab's camera)    | bird's-eye map: road,  |
    |  header: agent, episode, track, time | trail, plan, traffic   |
    +-----------+-----------+--------------+--+---------------------+
    | agent's   | perception| control: speed  | decision: Q-values,  |
    | input     | estimate  | vs target, steer| probabilities, mean  |
    |           | vs truth  | cmd vs measured | ± std, or the terms  |
    +-----------+-----------+-----------------+----------------------+
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Any

import cv2
import numpy as np

from drivelab.viewer import panels
from drivelab.viewer.panels import BirdsEyeMap, ChaseView, Region, text
from drivelab.viewer.probe import StepView, frames_per_decision

REFERENCE_SIZE = (1280, 720)
HISTORY_S = 10.0  # the control panel's plot spans this many seconds
LAYOUT = {
    "chase": Region(0, 0, 768, 432),
    "map": Region(768, 0, 512, 432),
    "input": Region(0, 432, 320, 288),
    "perception": Region(320, 432, 320, 288),
    "controls": Region(640, 432, 320, 288),
    "decision": Region(960, 432, 320, 288),
}
PANEL_NAMES = tuple(LAYOUT)
CARD_METRICS = (
    ("route completion", "route_completion", "{:.3f}"),
    ("lateral error RMS", "lateral_error_rms", "{:.3f} m"),
    ("off road", "off_road", "{}"),
    ("mean speed", "mean_speed", "{:.2f} m/s"),
    ("return", "return", "{:+.2f}"),
)
TRAFFIC_CARD_METRICS = (  # on the highway
    ("collision", "collision", "{}"),
    ("driving score", "driving_score", "{:.3f}"),
)


class Dashboard:
    """Draws one agent's dashboard frames.

    :param label: the agent's name in the header (e.g. ``"PPO runs/.../seed_0"``).
    :param size: ``(width, height)`` of the frames.
    :param time_panels: keep each panel's drawing time (``panel_seconds``), for ``drivelab bench watch``.
    """

    def __init__(self, label: str, size: tuple[int, int] = REFERENCE_SIZE, time_panels: bool = False) -> None:
        self.label = label
        self.size = (int(size[0]), int(size[1]))
        self.time_panels = time_panels
        self.panel_seconds = {name: 0.0 for name in PANEL_NAMES}
        self.frames_drawn = 0
        self._frame = np.empty((REFERENCE_SIZE[1], REFERENCE_SIZE[0], 3), np.uint8)
        self.chase: ChaseView | None = None
        self.map = BirdsEyeMap(LAYOUT["map"].w, LAYOUT["map"].h)
        self.base = None

    def start_episode(self, env, episode: int, episodes: int, seed: int) -> None:
        """Before an episode's first frame (after ``env.reset``): the track, the agent's features, the header."""
        base = self.base = env.unwrapped
        if self.chase is None:
            self.chase = ChaseView(LAYOUT["chase"].w, LAYOUT["chase"].h, base.vehicle_spec)
        self.chase.set_road(base.road)
        self.map.set_road(base.road)
        self.road = base.road
        self.episode, self.episodes, self.seed = episode, episodes, seed
        self.track_seed = base.track_seed
        self.observation = base.observation_mode.name
        features = getattr(base.observation_mode, "features", ())
        self.feature_scales = [f.scale for f in features]
        self.max_steer_rad = base.vehicle_spec.max_steer_rad
        self.lane_width_m = base.options.lane_width_m
        history = int(round(HISTORY_S * frames_per_decision(env) / base.decision_dt_s))  # frames in HISTORY_S
        self.trail: list[tuple[float, float]] = [(base.vehicle_state.x_m, base.vehicle_state.y_m)]
        self.speed_history: deque[float] = deque(maxlen=history)
        self.target_history: deque[float] = deque(maxlen=history)

    def draw(self, view: StepView) -> np.ndarray:
        """The frame for one decision step (a fresh array, ``(height, width, 3)`` RGB uint8)."""
        self.trail.append((view.x_m, view.y_m))
        self.speed_history.append(view.speed_mps)
        self.target_history.append(view.target_speed_mps if view.target_speed_mps is not None else math.nan)
        frame = self._frame
        trail = np.asarray(self.trail[-4000:])
        steps = (
            ("chase", lambda image: self._chase(image, view)),
            ("map", lambda image: self.map.draw(image, view, trail, self.base.vehicle_spec)),
            ("input", lambda image: panels.draw_agent_input(image, view, self.feature_scales)),
            ("perception", lambda image: panels.draw_perception(image, view, self.lane_width_m, self.observation)),
            ("controls", lambda image: panels.draw_controls(image, view, np.asarray(self.speed_history),
                                                            np.asarray(self.target_history), self.max_steer_rad)),
            ("decision", lambda image: panels.draw_decision(image, view)),
        )
        for name, draw in steps:
            if self.time_panels:
                started = time.perf_counter()
                draw(LAYOUT[name].of(frame))
                self.panel_seconds[name] += time.perf_counter() - started
            else:
                draw(LAYOUT[name].of(frame))
        self.frames_drawn += 1
        return self._sized(frame)

    def _chase(self, image: np.ndarray, view: StepView) -> None:
        self.chase.draw(image, view)
        cv2.rectangle(image, (0, 0), (image.shape[1], 30), panels.BACKGROUND, -1)
        header = (f"{self.label}   episode {self.episode + 1}/{self.episodes}   track {self.track_seed}   "
                  f"t {view.time_s:5.1f} s   step {view.step}")
        text(image, header, 10, 20, panels.TEXT, panels.NORMAL)
        if view.done:
            text(image, "episode over", 10, image.shape[0] - 14, panels.ACCENT, 0.7, 2)

    def card(self, metrics: dict[str, Any]) -> np.ndarray:
        """The episode's closing card: its metrics, and the whole track with the car's trail."""
        frame = self._frame
        subtitle = (f"episode {self.episode + 1}/{self.episodes}   reset seed {self.seed}   track {self.track_seed}   "
                    f"{metrics.get('episode_time_s', 0.0):.1f} s driven")
        rows = CARD_METRICS + (TRAFFIC_CARD_METRICS if "driving_score" in metrics else ())
        panels.card_text(frame, self.label, subtitle, rows, metrics, value_x=420)
        track = Region(760, 140, 480, 480).of(frame)
        self.map.draw_whole_track(track, np.asarray(self.trail), self.road)
        return self._sized(frame)

    def _sized(self, frame: np.ndarray) -> np.ndarray:
        return panels.sized(frame, self.size)
