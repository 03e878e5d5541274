"""rl_control: actor-critic RL for robot arms, trained in simulation, served over ROS 2.

Importing the package registers its gymnasium env ids (as `import panda_gym` does), so
`gym.make('rl_control/PandaJointReach-v0')` works after `import rl_control`. Registration
imports gymnasium only (about 60 ms), never a simulator or torch.
"""

__version__ = '0.2.0'


def _register_envs() -> None:
    try:
        from rl_control.envs.registration import register_envs
    except ImportError:  # gymnasium missing: a serving-only install still imports
        return
    register_envs()


_register_envs()
