"""Replay buffers: plain uniform replay and hindsight experience replay (HER).

Both store RAW observations (the loop normalizes after sampling, so statistics that keep moving
never get frozen into stored data) in preallocated float32 numpy arrays, and keep `terminated`
apart from `truncated`: only a true terminal stops bootstrapping; a time-limit truncation stores
the real final observation as next_obs and bootstraps through it (Pardo et al., 2018).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from rl_control.algos.types import Batch


def _rows(x: Any, n: int, dim: int | None = None) -> np.ndarray:
    """Coerce a per-env batch to float32 (n, dim) or (n,)."""
    a = np.asarray(x, dtype=np.float32)
    return a.reshape(n, dim) if dim is not None else a.reshape(n)


def _t(x: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x)).to(device)


class ReplayBuffer:
    """Uniform replay over the last `capacity` transitions (a ring buffer, flat over envs)."""

    def __init__(self, obs_dim: int, act_dim: int, capacity: int, seed: int | None = None,
                 device: str = 'cpu') -> None:
        self.obs_dim, self.act_dim, self.capacity = obs_dim, act_dim, int(capacity)
        self.device = torch.device(device)
        self.obs = np.zeros((self.capacity, obs_dim), np.float32)
        self.next_obs = np.zeros((self.capacity, obs_dim), np.float32)
        self.act = np.zeros((self.capacity, act_dim), np.float32)
        self.rew = np.zeros(self.capacity, np.float32)
        self.terminated = np.zeros(self.capacity, np.float32)
        self.truncated = np.zeros(self.capacity, np.float32)
        self.pos = 0
        self.size = 0
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    def add(self, obs: np.ndarray, act: np.ndarray, rew: np.ndarray, next_obs: np.ndarray,
            terminated: np.ndarray, truncated: np.ndarray) -> None:
        """Store one step of n vector envs (leading dim n_envs on every array).

        For a truncated (or terminated) env, `next_obs` must be the real final observation, not
        the first observation of the next episode that an autoreset env returns.
        """
        n = np.asarray(rew).size
        idx = (self.pos + np.arange(n)) % self.capacity
        self.obs[idx] = _rows(obs, n, self.obs_dim)
        self.next_obs[idx] = _rows(next_obs, n, self.obs_dim)
        self.act[idx] = _rows(act, n, self.act_dim)
        self.rew[idx] = _rows(rew, n)
        self.terminated[idx] = _rows(terminated, n)
        self.truncated[idx] = _rows(truncated, n)
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator | None = None) -> Batch:
        """A uniform minibatch (with replacement) as torch tensors; terminated = true terminal."""
        if self.size == 0:
            raise ValueError('cannot sample from an empty replay buffer')
        idx = (rng or self.rng).integers(0, self.size, size=batch_size)
        d = self.device
        return Batch(obs=_t(self.obs[idx], d), act=_t(self.act[idx], d),
                     rew=_t(self.rew[idx], d), next_obs=_t(self.next_obs[idx], d),
                     terminated=_t(self.terminated[idx], d))

    _ARRAYS = ('obs', 'next_obs', 'act', 'rew', 'terminated', 'truncated')

    def state_dict(self) -> dict[str, Any]:
        """Stored transitions (numpy arrays, only the filled part), position, sampling RNG."""
        state: dict[str, Any] = {k: getattr(self, k)[: self.size].copy() for k in self._ARRAYS}
        state.update(pos=self.pos, size=self.size, capacity=self.capacity,
                     rng=self.rng.bit_generator.state)
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Inverse of state_dict (the capacity must match)."""
        if int(state['capacity']) != self.capacity:
            raise ValueError(f"replay capacity {state['capacity']} != {self.capacity}")
        self.size, self.pos = int(state['size']), int(state['pos'])
        for k in self._ARRAYS:
            getattr(self, k)[: self.size] = state[k]
        self.rng.bit_generator.state = state['rng']


