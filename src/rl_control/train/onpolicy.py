"""On-policy rollout collection (A2C, PPO), as SB3's `collect_rollouts` for on-policy methods.

A rollout is n_steps x n_envs transitions with the values the policy predicted. A time-limit
truncation records V(true final observation) so that GAE bootstraps through it (SB3's rule);
rewards are scaled by the running return statistics when `normalize_reward` is on.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from rl_control.algos.types import OnPolicyAgent, Rollout
from rl_control.envs.factory import final_observations, policy_input
from rl_control.train import finite
from rl_control.train.episodes import EpisodeStats


class OnPolicyCollector:
    """Collects rollouts for `agent.update(rollout)`; holds the latest observations."""

    def __init__(self, envs: Any, agent: OnPolicyAgent, normalizer: Any, reward_scaler: Any,
                 algo_cfg: Any, stats: EpisodeStats) -> None:
        self.envs, self.agent, self.stats = envs, agent, stats
        self.normalizer, self.reward_scaler = normalizer, reward_scaler
        self.n_envs = envs.num_envs
        self.n_steps = int(algo_cfg.n_steps)
        self.obs: Any = None

    def reset(self, seed: int) -> None:
        """Reset every env (a fresh run, or a resume whose envs could not be snapshotted)."""
        self.obs, _ = self.envs.reset(seed=seed)
        finite.check('observation', policy_input(self.obs))
        self.stats.restart()
        if self.reward_scaler is not None:  # VecNormalize.reset: running returns restart
            self.reward_scaler.reset()

    def _input(self, obs: Any) -> np.ndarray:
        x = policy_input(obs)
        return (x if self.normalizer is None else self.normalizer.normalize(x)).astype(
            np.float32)

    def collect(self) -> Rollout:
        """n_steps vector steps with the current policy."""
        xs, acts, rews, terms, truncs, vals, tvals = [], [], [], [], [], [], []
        for k in range(self.n_steps):
            if self.normalizer is not None:
                self.normalizer.update(policy_input(self.obs))
            x = self._input(self.obs)
            act, act_env, value = self.agent.act_with_value(x)
            next_obs, rew, terminated, truncated, infos = self.envs.step(act_env)
            finite.check('observation', policy_input(next_obs), (k + 1) * self.n_envs)
            finite.check('reward', rew, (k + 1) * self.n_envs)
            self.stats.add(rew, terminated, truncated)
            tval = np.zeros(self.n_envs, np.float32)
            if np.any(truncated):
                final = policy_input(final_observations(next_obs, infos))
                finite.check('final observation', final, (k + 1) * self.n_envs)
                xf = self._input(final)
                tval = np.where(truncated, self.agent.value(xf), 0.0).astype(np.float32)
            r = np.asarray(rew, np.float32)
            if self.reward_scaler is not None:
                r = self.reward_scaler(r, np.logical_or(terminated, truncated))
            for store, item in zip((xs, acts, rews, terms, truncs, vals, tvals),
                                   (x, act, r, terminated, truncated, value, tval), strict=True):
                store.append(item)
            self.obs = next_obs
        last_value = self.agent.value(self._input(self.obs))

        def t(a: list[Any]) -> torch.Tensor:
            return torch.as_tensor(np.asarray(a, np.float32))

        return Rollout(obs=t(xs), act=t(acts), rew=t(rews), terminated=t(terms),
                       truncated=t(truncs), values=t(vals), truncated_values=t(tvals),
                       last_value=t(last_value))

    def state_dict(self) -> dict[str, Any]:
        """The latest observations."""
        return {'obs': self.obs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of state_dict."""
        self.obs = state['obs']
