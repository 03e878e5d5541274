"""Goal-conditioned Panda reaching with joint velocity control, on MuJoCo (here) and PyBullet.

Why this shape: the env is a thin task layer over a raw simulator that looks like a ros2_control
robot (joint state in, joint velocity command out). The observation is built from that joint
state by `sim.contract.build_observation` — the same call the policy server makes on a real
robot's `/joint_states` — and the action goes through `sim.contract.action_to_command`, so a
policy trained here sees and does exactly what it will on hardware. Task logic (goal sampling,
reward, success) is the reach task's (envs/reach_task.py); only `_make_sim` differs.

Registered by `import rl_control` (see `envs/registration.py`):
`rl_control/PandaJointReach-v0` (MuJoCo, sparse reward), `rl_control/PandaJointReachDense-v0`,
`rl_control/PandaJointReachBullet-v0` and `rl_control/PandaJointReachBulletDense-v0` (PyBullet,
see `robots/bullet_panda.py`).
"""
from __future__ import annotations

from typing import Any, Protocol

import gymnasium as gym
from gymnasium import spaces
import numpy as np

from rl_control.contract.spec import (
    ActionSpec,
    ObservationSpec,
    RobotContract,
    action_to_command,
    build_observation,
)
from rl_control.envs.reach_task import ReachTask
from rl_control.robots.panda import PANDA

CONTROL_PERIOD_S = 0.04                      # panda-gym's step too (20 x 2 ms)
ACTION_SCALE = 0.5 * PANDA.qd_max            # |a| = 1 -> half the joint velocity limit


class JointVelocityRobot(Protocol):
    """What the env needs from a simulator; `MujocoArm` and `BulletPanda` provide it."""

    joint_names: tuple[str, ...]

    def reset(self, q: np.ndarray | None = None, qd: np.ndarray | None = None) -> None:
        """Arm at `q` (None: home) with velocity `qd` (None: zero), command zero."""

    def set_joint_velocity_command(self, qd_cmd: np.ndarray) -> None:
        """Hold this arm joint velocity command [rad/s] until the next one."""

    def step(self, duration: float) -> None:
        """Advance the physics by `duration` seconds."""

    def joint_state(self) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray]:
        """(names, positions, velocities, efforts), arm and finger joints, any order."""

    def state_dict(self) -> dict[str, Any]:
        """The complete simulator state (for checkpoints taken mid-episode)."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of state_dict."""


def panda_contract(joint_names: tuple[str, ...] = PANDA.joint_names) -> RobotContract:
    """The contract every Panda reach env (and its bundles) uses."""
    obs = ObservationSpec(joint_names, ReachTask().terms(), 'panda')
    act = ActionSpec('joint_velocity', joint_names, ACTION_SCALE, -PANDA.qd_max, PANDA.qd_max)
    return RobotContract(obs, act, CONTROL_PERIOD_S)


