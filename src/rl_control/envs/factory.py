"""Env factory: gymnasium ids -> envs whose actions live in [-1, 1] (the agents' box).

Also: vector envs whose autoreset keeps the true final observation of every finished episode
(needed to bootstrap through time-limit truncations), goal-env detection, the policy input
vector, and the metadata a policy bundle records about the env it was trained on.
"""
from __future__ import annotations

import importlib
from typing import Any

import gymnasium as gym
from gymnasium.vector import AutoresetMode, SyncVectorEnv
import numpy as np

GOAL_KEYS = ('observation', 'achieved_goal', 'desired_goal')


def register_envs_for(env_id: str) -> None:
    """Import panda-gym when `env_id` is unknown: it registers its ids only on import.

    Our own ids are registered by `import rl_control`. panda-gym (pybullet) is imported lazily
    because it is slow to import and optional; a missing module leaves the id unknown, and the
    caller reports that.
    """
    if env_id in gym.envs.registry:
        return
    try:
        importlib.import_module('panda_gym')
    except ImportError:
        pass


def make_env(env_id: str, seed: int | None = None, env_kwargs: dict[str, Any] | None = None,
             time_limit: int | None = None) -> gym.Env:
    """Build one env with actions rescaled from [-1, 1] to its Box bounds (as SB3 does).

    `seed` seeds the action space only; the episode seed is given at `reset(seed=...)`.
    """
    register_envs_for(env_id)
    kwargs = dict(env_kwargs or {})
    if time_limit is not None:
        kwargs['max_episode_steps'] = time_limit
    env = gym.make(env_id, **kwargs)
    space = env.action_space
    if isinstance(space, gym.spaces.Box) and _needs_rescale(space):
        ones = np.ones(space.shape, dtype=np.float32)  # float32 bounds: no precision warning
        env = gym.wrappers.RescaleAction(env, -ones, ones)
    if seed is not None:
        env.action_space.seed(seed)
    return env


def _needs_rescale(space: gym.spaces.Box) -> bool:
    if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
        raise ValueError(f'action space {space} is unbounded; agents need a bounded box')
    return not (np.allclose(space.low, -1.0) and np.allclose(space.high, 1.0))


def make_vec_env(env_id: str, n_envs: int, seed: int | None = None,
                 env_kwargs: dict[str, Any] | None = None,
                 time_limit: int | None = None) -> SyncVectorEnv:
    """`n_envs` envs stepped in lock-step, with SAME_STEP autoreset.

    With SAME_STEP, a finished sub-env is reset inside the same `step` call: the returned obs is
    the first obs of the next episode and `info['final_obs'][i]` (mask `info['_final_obs']`) holds
    the last obs of the finished one — see `final_observations`.
    """
    fns = [(lambda i=i: make_env(env_id, None if seed is None else seed + i, env_kwargs,
                                 time_limit)) for i in range(n_envs)]
    return SyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)


def is_goal_space(space: gym.Space) -> bool:
    """A goal-conditioned (HER-able) env: Dict obs with observation/achieved/desired goal."""
    return isinstance(space, gym.spaces.Dict) and all(k in space.spaces for k in GOAL_KEYS)


def policy_input(obs: Any) -> np.ndarray:
    """The vector a policy sees: the obs itself, or concat(observation, desired_goal).

    Works for a single obs or a batch (concatenates along the last axis); float32.
    """
    if isinstance(obs, dict):
        return np.concatenate([np.asarray(obs['observation'], np.float32),
                               np.asarray(obs['desired_goal'], np.float32)], axis=-1)
    return np.asarray(obs, np.float32)


def final_observations(next_obs: Any, infos: dict[str, Any]) -> Any:
    """`next_obs` with each finished sub-env's row replaced by its true final observation.

    The result is what a transition's next_obs must be: for a truncated episode the target
    bootstraps from it. Returns a copy (dict of arrays for dict obs) and never mutates input.
    """
    mask = infos.get('_final_obs')
    if mask is None or not np.any(mask):
        return next_obs
    finals = infos['final_obs']
    if isinstance(next_obs, dict):
        out = {k: np.array(v, copy=True) for k, v in next_obs.items()}
        for i in np.flatnonzero(mask):
            for k in out:
                out[k][i] = finals[i][k]
        return out
    out = np.array(next_obs, copy=True)
    for i in np.flatnonzero(mask):
        out[i] = finals[i]
    return out


def obs_dims(space: gym.Space) -> tuple[int, int]:
    """(policy input size, goal size) for an observation space (goal size 0 if not a goal env)."""
    if is_goal_space(space):
        obs_n = int(np.prod(space['observation'].shape))
        goal_n = int(np.prod(space['desired_goal'].shape))
        return obs_n + goal_n, goal_n
    if not isinstance(space, gym.spaces.Box):
        raise ValueError(f'unsupported observation space {space}')
    return int(np.prod(space.shape)), 0


def env_metadata(env: gym.Env, env_id: str, env_kwargs: dict[str, Any] | None = None,
                 time_limit: int | None = None) -> dict[str, Any]:
    """What a bundle records about the training env.

    Robot envs expose `env.unwrapped.contract` (observation/action specs and control period);
    it is passed through as `contract`. Other envs get observation terms [obs] (or
    [observation, desired_goal]) and a `box` action with the env's own bounds.
    """
    obs_space = env.observation_space
    inner = env.unwrapped.action_space
    meta: dict[str, Any] = {
        'env_id': env_id,
        'env_kwargs': dict(env_kwargs or {}),
        'time_limit': time_limit,
        'goal_env': is_goal_space(obs_space),
        'obs_dim': obs_dims(obs_space)[0],
        'act_dim': int(np.prod(env.action_space.shape)),
        'contract': getattr(env.unwrapped, 'contract', None),
        'robot_task': getattr(env.unwrapped, 'robot_task', None),
        'action_low': np.asarray(inner.low, np.float64).ravel().tolist(),
        'action_high': np.asarray(inner.high, np.float64).ravel().tolist(),
    }
    if meta['goal_env']:
        meta['obs_terms'] = [
            {'name': 'observation', 'size': int(np.prod(obs_space['observation'].shape))},
            {'name': 'desired_goal', 'size': int(np.prod(obs_space['desired_goal'].shape))}]
    else:
        meta['obs_terms'] = [{'name': 'obs', 'size': meta['obs_dim']}]
    return meta
