"""Types shared by the algorithms and the training loop.

Every agent acts in the normalized action box [-1, 1]^act_dim; the env wrapper (generic tasks) or
the robot contract (robot tasks) maps that box to physical commands. Keeping the agent unaware
of units is what lets one bundle drive a simulator or a robot.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
import dataclasses
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np
import torch

_T = TypeVar('_T')


def _to(data: _T, device: torch.device) -> _T:
    """The same dataclass of tensors with every tensor on `device` (itself when already there)."""
    tensors = {f.name: getattr(data, f.name) for f in dataclasses.fields(data)}  # type: ignore
    if all(t.device == device for t in tensors.values()):
        return data
    return type(data)(**{k: t.to(device) for k, t in tensors.items()})


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

    def to(self, device: torch.device) -> Batch:
        """The batch on `device` (itself, no copy, when it is there already)."""
        return _to(self, device)


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

    def to(self, device: torch.device) -> Rollout:
        """The rollout on `device` (itself, no copy, when it is there already)."""
        return _to(self, device)


class Metrics(Mapping[str, float]):
    """An update's scalar metrics, read back from their tensors only when first accessed.

    Off-policy agents update once per env step and the loop keeps only the latest metrics for
    the next progress row, so converting them every update (a stack and a `.tolist()`, ~30 ATen
    ops, a device sync on a GPU) would be wasted almost every time. A read-only mapping of
    floats: `dict(metrics)`, `metrics['critic_loss']`, `float(v)` work as on a dict. The
    tensors may also be given as a function that computes them: then not even the losses are
    formed unless someone reads them (the tensors it closes over are kept until then).
    """

    __slots__ = ('_names', '_tensors', '_values')

    def __init__(self, names: Sequence[str],
                 tensors: Sequence[torch.Tensor] | Callable[[], Sequence[torch.Tensor]]
                 ) -> None:
        self._names = tuple(names)
        self._tensors = tensors  # or a function computing them, called on first read
        self._values: dict[str, float] | None = None

    def _read(self) -> dict[str, float]:
        if self._values is None:
            tensors = self._tensors() if callable(self._tensors) else self._tensors
            vals = torch.stack([t.detach() for t in tensors]).tolist()
            self._values = dict(zip(self._names, vals, strict=True))
            self._tensors = None  # no graph or buffer is kept alive once read
        return self._values

    def __getitem__(self, key: str) -> float:
        return self._read()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f'Metrics({self._read()!r})'


class Agent(Protocol):
    """What the training loop, checkpoints and bundles need from an algorithm."""

    def act(self, obs: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """Map a batch of (normalized) observations (n, obs_dim) to actions in [-1, 1]."""

    def update(self, batch: Any) -> Mapping[str, float]:
        """One learning step on a Batch or a Rollout; its metrics (a dict or a `Metrics`)."""

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


class OnPolicyAgent(Agent, Protocol):
    """An on-policy agent (A2C, PPO): what `train.onpolicy.OnPolicyCollector` calls besides."""

    def act_with_value(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For rollouts: (action to store, action for the env, V(obs)) for (n_envs, obs_dim)."""

    def value(self, obs: np.ndarray) -> np.ndarray:
        """V(obs) for a batch of observations, shaped (n,)."""
