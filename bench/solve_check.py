"""The time-to-solve protocol both peers follow (bench/time_to_solve.py): one class, one check.

"Solved" = a training-time evaluation (the library's own: 10 deterministic episodes) reaches
the threshold AND a fresh 100-episode deterministic evaluation of that very policy does too.
The 100-episode check is the same function for both libraries (same episode seeds, batched),
and its time is excluded from the clock (it is the benchmark's instrument, not training); the
library's own evaluations are counted. A crossing the check rejects does not stop training:
the next crossing is checked again.
"""
from __future__ import annotations

from collections.abc import Callable
import os
import time

import gymnasium as gym
import numpy as np

CHECK_SEED = 7_000_000  # episode i of a check starts from reset(seed=CHECK_SEED + i)


def episode_returns(act: Callable[[np.ndarray], np.ndarray], env_id: str,
                    seeds: list[int]) -> list[float]:
    """Returns of deterministic episodes from reset(seed=s) for each s, stepped side by side.

    `act` maps a batch of raw observations (n, obs_dim) to actions in the env's own bounds;
    one call per step for every episode still running (the same for both libraries).
    """
    envs = [gym.make(env_id) for _ in seeds]
    obs = [env.reset(seed=s)[0] for s, env in zip(seeds, envs, strict=True)]
    rets = np.zeros(len(seeds))
    active = list(range(len(seeds)))
    while active:
        actions = np.asarray(act(np.stack([obs[i] for i in active])))
        still = []
        for row, i in enumerate(active):
            obs[i], r, term, trunc, _ = envs[i].step(actions[row])
            rets[i] += float(r)
            if not (term or trunc):
                still.append(i)
        active = still
    for env in envs:
        env.close()
    return rets.tolist()


def check_return(act: Callable[[np.ndarray], np.ndarray], env_id: str = 'Pendulum-v1',
                 episodes: int = 100) -> float:
    """Mean return of `episodes` deterministic episodes stepped side by side."""
    return float(np.mean(episode_returns(act, env_id, [CHECK_SEED + i
                                                        for i in range(episodes)])))


class SolveClock:
    """Tracks evaluations, checks crossings, and keeps the wall clock net of the checks."""

    def __init__(self, t0: float, threshold: float, episodes: int) -> None:
        self.t0, self.threshold, self.episodes = t0, threshold, episodes
        self.check_s = 0.0  # time spent in 100-episode checks (excluded)
        self.record: dict = {'evals': [], 'checks': [], 'first_s': None, 'first_step': None,
                             'solved_s': None, 'solved_step': None,
                             'load1_start': os.getloadavg()[0]}

    def now(self) -> float:
        """Seconds since process launch, without the time spent in checks."""
        return time.time() - self.t0 - self.check_s

    def on_eval(self, step: int, mean_return: float,
                act: Callable[[np.ndarray], np.ndarray]) -> bool:
        """After a training-time evaluation; False when solved (stop training)."""
        t = self.now()
        self.record['evals'].append([step, float(mean_return), round(t, 3)])
        if mean_return < self.threshold:
            return True
        if self.record['first_s'] is None:
            self.record['first_s'], self.record['first_step'] = t, step
        start = time.time()
        ret = check_return(act, episodes=self.episodes)
        self.check_s += time.time() - start
        self.record['checks'].append([step, ret, round(time.time() - start, 3)])
        if ret >= self.threshold:
            self.record['solved_s'], self.record['solved_step'] = t, step
            return False
        return True

    def finish(self, steps: int) -> dict:
        """The record, with the run's end (the budget's time for an unsolved run)."""
        self.record.update(end_s=self.now(), end_step=steps, check_s=self.check_s,
                           load1_end=os.getloadavg()[0])
        return self.record
