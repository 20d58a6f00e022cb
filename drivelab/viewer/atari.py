"""Atari games on the dashboard: the console's screen, the agent's stacked input, its decision and the score.

The game is played as the standard protocol evaluates it (:class:`drivelab.envs.atari.AtariGame`: raw
score, to game over), and the actions are drawn as evaluation draws them (``deterministic=False``, as
rl-baselines3-zoo plays Atari), from the same forward pass whose probabilities or Q-values are drawn.
Layout at the reference size of 1280×720 (other sizes are drawn there and resized)::

    +--------------------+---------------------------------------------+
    | header: agent, game, episode, frame, time                        |
    +--------------------+---------------------------------------------+
    | the console's      | agent input: the 4 stacked 84×84 frames     |
    | screen, 3×         +---------------------------------------------+
    |                    | decision: probabilities or Q-values, by name |
    |                    +---------------------------------------------+
    |                    | score: raw and human-normalised, lives, plot |
    +--------------------+---------------------------------------------+
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from drivelab.agents.decisions import Decision, decide
from drivelab.envs.atari import ATARI_FRAMES_PER_S, AtariGame, human_normalized_score
from drivelab.viewer import panels
from drivelab.viewer.dashboard import REFERENCE_SIZE
from drivelab.viewer.panels import Region, text

HEADER = Region(0, 0, 1280, 30)
GAME_LAYOUT = {
    "game": Region(0, 30, 560, 690),
    "input": Region(560, 30, 720, 210),
    "decision": Region(560, 240, 720, 290),
    "score": Region(560, 530, 720, 190),
}
GAME_PANEL_NAMES = tuple(GAME_LAYOUT)
SCREEN_SCALE = 3
GAME_CARD_METRICS = (
    ("score", "score", "{:.0f}"),
    ("human-normalised", "human_normalized_score", "{:.3f}"),
    ("frames played", "frames", "{:,}"),
    ("cut by the frame cap", "truncated", "{}"),
)


@dataclass
class GameView:
    """One decision step of a game, as the dashboard draws it.

    :param screen: the console's screen after the step, ``(210, 160, 3)`` RGB.
    :param stack: the stacked frames the agent decided on, ``(84, 84, frames)`` uint8, oldest first.
    :param decision: what the agent chose and why; ``action_labels``: the game's action names.
    :param score: the raw score so far (unclipped rewards); ``reward``: this step's.
    """

    step: int
    frames: int
    time_s: float
    screen: np.ndarray
    stack: np.ndarray
    decision: Decision
    action_labels: list[str]
    reward: float
    score: float
    lives: int | None
    done: bool = False
    info: dict[str, Any] = field(default_factory=dict)


class GameProbe:
    """Plays one game with one agent, a decision at a time, and reads what each step showed and chose.

    :param agent: an SB3 model trained on the game, or anything with ``predict`` (the random agent).
    :param game: the game (:class:`~drivelab.envs.atari.AtariGame`).
    """

    def __init__(self, agent: Any, game: AtariGame) -> None:
        self.agent, self.game = agent, game
        self.done = True
        self.steps = 0
        self.score = 0.0
        self.episode_return = 0.0
        self.last_info: dict[str, Any] = {}
        self._metrics: dict[str, Any] = {}

    def reset(self, seed: int, track_seed: int | None = None) -> None:
        if track_seed is not None:
            raise ValueError("an Atari game has no tracks: give no track seed")
        self.observation = self.game.reset(seed)
        self.sample = np.random.default_rng(seed)  # the actions' draws, reproducible from the reset seed
        self.steps, self.score, self.done = 0, 0.0, False
        self.lives: int | None = None
        self.screen = self.game.screen()

    def step(self) -> GameView:
        if self.done:
            raise RuntimeError("GameProbe.step: the game is over; call reset()")
        stack = np.asarray(self.observation[0])
        decision = decide(self.agent, self.observation, self.sample)
        action = int(np.asarray(decision.action).reshape(-1)[0])
        self.observation, reward, done, info = self.game.step(action)
        self.steps += 1
        self.score += reward
        self.episode_return = self.score
        lives = info.get("lives")
        if lives is not None and (lives > 0 or self.lives is not None):  # Pong and Enduro have no lives: always 0
            self.lives = int(lives)
        # At game over the VecEnv has already started the next game: keep the last screen of this one.
        if not done:
            self.screen = self.game.screen()
        self.done = done
        self.last_info = info
        frames = int(info.get("episode_frame_number", self.steps * self.game.decision_dt_s * ATARI_FRAMES_PER_S))
        if done:
            frames = int(info.get("episode", {}).get("l", frames))  # Monitor's count, as evaluate_game reads it
            self._metrics = {"score": self.score, "human_normalized_score": human_normalized_score(self.game.env_id, self.score),
                             "frames": frames,
                             "truncated": bool(info.get("TimeLimit.truncated", False)) or frames >= self.game.max_frames}
        return GameView(step=self.steps, frames=frames, time_s=frames / ATARI_FRAMES_PER_S, screen=self.screen, stack=stack,
                        decision=decision, action_labels=self.game.action_names, reward=reward, score=self.score,
                        lives=self.lives, done=done, info=info)

    def step_views(self) -> list[GameView]:
        """One decision's frames: a game is drawn once per decision (every 4 of the console's frames)."""
        return [self.step()]

    def episode_metrics(self) -> dict[str, Any]:
        """The finished game's figures, as an evaluation records them (``score``, ``human_normalized_score``, ...)."""
        return dict(self._metrics)


