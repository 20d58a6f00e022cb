"""Agents that learn from pixels: the perception CNN as stable-baselines3's features extractor, and
frame stacking that an agent sees identically in training and in evaluation.

The camera gives one uint8 image ``(H, W, 3)`` per decision. A still image says where the car is,
not where it is going, so a pixel agent sees its last ``frame_stack`` images at once:

- in training, SB3's ``VecFrameStack`` stacks them on the channel axis, oldest first, into
  ``(H, W, 3·n)``; SB3 then transposes that to ``(3·n, H, W)`` and divides by 255 for the policy;
- in evaluation and in ``drivelab drive``, one env gives one image at a time: :class:`FrameStackingAgent`
  keeps the stack on the agent's side with SB3's own ``StackedObservations`` (the class
  ``VecFrameStack`` uses), so the policy gets the same array, and the env, and everything that
  watches it, still sees the camera's own image. Stacking is the agent's memory, like a recurrent
  policy's state: it is cleared by ``reset()`` at the start of each episode.

Initialising from a trained perception model (:func:`initialise_from_perception_model`) copies its
backbone into the policy's extractor and spreads the first convolution's weights over the stacked
frames: each frame's slice gets the trained weights divided by the number of frames, so a still
scene (every frame the same) gives exactly the trained features.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.preprocessing import is_image_space, is_image_space_channels_first
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.vec_env.stacked_observations import StackedObservations

from drivelab.perception.model import (DEFAULT_CHANNELS, DEFAULT_FEATURES_DIM, PerceptionBackbone, PerceptionCNN,
                                       load_perception_model, read_metadata)

# Colour channels of one camera image.
IMAGE_CHANNELS = 3
FIRST_CONVOLUTION = "convolutions.0.weight"


class PerceptionFeaturesExtractor(BaseFeaturesExtractor):
    """:class:`~drivelab.perception.model.PerceptionBackbone` on a stack of camera images.

    :param observation_space: the policy's observation space: uint8 ``(3·frames, H, W)``, channels
        first, as SB3 hands a CNN policy a channels-last image env (``VecTransposeImage``).
    :param features_dim: size of the feature vector (the backbone's last layer).
    :param channels: output channels of the backbone's stride-2 convolutions.
    """

    def __init__(self, observation_space: gym.spaces.Box, features_dim: int = DEFAULT_FEATURES_DIM,
                 channels: Sequence[int] = DEFAULT_CHANNELS) -> None:
        if not (is_image_space(observation_space) and is_image_space_channels_first(observation_space)):
            raise ValueError(f"PerceptionFeaturesExtractor takes channels-first uint8 images (3·frames, H, W), "
                             f"got {observation_space}")
        depth, height, width = observation_space.shape
        if depth % IMAGE_CHANNELS:
            raise ValueError(f"the stacked image has {depth} channels, not a multiple of {IMAGE_CHANNELS} (RGB frames)")
        super().__init__(observation_space, int(features_dim))
        self.frames = depth // IMAGE_CHANNELS
        self.frame_shape = (int(height), int(width), IMAGE_CHANNELS)
        self.backbone = PerceptionBackbone((height, width, depth), channels, features_dim)
        # SB3's orthogonal initialisation (PPO's ortho_init) views each weight as a matrix, which needs the
        # standard memory layout, not the channels-last one the perception model trains in.
        self.backbone.convolutions.to(memory_format=torch.contiguous_format)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.backbone(observations)

    def train(self, mode: bool = True) -> "PerceptionFeaturesExtractor":
        """Train or evaluate, with BatchNorm always evaluating: its statistics stay fixed (the trained
        model's, or the identity for a fresh one) and its scale and shift learn.

        Why: SB3 collects rollouts in evaluation mode and trains in training mode. With batch statistics in
        training, the policy that PPO scores is not the one that acted, and the gap grows as the running
        statistics drift; two of three PPO-from-pixels seeds collapsed after reaching full laps (route
        completion 0.93 → 0.03 between 50,000 and 100,000 steps, and 1.00 → 0.21 by 50,000).
        """
        super().train(mode)
        for module in self.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.eval()
        return self

    def initialise_from(self, perception: PerceptionCNN) -> None:
        """Copy ``perception``'s backbone (BatchNorm statistics included), the first convolution's
        weights spread over the frames (each frame's slice: the trained weights / frames).

        :raises ValueError: (one line) when the architectures or the image sizes differ.
        """
        if tuple(perception.image_shape) != self.frame_shape:
            raise ValueError(f"the perception model was trained on {perception.image_shape[0]}x{perception.image_shape[1]} "
                             f"images, the agent sees {self.frame_shape[0]}x{self.frame_shape[1]}")
        state = {key: value.detach().clone() for key, value in perception.backbone.state_dict().items()}
        first = state[FIRST_CONVOLUTION]
        # The stack's channels are frame-major (frame k's R, G, B at 3k, 3k+1, 3k+2), so repeating the
        # trained kernel along the channel axis gives each frame its own copy.
        state[FIRST_CONVOLUTION] = first.repeat(1, self.frames, 1, 1) / self.frames
        own = self.backbone.state_dict()
        mismatched = [key for key in own if key not in state or own[key].shape != state[key].shape]
        if mismatched or len(state) != len(own):
            raise ValueError(f"the perception model's backbone does not match the agent's extractor "
                             f"({mismatched[0] if mismatched else 'different layers'}); take the extractor's "
                             f"architecture from the model (perception_extractor_kwargs)")
        self.backbone.load_state_dict(state)


def perception_extractor_kwargs(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The extractor's architecture arguments of a trained perception model (from its ``perception.json``)."""
    args = read_metadata(run_dir)["architecture"]["args"]
    return {"channels": [int(c) for c in args["channels"]], "features_dim": int(args["features_dim"])}


def initialise_from_perception_model(policy: torch.nn.Module, run_dir: str | os.PathLike) -> int:
    """Initialise every :class:`PerceptionFeaturesExtractor` of ``policy`` (PPO's one or two, DQN's
    online and target networks) from the perception model in ``run_dir``.

    The weights are read with ``torch.load(weights_only=True)`` (:func:`load_perception_model`).
    :return: the number of extractors initialised.
    :raises PerceptionModelError, ValueError: (one line) an unreadable model, or one that does not fit.
    """
    extractors = [module for module in policy.modules() if isinstance(module, PerceptionFeaturesExtractor)]
    if not extractors:
        raise ValueError("the policy has no PerceptionFeaturesExtractor to initialise from a perception model")
    perception, _ = load_perception_model(run_dir, "cpu", image_shape=extractors[0].frame_shape)
    for extractor in extractors:
        extractor.initialise_from(perception)
    return len(extractors)


def single_frame_space(stacked_space: gym.spaces.Box, frames: int) -> gym.spaces.Box:
    """The space of one observation, from a model's stacked observation space.

    An image env's stack is transposed to channels first by SB3 (``(3·n, H, W)``): one frame is
    ``(H, W, 3)``. Any other stack is ``VecFrameStack``'s, along the last axis.
    """
    if is_image_space(stacked_space) and is_image_space_channels_first(stacked_space):
        depth, height, width = stacked_space.shape
        return gym.spaces.Box(0, 255, (height, width, depth // frames), dtype=np.uint8)
    size = stacked_space.shape[-1] // frames
    return gym.spaces.Box(stacked_space.low[..., :size], stacked_space.high[..., :size], dtype=stacked_space.dtype)


class FrameStackingAgent:
    """A model trained on ``VecFrameStack``-ed observations, driven one env observation at a time.

    It stacks the observations it is given as ``VecFrameStack`` stacked them in training (with the
    same class, ``StackedObservations``: zeros before an episode's first frame, the newest last), and
    passes the stack to ``model.predict``, which transposes an image stack as training did.
    ``run_episode`` calls :meth:`reset` after each ``env.reset``.

    :param model: the SB3 model.
    :param frames: the number of stacked observations the model was trained on.
    """

    def __init__(self, model, frames: int) -> None:
        self.model = model
        self.frames = int(frames)
        self.frame_space = single_frame_space(model.observation_space, self.frames)
        self._stack: StackedObservations | None = None

    def reset(self) -> None:
        """Forget the frames: the next observation is an episode's first."""
        self._stack = None

    def stacked(self, observation: np.ndarray, episode_start: np.ndarray | None = None) -> np.ndarray:
        """The stack after ``observation`` (one env's, or a batch), channels last as ``VecFrameStack`` gives it."""
        observation = np.asarray(observation)
        single = observation.shape == self.frame_space.shape
        batch = observation[None] if single else observation
        if self._stack is None or self._stack.stacked_obs.shape[0] != batch.shape[0]:
            self._stack = StackedObservations(batch.shape[0], self.frames, self.frame_space, channels_order="last")
            result = self._stack.reset(batch)
        else:
            if episode_start is not None:
                # What VecFrameStack does to an env whose episode ended: its older frames become zeros.
                self._stack.stacked_obs[np.asarray(episode_start, dtype=bool).reshape(-1)] = 0
            result, _ = self._stack.update(batch, np.zeros(batch.shape[0], dtype=bool), [{} for _ in range(batch.shape[0])])
        return result[0].copy() if single else result.copy()

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: np.ndarray | None = None,
                deterministic: bool = True) -> tuple[Any, Any]:
        stacked = self.stacked(observation, episode_start)
        return self.model.predict(stacked, state=state, episode_start=episode_start, deterministic=deterministic)