class PandaJointReachBase(gym.Env):
    """Reach a 3-D goal with the Panda's end effector by commanding joint velocities.

    Observation (Dict): `observation` = contract vector without the goal (joint_pos, joint_vel,
    ee_pos), `achieved_goal` = ee_pos, `desired_goal` = goal, all float32, base frame. The
    policy input concat(observation, desired_goal) is the contract vector. Episodes do not end
    on success (a served policy must also hold the goal); TimeLimit truncates at 50 steps.
    """

    metadata = {'render_modes': [], 'render_fps': int(round(1 / CONTROL_PERIOD_S))}

    def __init__(self, reward_type: str = 'sparse', distance_threshold: float = 0.05,
                 init_noise: float = 0.1, terminate_on_success: bool = False) -> None:
        self.task = ReachTask(distance_threshold=distance_threshold, reward_type=reward_type)
        self.contract = panda_contract()
        self._obs_spec = self.contract.obs_spec.without('goal')
        self._ee = self._obs_spec.term_slice('ee_pos')
        self.init_noise = float(init_noise)
        self.terminate_on_success = bool(terminate_on_success)
        self.sim: JointVelocityRobot = self._make_sim()
        n = self._obs_spec.size
        # Generous finite bounds (as panda-gym's +-10): joint angles, rad/s and metres all fit.
        box3 = spaces.Box(-10.0, 10.0, (3,), np.float32)
        self.observation_space = spaces.Dict({
            'observation': spaces.Box(-10.0, 10.0, (n,), np.float32),
            'achieved_goal': box3,
            'desired_goal': box3,
        })
        self.action_space = spaces.Box(-1.0, 1.0, (self.contract.act_spec.size,), np.float32)
        self._goal = np.zeros(3, np.float32)

    def _make_sim(self) -> JointVelocityRobot:
        raise NotImplementedError

    @property
    def goal(self) -> np.ndarray:
        """Current goal (base frame, float32 copy)."""
        return self._goal.copy()

    @goal.setter
    def goal(self, value: np.ndarray) -> None:
        g = np.asarray(value, dtype=np.float32)
        if g.shape != (3,) or not np.all(np.isfinite(g)):
            raise ValueError(f'goal must be 3 finite numbers, got {value!r}')
        self._goal = g

    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray,
                       info: Any) -> np.ndarray:
        """Reward for (batches of) goals, as HER needs; the same rule `step` uses."""
        return self.task.compute_reward(achieved_goal, desired_goal, info)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None,
              ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Home + uniform noise (within limits), zero velocity; a new goal unless given.

        options: {'goal': xyz} fixes the goal, {'q': q7} the start configuration.
        """
        super().reset(seed=seed)
        options = options or {}
        rng = self.np_random
        if 'q' in options:
            q = np.asarray(options['q'], dtype=np.float64)
        else:
            q = self.task.start_pose(PANDA, rng, self.init_noise)
        q = np.clip(q, PANDA.q_min, PANDA.q_max)
        self.sim.reset(q)
        self.goal = options['goal'] if 'goal' in options else self.task.sample_goal(rng)
        obs = self._observe()
        return obs, self._info(obs)

    def step(self, action: np.ndarray,
             ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Map the action by the contract, hold the command for one control period."""
        self.sim.set_joint_velocity_command(action_to_command(self.contract.act_spec, action))
        self.sim.step(CONTROL_PERIOD_S)
        obs = self._observe()
        info = self._info(obs)
        reward = float(self.task.compute_reward(obs['achieved_goal'], obs['desired_goal']))
        terminated = self.terminate_on_success and info['is_success']
        return obs, reward, terminated, False, info

    def _observe(self) -> dict[str, np.ndarray]:
        names, q, qd, _ = self.sim.joint_state()
        vec = build_observation(self._obs_spec, names, q, qd)
        return {'observation': vec, 'achieved_goal': vec[self._ee].copy(),
                'desired_goal': self._goal.copy()}

    def _info(self, obs: dict[str, np.ndarray]) -> dict[str, Any]:
        d = float(np.linalg.norm(obs['achieved_goal'] - obs['desired_goal']))
        return {'is_success': d <= self.task.distance_threshold, 'distance': d}

    def state_dict(self) -> dict[str, Any]:
        """Simulator state, goal and RNG: a checkpoint mid-episode resumes exactly."""
        return {'sim': self.sim.state_dict(), 'goal': self._goal.copy(),
                'rng': self.np_random.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of state_dict."""
        self.sim.load_state_dict(state['sim'])
        self._goal = np.asarray(state['goal'], np.float32).copy()
        self.np_random.bit_generator.state = state['rng']

    def policy_input(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """The vector a policy sees: concat(observation, desired_goal) (= the contract vector)."""
        return np.concatenate([obs['observation'], obs['desired_goal']])


class PandaJointReachEnv(PandaJointReachBase):
    """The reach task on the packaged MuJoCo Panda (fast: no contacts, no rendering)."""

    def _make_sim(self) -> JointVelocityRobot:
        from rl_control.robots.mujoco_arm import MujocoArm
        return MujocoArm(PANDA)


class PandaJointReachBulletEnv(PandaJointReachBase):
    """The reach task of `PandaJointReachEnv` on panda-gym's PyBullet Panda."""

    def _make_sim(self) -> JointVelocityRobot:
        from rl_control.robots.bullet_panda import BulletPanda
        return BulletPanda()

    def close(self) -> None:
        """Release the Bullet client."""
        self.sim.close()
        super().close()
