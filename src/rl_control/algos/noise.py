"""Exploration noise for deterministic policies (TD3, DDPG).

Noise lives outside the agent's networks so the exported actor stays deterministic; the agent
adds it in `act(..., deterministic=False)` and clips to the action box. One noise state per
vector env, so an episode end in one env resets only that env's Ornstein-Uhlenbeck process.

How large Ornstein-Uhlenbeck noise really is. The process (SB3's, discretized with step dt)
    x_0 = 0,   x_{n+1} = a x_n + sigma sqrt(dt) e_n,   a = 1 - theta dt,   e_n ~ N(0, 1)
has, after n steps from a reset,
    std(x_n) = sigma sqrt(dt (1 - a^(2n)) / (1 - a^2))                         (`ou_std`)
which grows like a random walk, sigma sqrt(n dt), while n << 1 / (theta dt), and tends to the
stationary std sigma / sqrt(theta (2 - theta dt)) (about sigma / sqrt(2 theta)) only after a few
times 1 / (2 theta dt) steps. With the DDPG settings sigma 0.2, theta 0.15, dt 1e-2
(1 / (theta dt) = 667 steps):
    steps from reset     1      10     50     100    500    1000   stationary
    std(x_n)             0.020  0.063  0.136  0.186  0.322  0.356  0.365
so over a 50-step episode (the Panda reach tasks; the process resets each episode) the noise
never exceeds about 0.14 std, and over Pendulum's 200 steps about 0.25: far below the
stationary 0.365 that sigma / sqrt(2 theta) suggests. With dt = 1 (the DDPG paper's and rllab's
unit step) the same sigma and theta give 0.20 after one step and 0.37 after ten. Pick sigma
(or dt) for the std you want at the episode lengths you train on, e.g. with `ou_std`.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np


def ou_std(n_steps: int, sigma: float, theta: float = 0.15, dt: float = 1e-2) -> float:
    """Exact std of the OU process above `n_steps` steps after a reset (x_0 = 0).

    `n_steps` may be float('inf') for the stationary std.
    """
    a2 = (1.0 - theta * dt) ** 2
    if a2 == 1.0:  # theta dt == 0 (or 2): a pure random walk
        return sigma * math.sqrt(dt * n_steps)
    return sigma * math.sqrt(dt * (1.0 - a2 ** n_steps) / (1.0 - a2))


class GaussianNoise:
    """Independent N(0, sigma^2) noise per step (TD3 paper: sigma = 0.1 of the action range).

    `rng`: a numpy Generator to draw from (shared: the agent's exploration stream), or a seed.
    """

    def __init__(self, n_envs: int, act_dim: int, sigma: float,
                 rng: np.random.Generator | int | None = None) -> None:
        self.n_envs, self.act_dim, self.sigma = n_envs, act_dim, float(sigma)
        self.rng = np.random.default_rng(rng)  # a Generator is used as is, not copied

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
    """Temporally correlated noise (DDPG paper: theta 0.15, sigma 0.2), as SB3's.

    x <- x + theta (0 - x) dt + sigma sqrt(dt) N(0, 1), so a zoo `sigma` transfers. The module
    docstring gives its std as a function of the steps since the last reset (`ou_std`): with
    dt 1e-2 it stays far below sigma / sqrt(2 theta) over typical episode lengths.
    """

    def __init__(self, n_envs: int, act_dim: int, sigma: float, theta: float = 0.15,
                 dt: float = 1e-2, rng: np.random.Generator | int | None = None) -> None:
        super().__init__(n_envs, act_dim, sigma, rng)
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
               dt: float = 1e-2,
               rng: np.random.Generator | int | None = None) -> GaussianNoise | None:
    """Build the noise named in a config: 'gaussian' | 'ou' | 'none'."""
    if kind == 'gaussian':
        return GaussianNoise(n_envs, act_dim, sigma, rng)
    if kind == 'ou':
        return OrnsteinUhlenbeckNoise(n_envs, act_dim, sigma, theta, dt, rng)
    if kind == 'none':
        return None
    raise ValueError(f"unknown action noise {kind!r}; expected 'gaussian', 'ou' or 'none'")
