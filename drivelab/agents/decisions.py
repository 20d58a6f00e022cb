"""What an agent decided, and how sure it was: the decision stage, exposed for a viewer.

:func:`decide` acts like ``agent.predict(observation, deterministic=True)`` and hands back, beside the
action, what the agent computed to choose it, from the same forward pass that chose it (given a random
generator, it acts like ``deterministic=False`` instead: the action is drawn as SB3 would draw it):

- DQN: the Q-value of every action (the action is their argmax);
- PPO with a continuous action: the Gaussian's mean and standard deviation (the action is the mean,
  clipped to the action space); with a discrete action: each action's probability (the action is the
  most probable);
- the rule-based driver: its lateral controller's terms (what made the steering angle);
- the random agent: the action alone.

A model trained on stacked frames (:class:`~drivelab.agents.pixels.FrameStackingAgent`) is asked
with its stack, exactly as its ``predict`` would ask it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

Q_VALUES = "q_values"
GAUSSIAN = "gaussian"
CATEGORICAL = "categorical"
RULE_BASED = "rule_based"
RANDOM = "random"


@dataclass
class Decision:
    """One decision: the action handed to the env and what stood behind it.

    :param action: the action, as ``predict`` would return it.
    :param kind: ``"q_values"``, ``"gaussian"``, ``"categorical"``, ``"rule_based"`` or ``"random"``.
    :param values: DQN's Q-values, or PPO's action probabilities (one per discrete action).
    :param mean, std: PPO's Gaussian over a continuous action (one per action dimension, before clipping).
    :param terms: the rule-based driver's controller terms by name (rad), when it has them.
    :param agent_input: what the agent's network read (the frame stack for a stacked-frame agent), or None.
    :param reason: a rule-based agent's reason for the action, in words (the highway driver's), or "".
    """

    action: Any
    kind: str
    values: np.ndarray | None = None
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    terms: dict[str, float] = field(default_factory=dict)
    agent_input: np.ndarray | None = None
    reason: str = ""


def _sb3_model(agent: Any) -> tuple[Any, Any]:
    """(the SB3 model behind ``agent`` or None, the frame-stacking agent around it or None)."""
    from drivelab.agents.pixels import FrameStackingAgent

    if isinstance(agent, FrameStackingAgent):
        return agent.model, agent
    if hasattr(agent, "policy") and hasattr(agent, "predict") and hasattr(agent.policy, "obs_to_tensor"):
        return agent, None
    return None, None


def decide(agent: Any, observation: np.ndarray, sample: np.random.Generator | None = None) -> Decision:
    """The deterministic action of ``agent`` for one env's ``observation``, with what it computed to choose it.

    With ``sample``, a learned agent's action is drawn instead, as ``predict(deterministic=False)`` draws it:
    from PPO's categorical distribution, or DQN's ε-greedy choice at the model's ``exploration_rate``
    (the Atari protocol plays both that way). The panel data stay those of the distribution it was drawn from.
    """
    model, stacker = _sb3_model(agent)
    if model is None:
        return _scripted_decision(agent, observation)
    import torch

    model_input = stacker.stacked(observation) if stacker is not None else np.asarray(observation)
    policy = model.policy
    policy.set_training_mode(False)
    tensor, _ = policy.obs_to_tensor(model_input)
    with torch.no_grad():
        if hasattr(policy, "q_net"):  # DQN
            q_values = policy.q_net(tensor)[0].cpu().numpy()
            action = int(np.argmax(q_values))
            if sample is not None and sample.random() < float(getattr(model, "exploration_rate", 0.0)):
                action = int(sample.integers(len(q_values)))
            return Decision(action=np.asarray(action), kind=Q_VALUES, values=q_values,
                            agent_input=model_input if stacker is not None else None)
        distribution = policy.get_distribution(tensor).distribution
    from gymnasium import spaces

    stacked_input = model_input if stacker is not None else None
    if isinstance(model.action_space, spaces.Discrete):
        probabilities = distribution.probs[0].cpu().numpy()
        if sample is None:
            action = int(np.argmax(probabilities))
        else:
            action = int(sample.choice(len(probabilities), p=probabilities / probabilities.sum(dtype=np.float64)))
        return Decision(action=np.asarray(action), kind=CATEGORICAL, values=probabilities,
                        agent_input=stacked_input)
    mean = distribution.mean[0].cpu().numpy()
    std = distribution.stddev[0].cpu().numpy()
    space = model.action_space
    # As SB3's predict: the mode of the Gaussian (or a draw from it), clipped to the box (no squashing in these presets).
    drawn = mean if sample is None else mean + std * sample.standard_normal(mean.shape)
    action = np.clip(drawn.reshape(space.shape), space.low, space.high).astype(space.dtype)
    return Decision(action=action, kind=GAUSSIAN, mean=mean, std=std, agent_input=stacked_input)


def _scripted_decision(agent: Any, observation: np.ndarray) -> Decision:
    from drivelab.agents.factory import RandomAgent
    from drivelab.agents.rule_based import RuleBasedDriver

    action, _ = agent.predict(observation, deterministic=True)
    if isinstance(agent, RuleBasedDriver):
        return Decision(action=action, kind=RULE_BASED, terms=agent.last_controller_terms())
    reason = getattr(agent, "last_reason", None)
    if reason is not None:  # the highway's rule-based driver: MOBIL's or IDM's verdict
        return Decision(action=action, kind=RULE_BASED, reason=reason)
    return Decision(action=action, kind=RANDOM if isinstance(agent, RandomAgent) else "other")
