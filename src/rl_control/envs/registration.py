"""Registration of this package's gymnasium env ids, run by `import rl_control`.

The gymnasium convention (`import panda_gym` registers its envs): after `import rl_control`,
`gym.make('rl_control/PandaJointReach-v0')` works. Entry points are strings, so registering
imports neither MuJoCo nor PyBullet; gymnasium imports the env module on the first `make`.
"""
from __future__ import annotations

import gymnasium as gym

MAX_EPISODE_STEPS = 50

# env id -> (entry point, keyword arguments); v0: the ideal velocity servo (panda_reach.py),
# v1: the shaped command path with randomization (franka_reach.py).
ENV_IDS: dict[str, tuple[str, dict[str, object]]] = {
    'rl_control/FrankaReach-v1': ('franka_reach:FrankaReachEnv', {}),
    'rl_control/FrankaReachBullet-v1': ('franka_reach:FrankaReachEnv', {'engine': 'pybullet'}),
    'rl_control/FrankaReachEffort-v1': ('franka_reach:FrankaReachEnv', {'control': 'effort'}),
    'rl_control/PandaJointReach-v0': ('panda_reach:PandaJointReachEnv',
                                      {'reward_type': 'sparse'}),
    'rl_control/PandaJointReachDense-v0': ('panda_reach:PandaJointReachEnv',
                                           {'reward_type': 'dense'}),
    'rl_control/PandaJointReachBullet-v0': ('panda_reach:PandaJointReachBulletEnv',
                                            {'reward_type': 'sparse'}),
    'rl_control/PandaJointReachBulletDense-v0': ('panda_reach:PandaJointReachBulletEnv',
                                                 {'reward_type': 'dense'}),
}


def register_envs() -> None:
    """Register every env id once (idempotent; no passive checker: the tests run check_env)."""
    for env_id, (entry, kwargs) in ENV_IDS.items():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=f'rl_control.envs.{entry}',
                         max_episode_steps=MAX_EPISODE_STEPS, disable_env_checker=True,
                         kwargs=dict(kwargs))
