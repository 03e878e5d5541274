"""Running statistics for observation normalization and reward scaling (SB3 VecNormalize).

The observation transform, (x - mean) / sqrt(var + eps) clipped to +-clip, is baked into
policy.yaml (`to_yaml`) so the policy server applies exactly what training applied.
"""
from __future__ import annotations

from typing import Any

import numpy as np


class RunningMeanStd:
    """Mean and (population) variance of a stream, merged batch by batch (Chan et al., 1979).

    Statistics are kept in float64 and start from count 0, so after any sequence of batches they
    equal numpy's mean/var over everything seen (up to rounding).
    """

    def __init__(self, shape: tuple[int, ...] | int = ()) -> None:
        self.shape = (shape,) if isinstance(shape, int) else tuple(shape)
        self.mean = np.zeros(self.shape, np.float64)
        self.var = np.ones(self.shape, np.float64)
        self.count = 0.0

    def update(self, x: np.ndarray) -> None:
        """Merge a batch shaped (n, *shape) (or one sample shaped `shape`).

        Samples holding a NaN or inf are left out: one would make the statistics non-finite
        for good (the training loop stops the run on them before they come here).
        """
        x = np.asarray(x, dtype=np.float64).reshape(-1, *self.shape)
        x = x[np.isfinite(x).reshape(x.shape[0], -1).all(axis=1)]
        n = x.shape[0]
        if n == 0:
            return
        b_mean, b_var = x.mean(axis=0), x.var(axis=0)
        if self.count == 0:
            self.mean, self.var, self.count = b_mean, b_var, float(n)
            return
        total = self.count + n
        delta = b_mean - self.mean
        m2 = self.var * self.count + b_var * n + delta**2 * self.count * n / total
        self.mean = self.mean + delta * n / total
        self.var = m2 / total
        self.count = total

    def state_dict(self) -> dict[str, Any]:
        """mean, var (numpy) and count."""
        return {'mean': self.mean.copy(), 'var': self.var.copy(), 'count': self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of state_dict."""
        self.mean = np.asarray(state['mean'], np.float64).reshape(self.shape).copy()
        self.var = np.asarray(state['var'], np.float64).reshape(self.shape).copy()
        self.count = float(state['count'])


class RunningNormalizer:
    """Observation normalizer: updated from raw observations, applied to any batch."""

    def __init__(self, shape: tuple[int, ...] | int, clip: float = 10.0,
                 epsilon: float = 1e-8) -> None:
        self.rms = RunningMeanStd(shape)
        self.clip, self.epsilon = float(clip), float(epsilon)

    def update(self, x: np.ndarray) -> None:
        """Add raw observations (n, dim) to the statistics."""
        self.rms.update(x)

    def normalize(self, x: np.ndarray) -> np.ndarray:
        """(x - mean) / sqrt(var + eps), clipped to +-clip, as float32."""
        out = (np.asarray(x, np.float64) - self.rms.mean) / np.sqrt(self.rms.var + self.epsilon)
        return np.clip(out, -self.clip, self.clip).astype(np.float32)

    def normalize_torch(self, x: Any) -> Any:
        """The same transform on a torch tensor (sampled replay batches), keeping its dtype."""
        import torch

        mean = torch.as_tensor(self.rms.mean, dtype=x.dtype, device=x.device)
        std = torch.as_tensor(np.sqrt(self.rms.var + self.epsilon), dtype=x.dtype,
                              device=x.device)
        return ((x - mean) / std).clamp(-self.clip, self.clip)

    def state_dict(self) -> dict[str, Any]:
        """Statistics and settings."""
        return {**self.rms.state_dict(), 'clip': self.clip, 'epsilon': self.epsilon}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of state_dict."""
        self.rms.load_state_dict(state)
        self.clip, self.epsilon = float(state['clip']), float(state['epsilon'])

    def to_yaml(self) -> dict[str, Any]:
        """{mean, var, clip, epsilon} as plain lists/floats for policy.yaml."""
        return {'mean': [float(v) for v in self.rms.mean.ravel()],
                'var': [float(v) for v in self.rms.var.ravel()],
                'clip': self.clip, 'epsilon': self.epsilon}


class RewardScaler:
    """SB3 VecNormalize reward scaling: divide by the std of the running discounted return.

    Per env, ret <- gamma * ret + r; the return's variance is tracked over all envs and steps;
    the reward is scaled by 1 / sqrt(var + eps) (NOT centred) and clipped; ret resets on done.
    On-policy (A2C) the collector scales each reward as it is collected (`__call__`), as
    VecNormalize does. Off-policy (SAC/TD3/DDPG) the replay buffer keeps RAW rewards and the
    sampled batch is scaled with the statistics of that moment (`update` per env step, then
    `scale_torch`), which is what SB3 does with a VecNormalize env (`get_original_reward` when
    storing, `normalize_reward` when sampling) and what keeps moving statistics out of stored
    data; HER's recomputed rewards are scaled the same way.
    """

    def __init__(self, n_envs: int, gamma: float, clip: float = 10.0,
                 epsilon: float = 1e-8) -> None:
        self.gamma, self.clip, self.epsilon = float(gamma), float(clip), float(epsilon)
        self.returns = np.zeros(n_envs, np.float64)
        self.rms = RunningMeanStd(())

    def __call__(self, rew: np.ndarray, done: np.ndarray) -> np.ndarray:
        """Update with one step of rewards (n_envs,) and return them scaled (float32).

        `done` = terminated | truncated for this step: those envs' returns restart at 0.
        """
        rew = np.asarray(rew, np.float64)
        self.returns = self.returns * self.gamma + rew
        self.rms.update(self.returns)
        scaled = self.scale(rew)
        self.returns[np.asarray(done, bool)] = 0.0
        return scaled

    def update(self, rew: np.ndarray, done: np.ndarray) -> None:
        """The statistics update of `__call__` alone (off-policy: rewards are stored raw)."""
        self.returns = self.returns * self.gamma + np.asarray(rew, np.float64)
        self.rms.update(self.returns)
        self.returns[np.asarray(done, bool)] = 0.0

    def reset(self) -> None:
        """Every env starts a new episode (VecNormalize.reset): running returns restart at 0."""
        self.returns[:] = 0.0

    def scale(self, rew: np.ndarray) -> np.ndarray:
        """Scale rewards with the current statistics, without updating them."""
        out = np.asarray(rew, np.float64) / np.sqrt(self.rms.var + self.epsilon)
        return np.clip(out, -self.clip, self.clip).astype(np.float32)

    def scale_torch(self, rew: Any) -> Any:
        """`scale` on a torch tensor (a sampled batch's rewards), keeping dtype and device."""
        return (rew / float(np.sqrt(self.rms.var + self.epsilon))).clamp(-self.clip, self.clip)

    def state_dict(self) -> dict[str, Any]:
        """Return statistics and per-env running returns."""
        return {**self.rms.state_dict(), 'returns': self.returns.copy(), 'gamma': self.gamma,
                'clip': self.clip, 'epsilon': self.epsilon}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of state_dict."""
        self.rms.load_state_dict(state)
        self.returns = np.asarray(state['returns'], np.float64).copy()
        self.gamma, self.clip = float(state['gamma']), float(state['clip'])
        self.epsilon = float(state['epsilon'])
