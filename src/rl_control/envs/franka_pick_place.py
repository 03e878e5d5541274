"""Franka pick and place: the hand, a cube and a table, through the reach task's command path.

`rl_control/FrankaPickPlace-v1`: a Panda (any registered profile with a MuJoCo model) with the
Franka Hand (robots/hand_cell.py) picks a 4 cm cube off a table and puts it at a goal on the
table or in the air (envs/pick_place_task.py). The arm's action goes through the same contract
and `contract.shaper.Shaper` as reach (`envs.shaped_arm.ShapedArm`, the profile's limits, the
1 kHz limit check); the hand's action is a binary open/close with hysteresis sent on change
(contract/gripper.py), executed with franka_gripper's semantics, latency and speed
(robots/franka_hand.py). The action type (`action`) is `ee_velocity` (default: an end-effector
velocity turned into joint velocity targets, contract/cartesian.py) or `joint_velocity`.

Observations are a real cell's: joint states (noisy), the hand's width (its joint state) and
last command, the cube's pose from a tracker (robots/tracker.py: 30 Hz frames, late and noisy)
and the goal. The achieved goal is the tracked cube position. Reward (vectorized for HER):
-1 with the cube farther than the success distance from the goal; within it,
-w_d * d / D - w_r * [cube or arm not at rest]; minus w_m * (arm motion) everywhere. The rest
and motion signals are per transition (`her_info_keys`, from the true state) and ride unchanged
through HER's relabelling, as in reach v2. `is_success` is *held* (envs/pick_metrics.py):
within the distance and at rest over the episode's last second, with no drop; contact reflexes
(robots/contact.py) are counted like motion reflexes (`info['reflexes']`).

Domain randomization (on by default; each episode from the env's seeded RNG): reach's (tick
latency and jitter, joint noise, damping and friction, start pose), and the cube's mass and
friction, the tracker's delay and noise, the hand's command latency. `start_grasped` (a
fraction, 0 by default) starts that share of episodes with the cube already in the closed hand,
a curriculum the HER paper used for this task (Andrychowicz et al. 2017, section 4.1).
"""
from __future__ import annotations

from dataclasses import dataclass
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
    gripper_entry,
    sections,
)
from rl_control.contract.actions import action_type
from rl_control.contract.cartesian import CartesianConfig
from rl_control.contract.gripper import GripperSpec, GripperSwitch
from rl_control.contract.shaper import GRID_S, ShaperConfig
from rl_control.envs import pick_metrics
from rl_control.envs.reach_metrics import HOLD_S, at_rest
from rl_control.envs.shaped_arm import ShapedArm
from rl_control.envs.tasks import task_class
from rl_control.robots.contact import DEFAULT as COLLISION
from rl_control.robots.hand_cell import CellPhysics
from rl_control.robots.profiles import get_profile
from rl_control.robots.tracker import ObjectTracker

CONTROL_PERIOD_S = 0.04
MOVING_SPEED = 0.2  # rad/s: a joint this fast counts as fully moving (reach v2's)


@dataclass(frozen=True)
class PickRandomization:
    """Per-episode ranges (policy.yaml `randomization:`); reach's first, then the cell's."""

    action_latency_s: tuple[float, float] = (0.0, 0.0)
    jitter_s: float = 0.004
    joint_pos_noise: float = 0.0005
    joint_vel_noise: float = 0.005
    damping_scale: tuple[float, float] = (0.5, 2.0)
    frictionloss: tuple[float, float] = (0.0, 0.2)
    init_noise: float = 0.1
    cube_mass: tuple[float, float] = (0.05, 0.3)
    cube_friction: tuple[float, float] = (0.6, 1.2)
    tracker_delay_s: tuple[float, float] = (0.02, 0.1)
    tracker_position_noise: tuple[float, float] = (0.0, 0.002)
    tracker_orientation_noise: float = 0.02
    hand_latency_s: tuple[float, float] = (0.02, 0.1)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> PickRandomization:
        """Defaults overridden by `d` (unknown keys are an error naming them)."""
        return sections.ranges_from_dict(cls, d, 'randomization')

    def to_yaml(self) -> dict[str, Any]:
        """Plain types for policy.yaml."""
        return sections.ranges_to_yaml(self)


