"""Registration of this package's gymnasium env ids, run by `import rl_control`.

The gymnasium convention (`import panda_gym` registers its envs): after `import rl_control`,
`gym.make('rl_control/PandaJointReach-v0')` works. Entry points are strings, so registering
imports neither MuJoCo nor PyBullet; gymnasium imports the env module on the first `make`.
"""
from __future__ import annotations

import gymnasium as gym

MAX_EPISODE_STEPS = 50

# env id -> (entry point in rl_control.envs.panda_reach, keyword arguments)
ENV_IDS: dict[str, tuple[str, dict[str, object]]] = {
    'rl_control/PandaJointReach-v0': ('PandaJointReachEnv', {'reward_type': 'sparse'}),
    'rl_control/PandaJointReachDense-v0': ('PandaJointReachEnv', {'reward_type': 'dense'}),
    'rl_control/PandaJointReachBullet-v0': ('PandaJointReachBulletEnv',
                                            {'reward_type': 'sparse'}),
    'rl_control/PandaJointReachBulletDense-v0': ('PandaJointReachBulletEnv',
                                                 {'reward_type': 'dense'}),
}


def register_envs() -> None:
    """Register every env id once (idempotent; no passive checker: the tests run check_env)."""
    for env_id, (entry, kwargs) in ENV_IDS.items():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=f'rl_control.envs.panda_reach:{entry}',
                         max_episode_steps=MAX_EPISODE_STEPS, disable_env_checker=True,
                         kwargs=dict(kwargs))
