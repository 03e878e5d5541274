"""Franka reach: the motion the arm will really make, randomized as the real world differs.

`rl_control/FrankaReach-v2` (joint velocity targets) and `rl_control/FrankaReachEffort-v2`
(joint torques on top of gravity compensation), and their v1 predecessors, train on
`envs.shaped_arm.ShapedArm`: the policy server's own shaper (or torque shaper) drives a
simulated arm (`robot`: any registered robot profile, the Panda and the FR3 shipped), on MuJoCo
or PyBullet (`engine`), inside that profile's limits. The observation is the contract's
(`build_observation` on the measured joint state, the same call the server makes), the task is
a registered task (`task`, default the reach task of envs/reach_task.py, with a 2 cm success
distance by default (`success_distance`) over the goal region x 0.45-0.75, y -0.15-0.15,
z 0-0.3 m in the base frame).

v1 (`hold=False`) rewards being within the distance at any moment (-1 unless within). v2
(`hold=True`) asks for arriving AND stopping, in `envs.reach_metrics`'s words: its reward
(`compute_reward`) pays for being within the distance, more for resting there and the closer
the better, and charges every joint's motion; its `is_success` is *held* (within and at rest
over the episode's last second) and its episodes are 4 s, as the benchmark's. The rest and
motion signals belong to the transition, not to the goal, so they travel in `info` (from the
noise-free state) and HER stores them with each transition (`her_info_keys`) and hands them
back unchanged when it relabels the goal. The contract's action dead band and exponent
(`action_deadband`, `action_exponent`) make "stay" a region of the action box.

Domain randomization (on by default, `randomize=False` for nominal dynamics; the ranges are a
constructor argument and are recorded in policy.yaml), each episode drawn from the env's seeded
RNG: action latency (0 to 2 control periods, on top of the shaper's lead), control-period jitter
(+-4 ms per tick), observation noise on joint positions and velocities, joint damping (x 0.5 to
2) and dry friction (0 to 0.2 Nm), and the initial state (home + uniform noise of up to
`init_noise` per joint).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
from gymnasium import spaces
import numpy as np

from rl_control.contract import (
    ActionSpec,
    ObservationSpec,
    RobotContract,
    action_to_command,
    build_observation,
    sections,
)
from rl_control.contract.actions import action_type_for_control
from rl_control.contract.shaper import GRID_S, ShaperConfig
from rl_control.contract.torque import TorqueConfig
from rl_control.envs.reach_metrics import HOLD_S, REST_EE_SPEED, REST_JOINT_SPEED, at_rest
from rl_control.envs.shaped_arm import ShapedArm
from rl_control.envs.tasks import task_class
from rl_control.robots.profiles import get_profile

CONTROL_PERIOD_S = 0.04
MOVING_SPEED = 0.2  # rad/s: v2's motion term counts a joint this fast as fully moving
HOLD_WEIGHTS = (0.2, 0.3, 0.2)  # v2 reward: distance within, motion, not at rest within


@dataclass(frozen=True)
class Randomization:
    """Ranges of the per-episode randomization (recorded in policy.yaml `randomization:`)."""

    action_latency_s: tuple[float, float] = (0.0, 0.08)
    jitter_s: float = 0.004
    joint_pos_noise: float = 0.0005
    joint_vel_noise: float = 0.005
    damping_scale: tuple[float, float] = (0.5, 2.0)
    frictionloss: tuple[float, float] = (0.0, 0.2)
    init_noise: float = 0.1

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Randomization:
        """Defaults overridden by `d` (unknown keys are an error naming them)."""
        return sections.ranges_from_dict(cls, d, 'randomization')

    def to_yaml(self) -> dict[str, Any]:
        """Plain types for policy.yaml."""
        return sections.ranges_to_yaml(self)


NOMINAL = Randomization(action_latency_s=(0.0, 0.0), jitter_s=0.0, joint_pos_noise=0.0,
                        joint_vel_noise=0.0, damping_scale=(1.0, 1.0), frictionloss=(0.0, 0.0),
                        init_noise=0.1)


@dataclass
class _Episode:
    latency: float = 0.0
    last_now: float = -1.0
    tick: int = 0
    draws: dict[str, Any] = field(default_factory=dict)
    ee: tuple[float, ...] = ()  # the true end effector at the last control period
    held_steps: int = 0  # control periods in a row within the distance and at rest


class FrankaReachEnv(gym.Env):
    """Reach a 3-D goal with a Franka's end effector through the shaped command path."""

    metadata = {'render_modes': [], 'render_fps': int(round(1 / CONTROL_PERIOD_S))}

    def __init__(self, robot: str = 'panda', engine: str = 'mujoco', control: str = 'velocity',
                 reward_type: str = 'sparse', success_distance: float = 0.02,
                 randomize: bool = True, randomization: dict[str, Any] | None = None,
                 shaper: dict[str, Any] | None = None, physics_dt: float = 0.002,
                 action_history: int = 3, hold: bool = False, action_deadband: float = 0.0,
                 action_exponent: float = 1.0, torque_damping: float = 0.0,
                 hold_weights: tuple[float, float, float] = HOLD_WEIGHTS,
                 task: str = 'reach') -> None:
        self.profile = get_profile(robot)
        self.control = control
        self.task = task_class(task)(distance_threshold=success_distance,
                                     reward_type=reward_type)
        if len(hold_weights) != 3 or min(hold_weights) < 0 or sum(hold_weights[:2]) > 1:
            raise ValueError(f'hold_weights must be 3 non-negative numbers (distance, motion, '
                             f'rest) with distance + motion <= 1, got {hold_weights!r}')
        self.hold = bool(hold)
        self.hold_weights = tuple(float(w) for w in hold_weights)
        self.her_info_keys = ('joint_speed', 'ee_speed', 'motion') if self.hold else ()
        self.randomization = Randomization.from_dict(randomization) if randomize else NOMINAL
        self.shaper_cfg = ShaperConfig.from_yaml(shaper, CONTROL_PERIOD_S)
        names = self.profile.joint_names
        obs = ObservationSpec(names, self.task.terms(action_history), self.profile.name)
        kind = action_type_for_control(control)
        lim = kind.limits(self.profile)
        act = ActionSpec(kind.name, names, kind.scale * lim, -lim, lim, action_deadband,
                         action_exponent)
        self.contract = RobotContract(obs, act, CONTROL_PERIOD_S)
        self._obs_spec = obs.without('goal')
        self._ee = self._obs_spec.term_slice(self.task.achieved_term)
        torque = TorqueConfig(hold_damping=torque_damping)
        self.sim = ShapedArm(self.profile, self.shaper_cfg, engine, control, physics_dt, torque)
        box3 = spaces.Box(-10.0, 10.0, (3,), np.float32)
        self.observation_space = spaces.Dict({
            'observation': spaces.Box(-10.0, 10.0, (self._obs_spec.size,), np.float32),
            'achieved_goal': box3, 'desired_goal': box3})
        self.action_space = spaces.Box(-1.0, 1.0, (act.size,), np.float32)
        self._goal = np.zeros(3)
        self._actions: list[np.ndarray] = []  # the shaped targets as actions, newest first
        self._ep = _Episode()
        self.robot_task = {
            'robot': self.profile.name,
            'shaper': self.shaper_cfg.to_yaml() if kind.shaping == 'motion' else None,
            'torque': ({'hold_damping': float(torque_damping)} if kind.shaping == 'torque'
                       else None),
            'randomization': self.randomization.to_yaml() if randomize else None,
            **self.task.to_yaml(self.profile.base_frame),
            'hold': ({'weights': dict(zip(('distance', 'motion', 'rest'), self.hold_weights,
                                          strict=True)),
                      'moving_speed': MOVING_SPEED, 'rest_joint_speed': REST_JOINT_SPEED,
                      'rest_ee_speed': REST_EE_SPEED, 'hold_s': HOLD_S} if self.hold else None),
            'start_pose': self.profile.home.tolist(),  # ~/move_to_start (serve/start_pose.py)
        }

    # -- gymnasium ----------------------------------------------------------------------------
    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray,
                       info: Any) -> np.ndarray:
        """Vectorized reward for HER relabelling: the task's rule.

        v2: `info` maps `joint_speed`, `ee_speed` and `motion` to one value per transition (a
        step's own info, or HER's stored columns). With d the distance, D the success distance
        and (w_d, w_m, w_r) = `hold_weights`:
        r = -1 outside D, else -w_d * d / D - w_r * [not at rest]; then - w_m * motion
        everywhere (motion: the mean over joints of |qd| / 0.2 rad/s, capped at 1). Reaching
        dominates (being within pays at least 1 - w_d - w_r more than not), every joint has
        its own reason to slow down, and resting closer pays more.
        """
        if not self.hold:
            return self.task.compute_reward(achieved_goal, desired_goal, info)
        d = np.linalg.norm(np.asarray(achieved_goal) - np.asarray(desired_goal), axis=-1)
        w_d, w_m, w_r = self.hold_weights
        rest = at_rest(info['joint_speed'], info['ee_speed'])
        inside = -w_d * d / self.task.distance_threshold - w_r * (1.0 - rest)
        return (np.where(d <= self.task.distance_threshold, inside, -1.0)
                - w_m * np.asarray(info['motion'])).astype(np.float32)

    def _held_now(self, distance: Any, info: Any) -> Any:
        """Within the success distance and at rest (vectorized)."""
        return ((np.asarray(distance) <= self.task.distance_threshold)
                & at_rest(info['joint_speed'], info['ee_speed']))

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None,
              ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start at rest near home (randomized), with a goal; options: {'goal', 'q'}."""
        super().reset(seed=seed)
        options, rng, r, prof = options or {}, self.np_random, self.randomization, self.profile
        if 'q' in options:
            q = np.asarray(options['q'], np.float64)
        else:
            q = self.task.start_pose(prof, rng, r.init_noise)
        margin = self.shaper_cfg.position_margin
        self.sim.reset(np.clip(q, prof.q_min + margin, prof.q_max - margin))
        latency = round(rng.uniform(*r.action_latency_s) / GRID_S) * GRID_S
        damping = rng.uniform(*r.damping_scale, prof.dof)
        friction = rng.uniform(*r.frictionloss, prof.dof)
        self.sim.set_dynamics(damping, friction)
        self._ep = _Episode(latency, -1.0, 0, {'action_latency_s': latency,
                                                'damping_scale': damping.tolist(),
                                                'frictionloss': friction.tolist()})
        self._goal = (np.asarray(options['goal'], np.float64) if 'goal' in options
                      else self.task.sample_goal(rng))
        self._actions = []
        self._ep.ee = tuple(self.true_ee_position())
        obs = self._observe()
        return obs, self._info(obs)

    def step(self, action: np.ndarray,
             ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """The action as the server would apply it (latency, jitter), one control period."""
        spec = self.contract.act_spec
        cmd = action_to_command(spec, action)
        self._actions = [np.clip(cmd / spec.scale, -1.0, 1.0), *self._actions[:2]]
        delay = 0.0
        if self.sim.plans:  # the plan starts when the server would plan it: latency, jitter
            ep, r = self._ep, self.randomization
            jitter = self.np_random.uniform(-r.jitter_s, r.jitter_s) if r.jitter_s else 0.0
            delay = max(ep.latency + round(jitter / GRID_S) * GRID_S, 0.0)
            now = max(self.sim.t + delay, ep.last_now)  # ticks never run backwards
            ep.last_now = now
            delay = now - self.sim.t
        self.sim.command(cmd, delay)
        self.sim.step(CONTROL_PERIOD_S)
        self._ep.tick += 1
        obs = self._observe()
        info = self._info(obs)
        if self.hold:
            info.update(self._motion())
        reward = float(self.compute_reward(obs['achieved_goal'], obs['desired_goal'], info))
        if self.hold:
            held = bool(self._held_now(info['distance'], info))
            self._ep.held_steps = self._ep.held_steps + 1 if held else 0
            info['is_success'] = self._ep.held_steps >= round(HOLD_S / CONTROL_PERIOD_S)
        return obs, reward, False, False, info

    def _motion(self) -> dict[str, float]:
        """The noise-free rest signal of this control period: fastest joint, end-effector speed."""
        _, q, qd, _ = self.sim.joint_state()
        n = self.profile.dof
        ee = np.array(self.profile.ee_position(q[:n].tolist()))
        ee_speed = float(np.linalg.norm(ee - np.asarray(self._ep.ee))) / CONTROL_PERIOD_S
        self._ep.ee = tuple(ee)
        speeds = np.abs(qd[:n])
        return {'joint_speed': float(np.max(speeds)), 'ee_speed': ee_speed,
                'motion': float(np.mean(np.minimum(speeds / MOVING_SPEED, 1.0)))}

    def _observe(self) -> dict[str, np.ndarray]:
        names, q, qd, _ = self.sim.joint_state()
        r, rng = self.randomization, self.np_random
        n, fingers = self.profile.dof, np.zeros(len(names) - self.profile.dof)
        if r.joint_pos_noise:
            q = q + np.r_[rng.normal(0.0, r.joint_pos_noise, n), fingers]
        if r.joint_vel_noise:
            qd = qd + np.r_[rng.normal(0.0, r.joint_vel_noise, n), fingers]
        vec = build_observation(self._obs_spec, names, q, qd, actions=self._actions)
        return {'observation': vec, 'achieved_goal': vec[self._ee].copy(),
                'desired_goal': self._goal.astype(np.float32)}

    def _info(self, obs: dict[str, np.ndarray]) -> dict[str, Any]:
        d = float(np.linalg.norm(obs['achieved_goal'] - obs['desired_goal']))
        return {'is_success': d <= self.task.distance_threshold, 'distance': d,
                'reflexes': self.sim.reflexes, 'reflex': self.sim.first_reflex}

    def true_ee_position(self) -> np.ndarray:
        """The achieved goal from the noiseless joint state (benchmarks measure with this)."""
        _, q, _, _ = self.sim.joint_state()
        return self.task.achieved(self.profile, q[:self.profile.dof])

    # -- snapshots ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Arm, goal, episode draws and RNG: a checkpoint mid-episode resumes exactly."""
        ep = self._ep
        return {'sim': self.sim.state_dict(), 'goal': self._goal.copy(),
                'actions': [a.copy() for a in self._actions],
                'episode': (ep.latency, ep.last_now, ep.tick, dict(ep.draws), ep.ee,
                            ep.held_steps),
                'rng': self.np_random.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of state_dict."""
        self.sim.load_state_dict(state['sim'])
        self._goal = np.array(state['goal'])
        self._actions = [np.array(a) for a in state['actions']]
        self._ep = _Episode(*state['episode'])
        self.np_random.bit_generator.state = state['rng']

    def close(self) -> None:
        """Release the simulator."""
        self.sim.close()
        super().close()
