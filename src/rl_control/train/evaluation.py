"""Deterministic evaluation: N episodes run side by side, one batched actor call per step.

Evaluation is on the critical path of "wall time to reach a return threshold", so the N
episodes are N envs stepped together and the actor runs once per step on the stacked inputs of
the still-running envs (instead of N x T single-sample forward passes). Each episode starts from
a seed derived from (base seed, episode index), so an evaluation is a pure function of the
policy: resumed and uninterrupted runs measure the same thing.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from rl_control.envs.factory import make_env, policy_input

ActFn = Callable[[np.ndarray], np.ndarray]


@dataclass
class EvalResult:
    """Per-episode returns and lengths; success rate None when the env has no `is_success`."""

    returns: np.ndarray
    lengths: np.ndarray
    success_rate: float | None

    @property
    def mean_return(self) -> float:
        """Mean episode return."""
        return float(np.mean(self.returns))

    @property
    def std_return(self) -> float:
        """Population std of episode returns (as SB3 reports it)."""
        return float(np.std(self.returns))

    def to_dict(self) -> dict[str, Any]:
        """JSON/YAML-ready summary."""
        return {'episodes': int(len(self.returns)), 'mean_return': self.mean_return,
                'std_return': self.std_return, 'success_rate': self.success_rate,
                'mean_length': float(np.mean(self.lengths))}


class Evaluator:
    """Holds N eval envs (built once, reused each evaluation) and runs one episode in each."""

    def __init__(self, env_id: str, episodes: int, env_kwargs: dict[str, Any] | None = None,
                 time_limit: int | None = None) -> None:
        self.envs: list[gym.Env] = [make_env(env_id, None, env_kwargs, time_limit)
                                    for _ in range(episodes)]

    def run(self, act: ActFn, seed: int) -> EvalResult:
        """One episode per env, env i reset with seed `seed + i`.

        `act` maps raw policy inputs (n, obs_dim) to actions in [-1, 1] deterministically.
        """
        n = len(self.envs)
        obs = [env.reset(seed=seed + i)[0] for i, env in enumerate(self.envs)]
        returns = np.zeros(n)
        lengths = np.zeros(n, dtype=np.int64)
        success: list[float | None] = [None] * n
        active = list(range(n))
        while active:
            x = np.stack([policy_input(obs[i]) for i in active])
            actions = np.asarray(act(x))
            still = []
            for row, i in enumerate(active):
                o, r, terminated, truncated, info = self.envs[i].step(actions[row])
                obs[i] = o
                returns[i] += float(r)
                lengths[i] += 1
                if terminated or truncated:
                    if 'is_success' in info:
                        success[i] = float(info['is_success'])
                else:
                    still.append(i)
            active = still
        known = [s for s in success if s is not None]
        rate = float(np.mean(known)) if known else None
        return EvalResult(returns, lengths, rate)

    def close(self) -> None:
        """Close the eval envs."""
        for env in self.envs:
            env.close()


def evaluate(act: ActFn, env_id: str, episodes: int, seed: int = 0,
             env_kwargs: dict[str, Any] | None = None,
             time_limit: int | None = None) -> EvalResult:
    """One-shot evaluation (CLI `eval`): build the envs, run, close."""
    evaluator = Evaluator(env_id, episodes, env_kwargs, time_limit)
    try:
        return evaluator.run(act, seed)
    finally:
        evaluator.close()
