"""Env factory: gymnasium ids -> envs whose actions live in [-1, 1] (the agents' box).

Also: vector envs whose autoreset keeps the true final observation of every finished episode
(needed to bootstrap through time-limit truncations), in this process (`sync`) or one worker
process per sub-env (`async`), goal-env detection, the policy input vector, and the metadata a
policy bundle records about the env it was trained on.
"""
from __future__ import annotations

import functools
import importlib
import multiprocessing
from typing import Any

import gymnasium as gym
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv
import numpy as np

GOAL_KEYS = ('observation', 'achieved_goal', 'desired_goal')
VEC_ENV_KINDS = ('sync', 'async')


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
                 time_limit: int | None = None, kind: str = 'sync') -> gym.vector.VectorEnv:
    """`n_envs` envs stepped in lock-step, with SAME_STEP autoreset.

    With SAME_STEP, a finished sub-env is reset inside the same `step` call: the returned obs is
    the first obs of the next episode and `info['final_obs'][i]` (mask `info['_final_obs']`) holds
    the last obs of the finished one — see `final_observations`.

    `kind`: 'sync' steps the sub-envs one after another in this process; 'async' steps each in
    its own worker process (`ProcessVectorEnv`), so n_envs > 1 uses that many cores. Sub-env i is
    built and seeded the same way in both, and the worker runs the same SAME_STEP autoreset, so
    a seed gives the same transitions whichever kind steps them.
    """
    if kind == 'async':
        return ProcessVectorEnv(env_id, n_envs, seed, env_kwargs, time_limit)
    if kind != 'sync':
        raise ValueError(f'vec_env: unknown kind {kind!r} (expected one of {VEC_ENV_KINDS})')
    fns = [(lambda i=i: make_env(env_id, None if seed is None else seed + i, env_kwargs,
                                 time_limit)) for i in range(n_envs)]
    return SyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)


class _WorkerEnv(gym.Wrapper):
    """The outermost wrapper of an `async` sub-env: env snapshots through the worker's pipe.

    `AsyncVectorEnv.call(name)` runs a method of each worker's env; these two methods take and
    restore the snapshot of the env UNDER this wrapper, which is exactly the env a `sync` vector
    env holds, so snapshots (and so checkpoints) are the same whichever kind took them. The
    wrapper itself is a pass-through with no state of its own.
    """

    def __init__(self, env: gym.Env, index: int) -> None:
        super().__init__(env)
        self.index = index

    def rl_control_env_state(self) -> dict[str, Any] | None:
        """`snapshot.env_state` of the wrapped env (None where none can be taken)."""
        from rl_control.envs.snapshot import env_state
        return env_state(self.env)

    def rl_control_set_env_state(self, states: list[dict[str, Any]]) -> None:
        """Restore this sub-env's entry of the per-env `states` list."""
        from rl_control.envs.snapshot import set_env_state
        set_env_state(self.env, states[self.index])


def _worker_env(env_id: str, seed: int | None, env_kwargs: dict[str, Any] | None,
                time_limit: int | None, index: int) -> gym.Env:
    """Runs in the worker process (a module function: picklable for any start method)."""
    import rl_control  # noqa: F401  (registers this package's env ids in a fresh interpreter)
    return _WorkerEnv(make_env(env_id, seed, env_kwargs, time_limit), index)


def _mp_context(env_id: str) -> str:
    """The start method: forkserver where the platform has it (as SB3's SubprocVecEnv).

    Plain fork would copy this process's threads' locks (torch's pool, a Ray worker's threads)
    into each child, the classic fork deadlock. The fork server is started once per process;
    it imports the main module, this module and the env's own module first, so each worker is
    a cheap fork of an interpreter that has them (instead of importing mujoco etc. per worker).
    Elsewhere spawn. Like any spawn-style start, a script that builds async envs needs the
    `if __name__ == '__main__':` guard.
    """
    if 'forkserver' not in multiprocessing.get_all_start_methods():
        return 'spawn'
    preload = ['__main__', __name__]
    spec = gym.envs.registry.get(env_id)
    entry = getattr(spec, 'entry_point', None)
    if isinstance(entry, str) and ':' in entry:
        preload.append(entry.split(':')[0])
    # Only takes effect if the server is not running yet (then it keeps what it has).
    multiprocessing.get_context('forkserver').set_forkserver_preload(preload)
    return 'forkserver'


class ProcessVectorEnv(AsyncVectorEnv):
    """gymnasium's AsyncVectorEnv plus what training needs from sub-envs in other processes.

    One worker process per sub-env, shared-memory observations, SAME_STEP autoreset; and

    - `template_env`: an env built in THIS process the way every sub-env is (for the bundle's
      metadata and HER's `compute_reward`, which are the same for every sub-env);
    - `env_states()` / `set_env_states()`: the snapshots of `envs/snapshot.py`, taken inside the
      workers (see `_WorkerEnv`), so exact mid-episode checkpoints work as with `sync`.
    """

    def __init__(self, env_id: str, n_envs: int, seed: int | None = None,
                 env_kwargs: dict[str, Any] | None = None,
                 time_limit: int | None = None) -> None:
        self._template_args = (env_id, seed, env_kwargs, time_limit)
        self._template: gym.Env | None = None
        fns = [functools.partial(_worker_env, env_id, None if seed is None else seed + i,
                                 env_kwargs, time_limit, i) for i in range(n_envs)]
        super().__init__(fns, context=_mp_context(env_id), autoreset_mode=AutoresetMode.SAME_STEP)

    @property
    def template_env(self) -> gym.Env:
        """A local env built like sub-env 0 (built on first use, closed with the vector env)."""
        if self._template is None:
            self._template = make_env(*self._template_args)
        return self._template

    def env_states(self) -> list[dict[str, Any]] | None:
        """Every sub-env's snapshot, taken in its worker; None if any cannot be taken."""
        states = list(self.call('rl_control_env_state'))
        return None if any(s is None for s in states) else states

    def set_env_states(self, states: list[dict[str, Any]]) -> None:
        """Inverse of `env_states` (the same number of sub-envs)."""
        if len(states) != self.num_envs:
            raise ValueError(f'env snapshot: {len(states)} saved envs for {self.num_envs}')
        self.call('rl_control_set_env_state', list(states))

    def close_extras(self, timeout: float | None = None, terminate: bool = False) -> None:
        """Close the workers, then the template env."""
        super().close_extras(timeout=timeout, terminate=terminate)
        if self._template is not None:
            self._template.close()
            self._template = None


def template_env(envs: gym.vector.VectorEnv) -> gym.Env:
    """An env built like sub-env 0 of `envs`, usable in this process (sync: sub-env 0 itself)."""
    if isinstance(envs, ProcessVectorEnv):
        return envs.template_env
    return envs.envs[0]


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


def step_info(infos: dict[str, Any], key: str) -> np.ndarray:
    """`infos[key]` of a SAME_STEP vector step, each finished sub-env's entry from its final step.

    A finished sub-env's `infos[key]` already belongs to the next episode's reset; the value of
    the step that ended the episode is in `infos['final_info']` (gymnasium 1.x).
    """
    out = np.array(infos[key], dtype=np.float64, copy=True) if key in infos else None
    mask = infos.get('_final_info')
    if mask is not None and np.any(mask):
        final = infos['final_info'][key]
        out = np.zeros(len(mask)) if out is None else out
        out[mask] = np.asarray(final, dtype=np.float64)[mask]
    if out is None:
        raise KeyError(f'the step info has no {key!r}')
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
