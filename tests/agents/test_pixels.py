"""Pixel agents: the perception CNN as the policy's features extractor, its initialisation from a
saved perception model, and the stacked frames the policy sees in training and in evaluation."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from drivelab.agents.factory import check_hyperparams, make_env, make_model, make_training_env, single_env_agent
from drivelab.agents.pixels import FrameStackingAgent, PerceptionFeaturesExtractor
from drivelab.agents.presets import find_preset
from drivelab.perception.model import load_perception_model, save_untrained_model

SMALL_CAMERA = {"observation": "camera", "camera_width": 48, "camera_height": 48}
FRAMES = 4


def camera_hyperparams(algo: str, **overrides) -> dict:
    hyperparams = find_preset("DriveLab/LaneKeep-v0", algo, preset=f"{algo}-camera").hyperparams
    if algo == "ppo":
        hyperparams.update(n_steps=32, batch_size=32)
    else:
        hyperparams.update(buffer_size=100, learning_starts=10)
    return {**hyperparams, **overrides}


def test_the_camera_presets_stack_four_frames_of_the_camera():
    for algo, action in (("ppo", "steer"), ("dqn", "steer_discrete")):
        preset = find_preset("DriveLab/LaneKeep-v0", algo, preset=f"{algo}-camera")
        assert preset.env_options["observation"] == "camera" and preset.action == action
        assert preset.hyperparams["frame_stack"] == FRAMES
        check_hyperparams(algo, preset.hyperparams)
    # DQN's replay buffer holds each observation and the next one, uint8: <= 2 GB at 84x84x12.
    buffer_size = find_preset("DriveLab/LaneKeep-v0", "dqn", preset="dqn-camera").hyperparams["buffer_size"]
    assert buffer_size * 2 * 84 * 84 * 3 * FRAMES <= 2e9


def test_agent_settings_are_checked_with_one_line(tmp_path):
    with pytest.raises(ValueError, match=r"frame_stack must be a whole number >= 1 .*got 0"):
        check_hyperparams("ppo", {"frame_stack": 0})
    with pytest.raises(ValueError, match=r"perception model directory .*missing does not exist"):
        check_hyperparams("ppo", {"encoder_from": str(tmp_path / "missing")})


def test_the_extractor_turns_a_stack_of_frames_into_the_backbones_features():
    space = gym.spaces.Box(0, 255, (3 * FRAMES, 48, 48), dtype=np.uint8)  # as SB3 hands it: channels first
    extractor = PerceptionFeaturesExtractor(space, features_dim=64)
    assert extractor.frames == FRAMES and extractor.features_dim == 64 and extractor.frame_shape == (48, 48, 3)
    assert extractor(torch.rand(5, 3 * FRAMES, 48, 48)).shape == (5, 64)
    with pytest.raises(ValueError, match="not a multiple of 3"):
        PerceptionFeaturesExtractor(gym.spaces.Box(0, 255, (4, 48, 48), dtype=np.uint8))


def test_camera_images_are_not_scaled_and_get_a_cnn_policy():
    env = make_env("DriveLab/LaneKeep-v0", SMALL_CAMERA, "steer", scaled=True)
    assert env.observation_space.shape == (48, 48, 3) and env.observation_space.dtype == np.uint8
    venv = make_training_env("DriveLab/LaneKeep-v0", SMALL_CAMERA, "steer", n_envs=2, seed=0, frame_stack=FRAMES)
    assert venv.observation_space.shape == (48, 48, 3 * FRAMES)
    model = make_model("ppo", venv, camera_hyperparams("ppo"), seed=0, device="cpu")
    assert type(model.policy).__name__ == "ActorCriticCnnPolicy"
    assert isinstance(model.policy.features_extractor, PerceptionFeaturesExtractor)
    assert model.observation_space.shape == (3 * FRAMES, 48, 48)  # SB3 transposed the stack for torch
    venv.close()


@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_initialising_from_a_perception_model_copies_its_backbone_spread_over_the_frames(tmp_path, algo):
    run_dir = save_untrained_model(tmp_path / "perception", image_shape=(48, 48, 3), seed=7)
    perception, _ = load_perception_model(run_dir, image_shape=(48, 48, 3))
    action = "steer" if algo == "ppo" else "steer_discrete"
    venv = make_training_env("DriveLab/LaneKeep-v0", SMALL_CAMERA, action, n_envs=1, seed=0, frame_stack=FRAMES)
    model = make_model(algo, venv, camera_hyperparams(algo, encoder_from=str(run_dir)), seed=0, device="cpu")

    extractors = [m for m in model.policy.modules() if isinstance(m, PerceptionFeaturesExtractor)]
    assert len(extractors) == (1 if algo == "ppo" else 2)  # DQN: the online and the target network
    trained = perception.backbone.state_dict()
    for extractor in extractors:
        copied = extractor.backbone.state_dict()
        assert set(copied) == set(trained)
        for key, value in trained.items():
            if key == "convolutions.0.weight":
                assert copied[key].shape == (value.shape[0], 3 * FRAMES, *value.shape[2:])
                for frame in range(FRAMES):  # each frame's slice: the trained kernel / frames
                    torch.testing.assert_close(copied[key][:, 3 * frame:3 * frame + 3], value / FRAMES)
            else:
                torch.testing.assert_close(copied[key], value)  # BatchNorm statistics included

    # A still scene (four equal frames) gives the trained model's features for that one frame.
    image = torch.rand(2, 3, 48, 48)
    extractor = extractors[0].eval()
    with torch.no_grad():
        torch.testing.assert_close(extractor(image.repeat(1, FRAMES, 1, 1)), perception.backbone(image), rtol=1e-4, atol=1e-5)
    # The saved model holds no path to the perception model: it loads without it.
    assert "encoder_from" not in str(model.policy_kwargs)
    venv.close()


def test_evaluation_hands_the_policy_exactly_what_training_does():
    """The same steps of the same env, through VecFrameStack (training) and through the single env with
    FrameStackingAgent (evaluation, `drivelab drive`): the features extractor's inputs are equal, over
    an episode's end and the next one's start."""
    options = {**SMALL_CAMERA, "max_episode_s": 0.3}  # 6 decisions at 20 Hz: episodes end within the test
    venv = make_training_env("DriveLab/LaneKeep-v0", options, "steer", n_envs=1, seed=3, frame_stack=FRAMES)
    model = make_model("ppo", venv, camera_hyperparams("ppo"), seed=3, device="cpu")  # SB3 seeds its env with it
    seen: list[torch.Tensor] = []
    model.policy.features_extractor.register_forward_pre_hook(lambda _module, args: seen.append(args[0].clone()))
    steer = np.array([0.3], dtype=np.float32)

    wrapped = model.get_env()  # VecTransposeImage(VecFrameStack(DummyVecEnv)), as model.learn drives it
    observation = wrapped.reset()
    training = []
    for _ in range(10):
        with torch.no_grad():
            model.policy(model.policy.obs_to_tensor(observation)[0])  # what collect_rollouts hands the policy
        training.append(seen.pop())
        observation, _, _, _ = wrapped.step(steer[None])

    env = make_env("DriveLab/LaneKeep-v0", options, "steer", scaled=True)
    agent = single_env_agent(model, {"frame_stack": FRAMES})
    assert isinstance(agent, FrameStackingAgent)
    evaluation = []
    observation, _ = env.reset(seed=3)  # env 0 of the vec env is reset with the seed
    agent.reset()
    for _ in range(10):
        agent.predict(observation, deterministic=True)
        evaluation.append(seen.pop())
        observation, _, terminated, truncated, _ = env.step(steer)
        if terminated or truncated:
            observation, _ = env.reset()
            agent.reset()
    for step, (train_input, eval_input) in enumerate(zip(training, evaluation)):
        torch.testing.assert_close(eval_input, train_input, rtol=0, atol=0, msg=f"step {step}")
    # The stack is oldest first: at an episode's first step only the newest frame (last 3 channels) is there.
    assert float(training[0][:, :-3].abs().max()) == 0.0 and float(training[0][:, -3:].max()) > 0.0
    assert float(training[6][:, :-3].abs().max()) == 0.0  # the second episode starts at step 6
    assert float(training[5][:, :3].abs().max()) > 0.0
    venv.close()
    env.close()


def test_the_extractor_acts_and_trains_with_the_same_batchnorm():
    """SB3 acts in evaluation mode and trains in training mode: the extractor must be the same function in both."""
    space = gym.spaces.Box(0, 255, (12, 48, 48), dtype=np.uint8)
    extractor = PerceptionFeaturesExtractor(space)
    images = torch.rand(8, 12, 48, 48)
    extractor.train(True)
    training = extractor(images)
    extractor.train(False)
    np.testing.assert_allclose(extractor(images).detach().numpy(), training.detach().numpy(), rtol=1e-6)
    assert all(not m.training for m in extractor.modules() if isinstance(m, torch.nn.BatchNorm2d))
