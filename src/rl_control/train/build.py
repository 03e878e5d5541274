"""Construction of a run's learning objects from its config: device, agent, normalizers, buffer.

Device: agents keep their networks, optimizer states and update tensors on `TrainConfig.device`
('auto' = CUDA when torch sees one, else the CPU); replay buffers stay in host memory (numpy)
and hand each sampled batch over on that device. Random draws are made on the CPU whatever the
device (algos/seeding.py), so a seed means the same numbers on both.
"""
from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from rl_control.envs.factory import is_goal_space, obs_dims, template_env
from rl_control.train.config import TrainConfig


def _takes(agent_cls: type, name: str) -> bool:
    return name in inspect.signature(agent_cls.__init__).parameters


def resolve_device(device: str, agent_cls: type | None = None) -> str:
    """'auto' -> 'cuda' when torch sees a CUDA device, else 'cpu'; anything else unchanged.

    With `agent_cls`, 'auto' also means 'cpu' for an agent whose constructor takes no device
    (so a newly added algorithm still runs on a GPU machine, on the CPU).
    """
    if device != 'auto':
        return device
    if agent_cls is not None and not _takes(agent_cls, 'device'):
        return 'cpu'
    import torch
    return 'cuda' if torch.cuda.is_available() else 'cpu'


def make_agent(spec: Any, obs_dim: int, act_dim: int, algo_cfg: Any, n_envs: int,
               seed: int, device: str = 'cpu') -> Any:
    """The algorithm's agent on `device` (a resolved name, see `resolve_device`).

    n_envs and device are passed to agents whose constructor takes them.
    """
    kwargs: dict[str, Any] = {'seed': seed}
    if _takes(spec.agent_cls, 'n_envs'):
        kwargs['n_envs'] = n_envs
    if _takes(spec.agent_cls, 'device'):
        kwargs['device'] = device
    elif device != 'cpu':
        raise ValueError(f'{spec.name} cannot run on {device!r} (its agent takes no device)')
    return spec.agent_cls(obs_dim, act_dim, algo_cfg, **kwargs)


def make_normalizer(cfg: TrainConfig, obs_dim: int) -> Any:
    """A running observation normalizer, or None when `normalize_obs` is off."""
    if not cfg.normalize_obs:
        return None
    from rl_control.algos.normalizer import RunningNormalizer
    return RunningNormalizer(obs_dim)


def make_reward_scaler(cfg: TrainConfig, algo_cfg: Any) -> Any:
    """SB3 VecNormalize-style reward scaling, or None when `normalize_reward` is off.

    Its discount is the algorithm's gamma, as RL-Zoo sets VecNormalize's (`normalize: true`).
    """
    if not cfg.normalize_reward:
        return None
    from rl_control.algos.normalizer import RewardScaler
    return RewardScaler(cfg.n_envs, gamma=algo_cfg.gamma)


def make_buffer(cfg: TrainConfig, algo_cfg: Any, envs: Any, seed: Any,
                device: str = 'cpu') -> Any:
    """Uniform replay, or HER replay (needs a goal env) when the config has `her`.

    Sampled batches come out on `device` (a resolved name).
    """
    from rl_control.algos import buffers

    space = envs.single_observation_space
    obs_dim, goal_dim = obs_dims(space)
    act_dim = int(np.prod(envs.single_action_space.shape))
    # numpy allocates lazily: a 1e6 buffer costs memory only as it fills.
    capacity = int(algo_cfg.buffer_size)
    if cfg.her is None:
        return buffers.ReplayBuffer(obs_dim, act_dim, capacity, seed=seed, device=device)
    if not is_goal_space(space):
        raise ValueError(f'her: {cfg.env} has no goal observations '
                         '(observation/achieved_goal/desired_goal)')
    env = template_env(envs).unwrapped
    return buffers.HerReplayBuffer(obs_dim - goal_dim, goal_dim, act_dim, capacity,
                                   env.compute_reward, n_envs=cfg.n_envs, k=cfg.her.k,
                                   strategy=cfg.her.strategy, seed=seed, device=device,
                                   info_keys=tuple(getattr(env, 'her_info_keys', ())))
