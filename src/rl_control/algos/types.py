"""Types shared by the algorithms and the training loop.

Every agent acts in the normalized action box [-1, 1]^act_dim; the env wrapper (generic tasks) or
the robot contract (robot tasks) maps that box to physical commands. Keeping the agent unaware
of units is what lets one bundle drive a simulator or a robot.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch


@dataclass
class Batch:
    """A minibatch of transitions as float32 torch tensors (rewards/terminated shaped (B,)).

    `terminated` is 1 only for true terminal states; a time-limit truncation stores 0 there so the
    target bootstraps through it (Pardo et al., 2018, "Time Limits in RL").
    """

    obs: torch.Tensor
    act: torch.Tensor
    rew: torch.Tensor
    next_obs: torch.Tensor
    terminated: torch.Tensor


@dataclass
class Rollout:
    """An on-policy rollout (A2C): tensors shaped (T, n_envs, ...)."""

    obs: torch.Tensor
    act: torch.Tensor
    rew: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    values: torch.Tensor
    # V(final obs) for steps that were truncated (0 elsewhere): bootstraps through time limits.
    truncated_values: torch.Tensor
    last_value: torch.Tensor  # V(obs after the last step), shaped (n_envs,)


class Agent(Protocol):
    """What the training loop, checkpoints and bundles need from an algorithm."""

    def act(self, obs: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """Map a batch of (normalized) observations (n, obs_dim) to actions in [-1, 1]."""

    def update(self, batch: Any) -> dict[str, float]:
        """One learning step on a Batch (off-policy) or a Rollout (on-policy); return metrics."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly: networks, targets, optimizers, counters."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of state_dict."""

    def export_actor(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The deterministic actor as (network description, numpy weights) for a bundle."""

    def reset_noise(self, env_indices: Any = None) -> None:
        """Reset per-env exploration noise (TD3/DDPG OU noise) at episode ends; None: all."""

    def set_progress(self, progress_remaining: float) -> None:
        """Learning-rate schedule hook: progress_remaining goes from 1 to 0 over training."""