class HerReplayBuffer:
    """Replay of goal-conditioned transitions with hindsight relabelling (Andrychowicz 2017).

    Layout as SB3: one ring of `capacity // n_envs` rows per env column, so each env's episodes
    occupy consecutive rows. Each row records its episode's first absolute step and, once the
    episode has ended, its end (exclusive; -1 while it is in progress).

    What may be sampled, as SB3's HerReplayBuffer: only transitions of FINISHED episodes that
    are still stored WHOLE. An episode in progress has no 'future' or 'final' goal yet (they
    would be biased toward the steps already taken), and an episode whose first rows the ring
    has overwritten is dropped entirely (SB3 sets its length to 0). Per env those transitions
    are one contiguous range of absolute steps [lo, hi): hi is where the open episode starts,
    lo the start of the oldest episode stored whole; a batch draws uniformly over all envs'
    ranges (SB3: uniform over the valid (row, env) pairs). Sampling before any episode has
    ended is an error, as in SB3: `learning_starts` must exceed the episode length.

    A relabelled goal is an achieved goal (`next achieved_goal`) of a transition of the SAME
    episode: at or after the sampled one ('future'), its last ('final') or any ('episode').
    The first int(k / (k + 1) * batch_size) transitions of each batch are relabelled (SB3's
    split) and their reward recomputed with the env's vectorized
    `compute_reward(achieved_goal, desired_goal, info)`. `info`: without `info_keys`, a list of
    empty dicts (panda-gym and gymnasium-robotics ignore it); with them, a dict of one column
    per key, each transition's own stored value (a goal-independent signal such as the arm's
    speed, which relabelling must leave unchanged). The batch's obs is the policy input vector
    concat(observation, desired_goal); next_obs uses the same goal.
    """

    STRATEGIES = ('future', 'final', 'episode')

    def __init__(self, obs_dim: int, goal_dim: int, act_dim: int, capacity: int,
                 compute_reward: Callable[..., Any], n_envs: int = 1, k: int = 4,
                 strategy: str = 'future', seed: int | None = None, device: str = 'cpu',
                 info_keys: tuple[str, ...] = ()) -> None:
        if strategy not in self.STRATEGIES:
            raise ValueError(f'unknown HER strategy {strategy!r}; expected {self.STRATEGIES}')
        self.obs_dim, self.goal_dim, self.act_dim = obs_dim, goal_dim, act_dim
        self.n_envs, self.k, self.strategy = n_envs, int(k), strategy
        self.her_ratio = 1.0 - 1.0 / (self.k + 1)
        self.compute_reward = compute_reward
        self.device = torch.device(device)
        self.rows = max(1, int(capacity) // n_envs)
        r, e = self.rows, n_envs
        self.obs = np.zeros((r, e, obs_dim), np.float32)
        self.next_obs = np.zeros((r, e, obs_dim), np.float32)
        self.achieved = np.zeros((r, e, goal_dim), np.float32)
        self.next_achieved = np.zeros((r, e, goal_dim), np.float32)
        self.desired = np.zeros((r, e, goal_dim), np.float32)
        self.act = np.zeros((r, e, act_dim), np.float32)
        self.rew = np.zeros((r, e), np.float32)
        self.terminated = np.zeros((r, e), np.float32)
        self.truncated = np.zeros((r, e), np.float32)
        self.info_keys = tuple(info_keys)
        self.info = {key: np.zeros((r, e), np.float32) for key in self.info_keys}
        self.ep_start = np.zeros((r, e), np.int64)  # absolute first step of the row's episode
        self.ep_end = np.full((r, e), -1, np.int64)  # absolute end (exclusive); -1: in progress
        self.current_start = np.zeros(e, np.int64)  # where each env's open episode starts
        self.total = 0  # steps added (per env)
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return min(self.total, self.rows) * self.n_envs

    def add(self, obs: Mapping[str, np.ndarray], act: np.ndarray, rew: np.ndarray,
            next_obs: Mapping[str, np.ndarray], terminated: np.ndarray,
            truncated: np.ndarray, info: Mapping[str, np.ndarray] | None = None) -> None:
        """Store one step of all n_envs envs; obs/next_obs are dicts of (n_envs, ...) arrays.

        For a done env, `next_obs` must be the real final observation (not the reset one), and
        `info` (one (n_envs,) column per `info_keys` entry) that final step's info.
        """
        n, row = self.n_envs, self.total % self.rows
        self.obs[row] = _rows(obs['observation'], n, self.obs_dim)
        self.achieved[row] = _rows(obs['achieved_goal'], n, self.goal_dim)
        self.desired[row] = _rows(obs['desired_goal'], n, self.goal_dim)
        self.next_obs[row] = _rows(next_obs['observation'], n, self.obs_dim)
        self.next_achieved[row] = _rows(next_obs['achieved_goal'], n, self.goal_dim)
        self.act[row] = _rows(act, n, self.act_dim)
        self.rew[row] = _rows(rew, n)
        for key in self.info_keys:
            if info is None or key not in info:
                raise KeyError(f'HER: the step info lacks {key!r}, which the env declares in '
                               f'her_info_keys {list(self.info_keys)}')
            self.info[key][row] = _rows(info[key], n)
        term, trunc = _rows(terminated, n), _rows(truncated, n)
        self.terminated[row], self.truncated[row] = term, trunc
        self.ep_start[row] = self.current_start
        self.ep_end[row] = -1
        self.total += 1
        for env in np.flatnonzero((term > 0) | (trunc > 0)):
            self._end_episode(int(env))

    def end_episodes(self) -> None:
        """End every env's episode in progress at the newest stored step.

        The loop calls this whenever it resets the envs (e.g. a run resumed after a stop that
        came after the last step was stored): the open episode's rows must not take 'future'
        goals from the next episode, which starts at a fresh reset.
        """
        for env in range(self.n_envs):
            self._end_episode(env)

    def _end_episode(self, env: int) -> None:
        first = max(int(self.current_start[env]), self.total - self.rows)
        if first < self.total:
            self.ep_end[np.arange(first, self.total) % self.rows, env] = self.total
        self.current_start[env] = self.total

    def sampleable(self) -> tuple[np.ndarray, np.ndarray]:
        """Per env, the absolute steps [lo, hi) that may be sampled (see the class docstring)."""
        oldest = max(0, self.total - self.rows)  # absolute step of the oldest stored row
        hi = self.current_start.copy()
        start, end = self.ep_start[oldest % self.rows], self.ep_end[oldest % self.rows]
        # The oldest row's episode, if its start is overwritten, is skipped up to its end.
        lo = np.where(start >= oldest, start, np.where(end >= 0, end, hi))
        return lo, np.maximum(lo, hi)

    def sample(self, batch_size: int, rng: np.random.Generator | None = None) -> Batch:
        """A minibatch of finished-episode transitions, int(k/(k+1) * batch) relabelled."""
        rng = rng or self.rng
        lo, hi = self.sampleable()
        counts = hi - lo
        ends = np.cumsum(counts)
        if ends[-1] == 0:
            raise ValueError('HER: no finished episode is stored yet, so there is nothing to '
                             'sample; set learning_starts above the episode length')
        flat = rng.integers(0, ends[-1], size=batch_size)
        envs = np.searchsorted(ends, flat, side='right')
        steps = lo[envs] + flat - (ends - counts)[envs]
        rows = steps % self.rows
        goals = self.desired[rows, envs].copy()
        rew = self.rew[rows, envs].copy()
        n_her = int(self.her_ratio * batch_size)
        if n_her > 0:
            hr, he = rows[:n_her], envs[:n_her]
            goal_rows = self._goal_rows(steps[:n_her], hr, he, rng)
            goals[:n_her] = self.next_achieved[goal_rows, he]
            info: Any = ({key: col[hr, he] for key, col in self.info.items()}
                         if self.info_keys else [{} for _ in range(n_her)])
            rew[:n_her] = np.asarray(self.compute_reward(
                self.next_achieved[hr, he], goals[:n_her], info),
                dtype=np.float32).reshape(n_her)
        obs = np.concatenate([self.obs[rows, envs], goals], axis=1)
        next_obs = np.concatenate([self.next_obs[rows, envs], goals], axis=1)
        d = self.device
        return Batch(obs=_t(obs, d), act=_t(self.act[rows, envs], d), rew=_t(rew, d),
                     next_obs=_t(next_obs, d), terminated=_t(self.terminated[rows, envs], d))

    def _goal_rows(self, steps: np.ndarray, rows: np.ndarray, envs: np.ndarray,
                   rng: np.random.Generator) -> np.ndarray:
        """Ring rows whose next achieved goal becomes the new goal, per the strategy.

        `steps` are the sampled transitions' absolute steps, `rows` their ring rows.
        """
        end = self.ep_end[rows, envs]  # finished episodes only: always >= 0 here
        if self.strategy == 'future':
            first = steps
        elif self.strategy == 'final':
            first = end - 1
        else:  # 'episode'
            first = self.ep_start[rows, envs]
        goal_steps = first + (rng.random(rows.shape) * (end - first)).astype(np.int64)
        return goal_steps % self.rows

    _ARRAYS = ('obs', 'next_obs', 'achieved', 'next_achieved', 'desired', 'act', 'rew',
               'terminated', 'truncated', 'ep_start', 'ep_end')

    def state_dict(self) -> dict[str, Any]:
        """Stored rows (numpy arrays), episode bookkeeping and the sampling RNG."""
        stored = min(self.total, self.rows)
        state: dict[str, Any] = {k: getattr(self, k)[:stored].copy() for k in self._ARRAYS}
        state.update({f'info.{k}': v[:stored].copy() for k, v in self.info.items()})
        state.update(total=self.total, rows=self.rows, n_envs=self.n_envs,
                     current_start=self.current_start.copy(), rng=self.rng.bit_generator.state)
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Inverse of state_dict (capacity and n_envs must match)."""
        if int(state['rows']) != self.rows or int(state['n_envs']) != self.n_envs:
            raise ValueError('HER buffer shape (capacity // n_envs, n_envs) does not match')
        self.total = int(state['total'])
        stored = min(self.total, self.rows)
        for k in self._ARRAYS:
            getattr(self, k)[:stored] = state[k]
        for k, col in self.info.items():
            col[:stored] = state[f'info.{k}']
        self.current_start[:] = state['current_start']
        self.rng.bit_generator.state = state['rng']