class GameDashboard:
    """Draws one agent's frames of an Atari game, and the game's closing card.

    :param label: the agent's name in the header.
    :param size: ``(width, height)`` of the frames.
    """

    def __init__(self, label: str, size: tuple[int, int] = REFERENCE_SIZE) -> None:
        self.label = label
        self.size = (int(size[0]), int(size[1]))
        self._frame = np.empty((REFERENCE_SIZE[1], REFERENCE_SIZE[0], 3), np.uint8)
        self.frames_drawn = 0

    def start_episode(self, game: AtariGame, episode: int, episodes: int, seed: int) -> None:
        """Before a game's first frame (after its reset)."""
        self.game, self.episode, self.episodes, self.seed = game, episode, episodes, seed
        self.scores: list[float] = [0.0]
        self.last_screen = game.screen()

    def draw(self, view: GameView) -> np.ndarray:
        """The frame for one decision step (a fresh array, ``(height, width, 3)`` RGB uint8)."""
        frame = self._frame
        self.scores.append(view.score)
        self.last_screen = view.screen
        self._header(HEADER.of(frame), view)
        self._screen(GAME_LAYOUT["game"].of(frame), view.screen, view.done)
        self._input(GAME_LAYOUT["input"].of(frame), view.stack)
        panels.draw_decision(GAME_LAYOUT["decision"].of(frame), view)
        self._score(GAME_LAYOUT["score"].of(frame), view)
        self.frames_drawn += 1
        return panels.sized(frame, self.size)

    def _header(self, image: np.ndarray, view: GameView) -> None:
        image[:] = panels.BACKGROUND
        game = self.game.env_id.removeprefix("ALE/")
        text(image, f"{self.label}   {game}   game {self.episode + 1}/{self.episodes}   reset seed {self.seed}   "
                    f"t {view.time_s:6.1f} s   frame {view.frames:,}   step {view.step}", 10, 20, panels.TEXT, panels.NORMAL)

    def _screen(self, image: np.ndarray, screen: np.ndarray, done: bool) -> None:
        panels.panel_frame(image, "the game (the console's screen, in colour)")
        h, w = screen.shape[0] * SCREEN_SCALE, screen.shape[1] * SCREEN_SCALE
        top, left = 36, (image.shape[1] - w) // 2
        image[top:top + h, left:left + w] = cv2.resize(screen, (w, h), interpolation=cv2.INTER_NEAREST)
        if done:
            text(image, "game over", left + 10, top + h - 14, panels.ACCENT, 0.8, 2)

    def _input(self, image: np.ndarray, stack: np.ndarray) -> None:
        frames = stack.shape[-1]
        panels.panel_frame(image, f"agent input: {frames} stacked {stack.shape[1]}x{stack.shape[0]} greyscale frames (oldest first)")
        side = min(image.shape[0] - 34, (image.shape[1] - 16 - 8 * (frames - 1)) // frames)
        for k in range(frames):
            grey = cv2.resize(np.ascontiguousarray(stack[..., k]), (side, side), interpolation=cv2.INTER_NEAREST)
            x = 8 + k * (side + 8)
            image[28:28 + side, x:x + side] = grey[..., None]

    def _score(self, image: np.ndarray, view: GameView) -> None:
        h, w = image.shape[:2]
        panels.panel_frame(image, "score (raw, as the game counts it)")
        normalised = human_normalized_score(self.game.env_id, view.score)
        lives = "" if view.lives is None else f"   lives {view.lives}"
        text(image, f"score {view.score:.0f}   human-normalised {normalised:+.3f}{lives}", 8, 44, panels.TEXT, 0.6, 1)
        reward = f"reward {view.reward:+.0f} this step" if view.reward else ""
        text(image, reward, w - 190, 44, panels.ACCENT, panels.SMALL)
        top, bottom = 56, h - 8
        scores = np.asarray(self.scores)
        cv2.rectangle(image, (8, top), (w - 8, bottom), panels.BORDER, 1)
        low, high = min(0.0, float(scores.min())), max(1.0, float(scores.max()))
        xs = 9 + np.arange(len(scores)) * (w - 18) / max(len(scores) - 1, 1)
        ys = bottom - 2 - (scores - low) / (high - low) * (bottom - top - 4)
        if low < 0:
            zero = int(round(bottom - 2 - (0 - low) / (high - low) * (bottom - top - 4)))
            cv2.line(image, (9, zero), (w - 9, zero), panels.DIM, 1)
        cv2.polylines(image, [np.round(np.column_stack([xs, ys])).astype(np.int32)], False, panels.ACCENT, 1, cv2.LINE_AA)

    def card(self, metrics: dict[str, Any]) -> np.ndarray:
        """The game's closing card: its figures, and its last screen."""
        frame = self._frame
        subtitle = (f"{self.game.env_id}   game {self.episode + 1}/{self.episodes}   reset seed {self.seed}   "
                    f"{metrics.get('frames', 0) / ATARI_FRAMES_PER_S / 60:.1f} min of play")
        panels.card_text(frame, self.label, subtitle, GAME_CARD_METRICS, metrics, value_x=500)
        screen = self.last_screen
        h, w = screen.shape[0] * 2, screen.shape[1] * 2
        frame[150:150 + h, 860:860 + w] = cv2.resize(screen, (w, h), interpolation=cv2.INTER_NEAREST)
        return panels.sized(frame, self.size)
