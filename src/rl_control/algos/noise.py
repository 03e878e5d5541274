"""Exploration noise for deterministic policies (TD3, DDPG).

Noise lives outside the agent's networks so the exported actor stays deterministic; the agent
adds it in `act(..., deterministic=False)` and clips to the action box. One noise state per
vector env, so an episode end in one env resets only that env's Ornstein-Uhlenbeck process.
"""
from __future__ import annotations

from typing import Any

import numpy as np


class GaussianNoise:
    """Independent N(0, sigma^2) noise per step (TD3 paper: sigma = 0.1 of the action range)."""

    def __init__(self, n_envs: int, act_dim: int, sigma: float, seed: int | None = None) -> None:
        self.n_envs, self.act_dim, self.sigma = n_envs, act_dim, float(sigma)
        self.rng = np.random.default_rng(seed)

    def __call__(self) -> np.ndarray:
        """Sample noise for every env, shaped (n_envs, act_dim)."""
        return (self.sigma * self.rng.standard_normal((self.n_envs, self.act_dim))).astype(
            np.float32)

    def reset(self, env_indices: Any = None) -> None:
        """Gaussian noise has no state; present so both noises share one interface."""

    def state_dict(self) -> dict[str, Any]:
        """The generator state, for exact resume."""
        return {'rng': self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of state_dict."""
        self.rng.bit_generator.state = state['rng']


class OrnsteinUhlenbeckNoise(GaussianNoise):
    """Temporally correlated noise (DDPG paper: theta 0.15, sigma 0.2).

    x <- x + theta (mu - x) dt + sigma sqrt(dt) N(0, 1), as in SB3, so a zoo `sigma` transfers.
    The stationary std is about sigma / sqrt(2 theta), independent of dt; dt sets correlation.
    """

    def __init__(self, n_envs: int, act_dim: int, sigma: float, theta: float = 0.15,
                 dt: float = 1e-2, seed: int | None = None) -> None:
        super().__init__(n_envs, act_dim, sigma, seed)
        self.theta, self.dt = float(theta), float(dt)
        self.x = np.zeros((n_envs, act_dim), dtype=np.float64)

    def __call__(self) -> np.ndarray:
        """Advance every env's process one step and return its state (n_envs, act_dim)."""
        self.x += (-self.theta * self.x * self.dt
                   + self.sigma * np.sqrt(self.dt) * self.rng.standard_normal(self.x.shape))
        return self.x.astype(np.float32)

    def reset(self, env_indices: Any = None) -> None:
        """Restart the process of the given envs (all when None) at zero, e.g. on episode end."""
        if env_indices is None:
            self.x[:] = 0.0
        else:
            self.x[np.asarray(env_indices)] = 0.0

    def state_dict(self) -> dict[str, Any]:
        """Generator state and the current process values."""
        return {**super().state_dict(), 'x': self.x.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of state_dict."""
        super().load_state_dict(state)
        self.x[:] = state['x']


def make_noise(kind: str, n_envs: int, act_dim: int, sigma: float, theta: float = 0.15,
               dt: float = 1e-2, seed: int | None = None) -> GaussianNoise | None:
    """Build the noise named in a config: 'gaussian' | 'ou' | 'none'."""
    if kind == 'gaussian':
        return GaussianNoise(n_envs, act_dim, sigma, seed)
    if kind == 'ou':
        return OrnsteinUhlenbeckNoise(n_envs, act_dim, sigma, theta, dt, seed)
    if kind == 'none':
        return None
    raise ValueError(f"unknown action noise {kind!r}; expected 'gaussian', 'ou' or 'none'")