NOMINAL = PickRandomization(jitter_s=0.0, joint_pos_noise=0.0, joint_vel_noise=0.0,
                            damping_scale=(1.0, 1.0), frictionloss=(0.0, 0.0),
                            cube_mass=(0.1, 0.1), cube_friction=(1.0, 1.0),
                            tracker_delay_s=(0.05, 0.05), tracker_position_noise=(0.0, 0.0),
                            tracker_orientation_noise=0.0, hand_latency_s=(0.05, 0.05))
"""Nominal dynamics (`randomize=False`): a 100 g cube, a 50 ms tracker and hand, no noise."""


class FrankaPickPlaceEnv(gym.Env):
    """Pick a cube and hold it at a goal (module docstring)."""

    metadata = {'render_modes': ['rgb_array'], 'render_fps': int(round(1 / CONTROL_PERIOD_S))}

    def __init__(self, robot: str = 'panda', action: str = 'ee_velocity',
                 reward_type: str = 'sparse', success_distance: float = 0.05,
                 randomize: bool = True, randomization: dict[str, Any] | None = None,
                 shaper: dict[str, Any] | None = None, physics_dt: float = 0.002,
                 action_history: int = 1, action_deadband: float = 0.1,
                 action_exponent: float = 2.0, gripper: dict[str, Any] | None = None,
                 cartesian: dict[str, Any] | None = None, goal_air: float = 0.7,
                 start_grasped: float = 0.0,
                 hold_weights: tuple[float, float, float] = (0.2, 0.05, 0.3),
                 task: str = 'pick_place', render_mode: str | None = None) -> None:
        self.profile = prof = get_profile(robot)
        self.task = task_class(task)(distance_threshold=success_distance,
                                     reward_type=reward_type, goal_air=goal_air)
        if len(hold_weights) != 3 or min(hold_weights) < 0 or sum(hold_weights[:2]) > 1:
            raise ValueError(f'hold_weights must be 3 non-negative numbers (distance, motion, '
                             f'rest) with distance + motion <= 1, got {hold_weights!r}')
        self.hold_weights = tuple(float(w) for w in hold_weights)
        self.start_grasped = float(start_grasped)
        self.render_mode = render_mode
        self.her_info_keys = ('joint_speed', 'ee_speed', 'cube_speed', 'motion')
        self.randomization = (PickRandomization.from_dict(randomization) if randomize
                              else NOMINAL)
        self.shaper_cfg = ShaperConfig.from_yaml(shaper, CONTROL_PERIOD_S)
        kind = action_type(action)
        if kind.shaping != 'motion':
            raise ValueError(f'action must be a motion action (ee_velocity or joint_velocity), '
                             f'got {action!r}')
        lim = kind.limits(prof)
        act = ActionSpec(kind.name, prof.joint_names, kind.scale * lim, -kind.scale * lim,
                         kind.scale * lim, action_deadband, action_exponent,
                         gripper=GripperSpec.from_yaml(gripper),
                         cartesian=CartesianConfig.from_yaml(cartesian) if kind.cartesian
                         else None)
        obs = ObservationSpec(prof.joint_names, self.task.terms(action_history), prof.name)
        self.contract = RobotContract(obs, act, CONTROL_PERIOD_S)
        self._obs_spec = obs.without('goal')
        self.cell = CellPhysics(prof, timestep=physics_dt)
        self.sim = ShapedArm(prof, self.shaper_cfg, 'mujoco', 'velocity', physics_dt,
                             physics=self.cell, collision=COLLISION)
        self.tracker = ObjectTracker()
        self.switch = GripperSwitch(act.gripper)
        box3 = spaces.Box(-10.0, 10.0, (3,), np.float32)
        self.observation_space = spaces.Dict({
            'observation': spaces.Box(-10.0, 10.0, (self._obs_spec.size,), np.float32),
            'achieved_goal': box3, 'desired_goal': box3})
        self.action_space = spaces.Box(-1.0, 1.0, (act.size,), np.float32)
        self._goal = np.zeros(3)
        self._actions: list[np.ndarray] = []
        self._ep: dict[str, Any] = {}
        self._renderer: Any = None
        self.robot_task = {
            'robot': prof.name, 'shaper': self.shaper_cfg.to_yaml(),
            'randomization': self.randomization.to_yaml() if randomize else None,
            **self.task.to_yaml(prof.base_frame),
            'hold': {'weights': dict(zip(('distance', 'motion', 'rest'), self.hold_weights,
                                         strict=True)),
                     'moving_speed': MOVING_SPEED, 'hold_s': HOLD_S,
                     'rest_cube_speed': pick_metrics.REST_CUBE_SPEED},
            'tracker': {'rate_hz': self.tracker.rate_hz},
            'start_pose': prof.home.tolist(),
        }

    # -- reward (HER) -------------------------------------------------------------------------
    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray,
                       info: Any) -> np.ndarray:
        """Vectorized reward (module docstring); `info` columns are per transition.

        `info` may also be a sequence of per-transition dicts (SB3's HerReplayBuffer passes
        its stored infos so).
        """
        if not isinstance(info, dict):
            info = {k: np.array([i[k] for i in info], np.float64) for k in self.her_info_keys}
        d = np.linalg.norm(np.asarray(achieved_goal) - np.asarray(desired_goal), axis=-1)
        w_d, w_m, w_r = self.hold_weights
        rest = at_rest(info['joint_speed'], info['ee_speed']) & (
            np.asarray(info['cube_speed']) < pick_metrics.REST_CUBE_SPEED)
        inside = -w_d * d / self.task.distance_threshold - w_r * (1.0 - rest)
        return (np.where(d <= self.task.distance_threshold, inside, -1.0)
                - w_m * np.asarray(info['motion'])).astype(np.float32)

    # -- episodes -----------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None,
              ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Arm near home, hand open, cube on the table, a goal.

        Options {'goal', 'q', 'cube', 'grasped'} fix them.
        """
        super().reset(seed=seed)
        options, rng, r, prof = options or {}, self.np_random, self.randomization, self.profile
        q = (np.asarray(options['q'], np.float64) if 'q' in options
             else self.task.start_pose(prof, rng, r.init_noise))
        margin = self.shaper_cfg.position_margin
        q = np.clip(q, prof.q_min + margin, prof.q_max - margin)
        draws = {'action_latency_s': round(rng.uniform(*r.action_latency_s) / GRID_S) * GRID_S,
                 'damping_scale': rng.uniform(*r.damping_scale, prof.dof),
                 'frictionloss': rng.uniform(*r.frictionloss, prof.dof),
                 'cube_mass': rng.uniform(*r.cube_mass),
                 'cube_friction': rng.uniform(*r.cube_friction),
                 'tracker_delay_s': rng.uniform(*r.tracker_delay_s),
                 'tracker_position_noise': rng.uniform(*r.tracker_position_noise),
                 'hand_latency_s': rng.uniform(*r.hand_latency_s)}
        grasped = bool(options.get('grasped', rng.random() < self.start_grasped))
        cube = (np.asarray(options['cube'], np.float64) if 'cube' in options
                else self.task.sample_object(rng))
        self._goal = (np.asarray(options['goal'], np.float64) if 'goal' in options
                      else self.task.sample_goal(rng))
        self.sim.reset(q)
        self.sim.set_dynamics(draws['damping_scale'], draws['frictionloss'])
        self.cell.set_cube(draws['cube_mass'], draws['cube_friction'])
        self.cell.hand.latency_s = draws['hand_latency_s']
        self.switch.closed = grasped
        if grasped:  # the cube between the fingers, the hand squeezing it
            ee = np.array(prof.ee_position(q.tolist()))
            cube = np.r_[ee - [0.0, 0.0, 0.005], 0.0, 0.0, 0.0, 1.0]
        self.cell.reset(q, 2 * pick_metrics.CUBE_HALF if grasped else
                        self.switch.spec.open_width, cube)
        if grasped:
            self.cell.hand.command(-1.0, self.switch.spec.close_command())
        self.cell.set_goal_marker(self._goal)
        self.tracker = ObjectTracker(30.0, draws['tracker_delay_s'],
                                     draws['tracker_position_noise'],
                                     r.tracker_orientation_noise, rng)
        self._ep = {'draws': draws, 'last_now': -1.0, 'tick': 0, 'held': 0, 'ee': None,
                    'trace': self.task.trace(self._goal, q, prof)}
        self._actions = []
        self._ep['ee'] = self.true_ee_position()
        self._ep['cube'] = self.cell.cube_pose()[:3]
        obs = self._observe()
        return obs, self._info(obs)

    def step(self, action: np.ndarray,
             ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """The arm's action as the server applies it (latency, jitter), the hand's on change."""
        spec, ep, r = self.contract.act_spec, self._ep, self.randomization
        q = self.sim.joint_state()[1][:self.profile.dof]
        cmd = action_to_command(spec, action, q, self.profile)
        self._actions = [np.clip(cmd / spec.scale, -1.0, 1.0), *self._actions[:2]]
        grip = self.switch.update(gripper_entry(spec, action))
        if grip is not None:
            self.cell.hand.command(self.cell.t, grip)
        jitter = self.np_random.uniform(-r.jitter_s, r.jitter_s) if r.jitter_s else 0.0
        now = max(self.sim.t + ep['draws']['action_latency_s'] + round(jitter / GRID_S) * GRID_S,
                  ep['last_now'], self.sim.t)
        ep['last_now'] = now
        self.sim.contact_peak = 0.0
        self.sim.command(cmd, now - self.sim.t)
        self.sim.step(CONTROL_PERIOD_S)
        ep['tick'] += 1
        obs = self._observe()
        info = self._info(obs)
        info.update(self._motion())
        reward = float(self.compute_reward(obs['achieved_goal'], obs['desired_goal'], info))
        trace = ep['trace']
        trace.add(ep['tick'] * CONTROL_PERIOD_S, self.cell.cube_pose()[:3],
                  info['cube_speed'], self._ep['ee'], self.sim.joint_state()[2][:self.profile.dof],
                  info['grasped'], self.sim.contact_peak > 1.0)
        held = (np.linalg.norm(self.cell.cube_pose()[:3] - self._goal)
                <= self.task.distance_threshold and info['rest'])
        ep['held'] = ep['held'] + 1 if held else 0
        info['dropped'] = trace.drop_time is not None
        info['is_success'] = (ep['held'] >= round(HOLD_S / CONTROL_PERIOD_S)
                              and not info['dropped'])
        return obs, reward, False, False, info

    def _motion(self) -> dict[str, Any]:
        """The true rest and motion signals of this control period."""
        _, q, qd, _ = self.sim.joint_state()
        n = self.profile.dof
        ee = self.true_ee_position()
        ee_speed = float(np.linalg.norm(ee - self._ep['ee'])) / CONTROL_PERIOD_S
        self._ep['ee'] = ee
        speeds = np.abs(qd[:n])
        cube = self.cell.cube_pose()[:3]  # its speed as the end effector's: over the period
        cube_speed = float(np.linalg.norm(cube - self._ep['cube'])) / CONTROL_PERIOD_S
        self._ep['cube'] = cube
        out = {'joint_speed': float(speeds.max()), 'ee_speed': ee_speed,
               'cube_speed': cube_speed,
               'motion': float(np.mean(np.minimum(speeds / MOVING_SPEED, 1.0))),
               'grasped': pick_metrics.grasped(self.cell.contacts()['pads'], self.cell.width()),
               'contact_peak': self.sim.contact_peak}
        out['rest'] = bool(at_rest(out['joint_speed'], ee_speed)
                           and cube_speed < pick_metrics.REST_CUBE_SPEED)
        return out

    def demo_policy(self) -> Any:
        """The scripted grasp-and-place (envs/scripted_pick.py): demonstrations for training."""
        from rl_control.envs.scripted_pick import ScriptedPickPlace
        return ScriptedPickPlace(self.contract.obs_spec, self.contract.act_spec, self.profile)

    def inputs(self) -> dict[str, Any]:
        """The non-joint inputs a server would have now: tracked cube pose, hand command."""
        _, pose = self.tracker.measure(self.cell.t, self.cell.history)
        return {'object_pose': pose, 'gripper_command': self.switch.value}

    def _observe(self) -> dict[str, np.ndarray]:
        names, q, qd, _ = self.sim.joint_state()
        r, rng, n = self.randomization, self.np_random, self.profile.dof
        k = len(names) - n
        if r.joint_pos_noise:
            q = q + np.r_[rng.normal(0.0, r.joint_pos_noise, n), np.zeros(k)]
        if r.joint_vel_noise:
            qd = qd + np.r_[rng.normal(0.0, r.joint_vel_noise, n), np.zeros(k)]
        inputs = self.inputs()
        vec = build_observation(self._obs_spec, names, q, qd, actions=self._actions,
                                inputs=inputs)
        return {'observation': vec, 'achieved_goal': inputs['object_pose'][:3].astype(
            np.float32), 'desired_goal': self._goal.astype(np.float32)}

    def _info(self, obs: dict[str, np.ndarray]) -> dict[str, Any]:
        d = float(np.linalg.norm(obs['achieved_goal'] - obs['desired_goal']))
        return {'is_success': False, 'distance': d, 'reflexes': self.sim.reflexes,
                'reflex': self.sim.first_reflex, 'grasped': False}

    def true_ee_position(self) -> np.ndarray:
        """The end effector from the noiseless joint state."""
        _, q, _, _ = self.sim.joint_state()
        return np.array(self.profile.ee_position(q[:self.profile.dof].tolist()))

    def episode_result(self) -> dict[str, Any]:
        """The running episode's measures (envs/pick_metrics.py), reflexes included."""
        out = self._ep['trace'].result()
        out.update(reflex=self.sim.first_reflex, reflex_samples=int(self.sim.reflexes),
                   hand_commands=self.cell.hand.commands)
        return out

    def render(self) -> np.ndarray | None:
        """An RGB frame from the cell's `front` camera (MuJoCo offscreen; needs a GL)."""
        if self.render_mode != 'rgb_array':
            return None
        import mujoco
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.cell.sim.model, 480, 640)
        self._renderer.update_scene(self.cell.sim.data, camera='front')
        return self._renderer.render()

    # -- snapshots ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Arm, cell, goal, switch, episode and RNG (a checkpoint mid-episode resumes).

        Plain data only (envs/snapshot.py: checkpoints load with weights_only): the episode's
        trace and the tracker go in as their attribute dicts.
        """
        import copy
        episode = {k: v for k, v in self._ep.items() if k != 'trace'}
        return {'sim': self.sim.state_dict(), 'goal': self._goal.copy(),
                'actions': [a.copy() for a in self._actions],
                'closed': self.switch.closed, 'episode': copy.deepcopy(episode),
                'trace': _attrs(self._ep['trace']) if 'trace' in self._ep else None,
                'tracker': _attrs(self.tracker, 'rng'),
                'rng': self.np_random.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of state_dict."""
        import copy
        self.sim.load_state_dict(state['sim'])  # the cell's physics and hand with it
        self._goal = np.array(state['goal'])
        self._actions = [np.array(a) for a in state['actions']]
        self.switch.closed = state['closed']
        self._ep = copy.deepcopy(state['episode'])
        if state['trace'] is not None:
            self._ep['trace'] = _from_attrs(pick_metrics.PickTrace, state['trace'])
        self.tracker = _from_attrs(ObjectTracker, state['tracker'])
        self.np_random.bit_generator.state = state['rng']
        self.tracker.rng = self.np_random

    def close(self) -> None:
        """Release the renderer."""
        if self._renderer is not None:
            self._renderer.close()
        super().close()



def _attrs(obj: Any, *skip: str) -> dict[str, Any]:
    """An object's attributes as plain data (a deep copy), leaving out `skip`."""
    import copy
    return {k: copy.deepcopy(v) for k, v in vars(obj).items() if k not in skip}


def _from_attrs(cls: type, attrs: dict[str, Any]) -> Any:
    """Inverse of _attrs: an instance of `cls` with these attributes (no __init__)."""
    import copy
    obj = cls.__new__(cls)
    vars(obj).update(copy.deepcopy(attrs))
    return obj
