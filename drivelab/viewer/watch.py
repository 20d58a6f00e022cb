"""Rollouts on the dashboard: one or several agents, episode by episode, to a video file and/or a live window.

Several agents drive the same tracks from the same seeds, each in its own env, kept at the same
simulated time: a frame per decision step of the agent that decides most often, and an agent that
decides less often (DQN's presets at 10 Hz beside 20 Hz) steps when its clock falls behind the frame's.
Their dashboards are stacked top to bottom in one frame. An agent whose episode ended first
stays on its last frame (marked "episode over") until every episode of the round has ended, so the
episodes stay in sync. Each episode ends with a card of its metrics, held for ``CARD_S`` seconds.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from drivelab.viewer.dashboard import REFERENCE_SIZE, Dashboard
from drivelab.viewer.pacing import RealTimePacer
from drivelab.viewer.probe import EpisodeProbe, frames_per_decision
from drivelab.viewer.video import LiveWindow, VideoFile, WindowClosed

CARD_S = 2.0


@dataclass
class WatchedAgent:
    """One agent on the dashboard: its name in the header, the agent, and the env it drives (as it sees it)."""

    label: str
    agent: Any
    env: Any
    episodes: list[dict[str, Any]] = field(default_factory=list)


def check_size(text: str) -> tuple[int, int]:
    """``"WxH"`` as ``(width, height)``: even numbers (H.264's colour subsampling needs them), 320×180 to 3840×2160."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size must be WIDTHxHEIGHT (for example 1280x720), got {text!r}") from None
    if not (320 <= width <= 3840 and 180 <= height <= 2160) or width % 2 or height % 2:
        raise ValueError(f"--size must be even numbers from 320x180 to 3840x2160, got {text!r}")
    return width, height


def watch(agents: list[WatchedAgent], *, episodes: int = 1, seed: int = 0, track_seed: int | None = None,
          size: tuple[int, int] = REFERENCE_SIZE, video: VideoFile | None = None, window: LiveWindow | None = None,
          speed: float = 1.0, close_at_end: bool = False, on_episode: Callable[[int, list[WatchedAgent]], None] | None = None,
          episode_wall_s: list[float] | None = None) -> list[WatchedAgent]:
    """Drive ``episodes`` episodes with every agent and send each frame to ``video`` and/or ``window``.

    Episode ``i`` uses reset seed ``seed + i`` and, when ``track_seed`` is given, track ``track_seed + i``.
    The video plays at the env's decision rate, that is at real time. A live window is paced at ``speed``
    times real time (0: as fast as it goes); it stays on the last card until a key is pressed, unless
    ``close_at_end``. Returns the agents with their ``episodes`` (metrics and return) filled in; each
    episode's wall time, from its first step to its last frame (the card not included), is appended to
    ``episode_wall_s`` when one is given.
    """
    viewers = [_viewer(agent, size) for agent in agents]
    probes = [probe for probe, _ in viewers]
    dashboards = [dashboard for _, dashboard in viewers]
    periods = [decision_period_s(agent.env) for agent in agents]
    queued: list[deque] = [deque() for _ in agents]  # the frames of a decision drawn at its control steps
    period_s = frame_period_s(agents)
    pacer = RealTimePacer(period_s, speed)
    card_frames = int(round(CARD_S / period_s))
    try:
        for episode in range(episodes):
            episode_seed = seed + episode
            episode_track = None if track_seed is None else track_seed + episode
            for probe, dashboard, agent in zip(probes, dashboards, agents):
                probe.reset(episode_seed, episode_track)
                dashboard.start_episode(agent.env, episode, episodes, episode_seed)
            last = [None] * len(agents)
            pacer.start()
            started = time.monotonic()
            frames_shown = 0
            while not all(probe.done and not queue for probe, queue in zip(probes, queued)):
                frames_shown += 1
                clock_s = frames_shown * period_s  # simulated time at this frame, the same for every agent
                for index, (probe, dashboard) in enumerate(zip(probes, dashboards)):
                    view, queue = None, queued[index]
                    # An agent that decides less often steps only when its clock falls behind the frame's.
                    while not queue and not probe.done and probe.steps * periods[index] < clock_s - 1e-9:
                        views = probe.step_views()
                        view = views[-1]
                        if len(views) > 1:  # drawn one control step a frame
                            queue.extend(views[1:])
                            view = views[0]
                            break
                    if view is None and queue:
                        view = queue.popleft()
                    if view is not None:
                        last[index] = dashboard.draw(view)
                frame = _stack(last)
                if video is not None:
                    video.append(frame)
                if window is not None:
                    window.show(frame)
                    pacer.wait()
            if episode_wall_s is not None:
                episode_wall_s.append(time.monotonic() - started)
            for probe, agent in zip(probes, agents):
                agent.episodes.append({"seed": episode_seed, "return": probe.episode_return, "steps": probe.steps,
                                       **probe.episode_metrics()})
            card = _stack([dashboard.card(agent.episodes[-1]) for dashboard, agent in zip(dashboards, agents)])
            if video is not None:
                for _ in range(card_frames):
                    video.append(card)
            if window is not None:
                window.show(card)
                if episode == episodes - 1:
                    if not close_at_end:
                        window.wait_for_key()
                else:
                    pacer.start()
                    for _ in range(card_frames):
                        pacer.wait()
                    window.show(card)
            if on_episode is not None:
                on_episode(episode, agents)
    except WindowClosed:
        pass
    return agents


def frame_period_s(agents: list[WatchedAgent]) -> float:
    """One frame per decision step of the agent that decides most often, or per control step of an env that hands
    them over (the video plays at real time)."""
    return min(decision_period_s(agent.env) / _frames_per_decision(agent.env) for agent in agents)


def _frames_per_decision(env) -> int:
    from drivelab.envs.atari import AtariGame

    return 1 if isinstance(env, AtariGame) else frames_per_decision(env)


def decision_period_s(env) -> float:
    """Simulated (or game) time between two decisions in ``env``: a driving world's or an Atari game's."""
    from drivelab.envs.atari import AtariGame

    return env.decision_dt_s if isinstance(env, AtariGame) else env.unwrapped.decision_dt_s


def _viewer(agent: WatchedAgent, size: tuple[int, int]):
    """The probe that steps ``agent``'s env and the dashboard that draws it: a driving world's, or a game's."""
    from drivelab.envs.atari import AtariGame

    if isinstance(agent.env, AtariGame):
        from drivelab.viewer.atari import GameDashboard, GameProbe

        return GameProbe(agent.agent, agent.env), GameDashboard(agent.label, size)
    return EpisodeProbe(agent.agent, agent.env), Dashboard(agent.label, size)


def _stack(frames: list[np.ndarray]) -> np.ndarray:
    return frames[0] if len(frames) == 1 else np.vstack(frames)


def record_episode(agent: Any, env, path, *, label: str, seed: int, track_seed: int | None = None,
                   size: tuple[int, int] = REFERENCE_SIZE) -> dict[str, Any]:
    """One episode of ``agent`` on the dashboard, written to the video ``path`` (mp4 or gif), card included.

    Used for the videos a trial records during training. Returns the episode's metrics and return.
    """
    fps = 1.0 / frame_period_s([WatchedAgent(label, agent, env)])
    with VideoFile(path, fps) as video:
        watched = watch([WatchedAgent(label, agent, env)], episodes=1, seed=seed, track_seed=track_seed, size=size,
                        video=video)
    return watched[0].episodes[0]
