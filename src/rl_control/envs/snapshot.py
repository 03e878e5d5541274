"""Env state snapshots, so that a checkpoint can be taken in the middle of an episode.

Why: a checkpoint that ended every running episode (and reseeded the envs) made
`checkpoint_every` a learning hyperparameter. With a snapshot of each env's complete dynamic
state, a resumed run continues the very episodes the interrupted one was in, bit for bit.

A snapshot holds the wrappers' counters (TimeLimit's elapsed steps, the order enforcer's flag)
and the unwrapped env's state, for the envs whose state can be captured exactly:
- envs with `state_dict()` / `load_state_dict()` (this package's Panda envs);
- gymnasium MuJoCo envs: MuJoCo's full integration state (`mj_getState` with
  `mjSTATE_INTEGRATION`: time, qpos, qvel, act, warm start, controls, applied forces, ...)
  and the env's RNG;
- gymnasium classic-control envs (their plain Python/numpy attributes and the env's RNG).
Every snapshot is plain data (numbers, strings, numpy arrays, dicts and lists), never a pickle:
a checkpoint is loaded with `torch.load(weights_only=True)`, which builds nothing else.
Anything else (e.g. panda-gym's PyBullet envs, whose simulator state cannot be saved to a
file) returns None, and the caller falls back to ending episodes at the checkpoint.

Vector envs: a SyncVectorEnv's sub-envs are snapshotted here, in this process; an `async`
vector env (`factory.ProcessVectorEnv`) takes the same snapshots inside its worker processes
and sends them back through the pipes, so both kinds give the same list for the same state (a
checkpoint of either kind resumes with either kind).
"""
from __future__ import annotations

import copy
import sys
from typing import Any

import gymnasium as gym
import numpy as np

_PLAIN = (bool, int, float, str, type(None), np.ndarray, np.generic)


def _plain_attrs(obj: Any) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in vars(obj).items()
            if k != 'env' and isinstance(v, _PLAIN)}


def _unwrapped_state(env: gym.Env) -> tuple[str, Any] | None:
    if callable(getattr(env, 'state_dict', None)) and callable(
            getattr(env, 'load_state_dict', None)):
        return 'state_dict', env.state_dict()
    mujoco_env = _mujoco_env_class()
    if mujoco_env is not None and isinstance(env, mujoco_env):
        import mujoco

        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        state = np.empty(mujoco.mj_stateSize(env.model, spec))
        mujoco.mj_getState(env.model, env.data, state, spec)
        return 'mujoco', {'state': state, 'rng': env.np_random.bit_generator.state,
                          'attrs': _plain_attrs(env)}
    if type(env).__module__.startswith('gymnasium.envs.classic_control'):
        return 'plain', {'rng': env.np_random.bit_generator.state, 'attrs': _plain_attrs(env)}
    return None


def _mujoco_env_class() -> type | None:
    """The class of gymnasium's MuJoCo envs if its module is loaded, else None.

    Not imported here: an env of that class has imported it already, so if it is not loaded no
    env is a MujocoEnv, and importing it (and mujoco) would lengthen the start-up of every
    classic-control run for nothing.
    """
    module = sys.modules.get('gymnasium.envs.mujoco.mujoco_env')
    return getattr(module, 'MujocoEnv', None)


def env_state(env: gym.Env) -> dict[str, Any] | None:
    """A snapshot of `env` (wrappers included), or None where none can be taken exactly."""
    wrappers = []
    inner: Any = env
    while isinstance(inner, gym.Wrapper):
        wrappers.append(_plain_attrs(inner))
        inner = inner.env
    state = _unwrapped_state(inner)
    if state is None:
        return None
    kind, value = state
    return {'kind': kind, 'env': value, 'wrappers': wrappers}


def set_env_state(env: gym.Env, snapshot: dict[str, Any]) -> None:
    """Restore a snapshot taken by `env_state` on an env built the same way."""
    inner: Any = env
    for attrs in snapshot['wrappers']:
        if not isinstance(inner, gym.Wrapper):
            raise ValueError('env snapshot: the wrapper chain differs from the saved one')
        vars(inner).update(copy.deepcopy(attrs))
        inner = inner.env
    kind, value = snapshot['kind'], snapshot['env']
    if kind == 'state_dict':
        inner.load_state_dict(value)
    elif kind == 'mujoco':
        import mujoco

        # No mj_forward afterwards: it would overwrite the solver's warm start, and the next
        # mj_step recomputes everything else from the integration state anyway.
        mujoco.mj_setState(inner.model, inner.data, np.asarray(value['state']),
                           mujoco.mjtState.mjSTATE_INTEGRATION)
        inner.np_random.bit_generator.state = value['rng']
        vars(inner).update(copy.deepcopy(value['attrs']))
    elif kind == 'plain':
        inner.np_random.bit_generator.state = value['rng']
        vars(inner).update(copy.deepcopy(value['attrs']))
    else:  # 'pickle' (before plain snapshots) is never unpickled
        raise ValueError(f'env snapshot: kind {kind!r} cannot be restored (a pickled snapshot '
                         'of an older rl_control is not loaded: it could execute code)')


def vector_env_state(envs: gym.vector.VectorEnv) -> list[dict[str, Any]] | None:
    """Snapshots of every sub-env (sync or async vector env), or None if any cannot be taken."""
    if hasattr(envs, 'env_states'):  # factory.ProcessVectorEnv: taken in the workers
        return envs.env_states()
    states = [env_state(e) for e in envs.envs]
    return None if any(s is None for s in states) else states


def set_vector_env_state(envs: gym.vector.VectorEnv, states: list[dict[str, Any]]) -> None:
    """Inverse of `vector_env_state` (the same number of sub-envs)."""
    if hasattr(envs, 'set_env_states'):
        envs.set_env_states(states)
        return
    if len(states) != len(envs.envs):
        raise ValueError(f'env snapshot: {len(states)} saved envs for {len(envs.envs)}')
    for env, state in zip(envs.envs, states, strict=True):
        set_env_state(env, state)
