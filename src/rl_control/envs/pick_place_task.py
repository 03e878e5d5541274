"""The pick-and-place task: put a 4 cm cube at a goal on the table or in the air, and hold it.

panda-gym's PickAndPlace (panda_gym/envs/tasks/pick_and_place.py), expressed in the robot base
frame (its base sits at x = -0.6, the table top at z = 0): the cube starts at rest on the table,
its centre uniform in x 0.45-0.75, y -0.15-0.15 m (z = 0.02); the goal is uniform in the same
x, y box, on the table (z = 0.02) or, with probability `goal_air`, at a height up to
`goal_z_max` above it (panda-gym: 70 % in the air, up to 0.2 m). Success is the reach task's
words: the cube within 5 cm of the goal and held (cube and arm at rest over the last second,
envs/pick_metrics.py); a dropped cube fails the episode.

The policy observes what a real cell has: the arm's joint state and end effector, the hand's
width and last command, the cube's pose from a tracker (base frame), the goal last. Goals are
geometry_msgs/PointStamped, as reach's; the object pose comes on its own topic (serve/).
The achieved goal (HER's) is the cube's position: the first three entries of `object_pose`.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rl_control.contract.terms import ACTION_TERMS
from rl_control.envs import pick_metrics
from rl_control.envs.goal_distance import DistanceGoal
from rl_control.envs.pick_metrics import CUBE_HALF

CUBE_LOW = np.array([0.45, -0.15, CUBE_HALF])
CUBE_HIGH = np.array([0.75, 0.15, CUBE_HALF])
GOAL_Z_MAX = 0.2
CUBE_YAW = 0.25  # rad: the cube's start yaw is uniform in +-this (panda-gym: always 0)


@dataclass(frozen=True, eq=False)
class PickPlaceTask(DistanceGoal):
    """Object and goal sampling, reward, success and measures of pick and place."""

    goal_low: np.ndarray = field(default_factory=CUBE_LOW.copy)
    goal_high: np.ndarray = field(default_factory=lambda: CUBE_HIGH + [0, 0, GOAL_Z_MAX])
    distance_threshold: float = 0.05
    reward_type: str = 'sparse'
    goal_air: float = 0.7

    name = 'pick_place'
    sim_success = 0.05  # panda-gym's 5 cm (sim_robot's default for this task)
    goal_message = 'point'
    achieved_term = 'object_pose'
    object_message = 'pose'
    """The object's pose arrives as geometry_msgs/PoseStamped (base frame)."""

    def __post_init__(self) -> None:
        if self.reward_type not in ('sparse', 'dense'):
            raise ValueError(f"reward_type must be 'sparse' or 'dense', got {self.reward_type!r}")
        if not 0.0 <= self.goal_air <= 1.0:
            raise ValueError(f'goal_air must be in [0, 1], got {self.goal_air!r}')

    @classmethod
    def from_bundle(cls, spec: Mapping[str, Any]) -> PickPlaceTask:
        """The task of a bundle: its goal region and success distance."""
        region = spec.get('goal_region') or {}
        kw: dict[str, Any] = {}
        if region.get('low') is not None:
            kw.update(goal_low=np.asarray(region['low'], np.float64),
                      goal_high=np.asarray(region['high'], np.float64))
        return cls(distance_threshold=float(spec.get('success_distance') or 0.05), **kw)

    def terms(self, action_history: int = 0) -> tuple[str, ...]:
        """Joint state, end effector, the hand, the cube, recent actions, the goal."""
        if not 0 <= action_history <= len(ACTION_TERMS):
            raise ValueError(f'action_history must be 0..{len(ACTION_TERMS)}, got '
                             f'{action_history}')
        return ('joint_pos', 'joint_vel', 'ee_pos', 'gripper_width', 'gripper_command',
                'object_pose', *ACTION_TERMS[:action_history], 'goal')

    def start_pose(self, profile: Any, rng: np.random.Generator, noise: float) -> np.ndarray:
        """Home plus uniform noise of up to `noise` per joint."""
        return profile.home + rng.uniform(-noise, noise, profile.dof)

    def sample_object(self, rng: np.random.Generator) -> np.ndarray:
        """The cube's start pose on the table (x, y, z, qx, qy, qz, qw), a random yaw."""
        yaw = rng.uniform(-CUBE_YAW, CUBE_YAW)
        return np.r_[rng.uniform(CUBE_LOW, CUBE_HIGH), 0.0, 0.0, np.sin(yaw / 2),
                     np.cos(yaw / 2)]

    def sample_goal(self, rng: np.random.Generator) -> np.ndarray:
        """On the table, or with probability `goal_air` up to `goal_z_max` above it."""
        goal = rng.uniform(self.goal_low, self.goal_high)
        if rng.random() >= self.goal_air:
            goal[2] = self.goal_low[2]
        return goal

    def achieved(self, profile: Any, q: np.ndarray) -> np.ndarray:
        """The end effector: what the arm alone achieves (the cube's pose is the measure)."""
        return np.array(profile.ee_position(np.asarray(q, np.float64).tolist()))

    def goal_region(self) -> tuple[np.ndarray, np.ndarray]:
        """The box a served goal must lie in."""
        return self.goal_low, self.goal_high

    def trace(self, goal: np.ndarray, start_q: np.ndarray, profile: Any
              ) -> pick_metrics.PickTrace:
        """The episode's measures (envs/pick_metrics.py)."""
        return pick_metrics.PickTrace(goal, self.distance_threshold,
                                      start_ee=self.achieved(profile, start_q))

    def summarize(self, results: list[dict[str, Any]]) -> dict[str, Any]:
        """pick_metrics.summarize."""
        return pick_metrics.summarize(results)

    def to_yaml(self, frame: str) -> dict[str, Any]:
        """policy.yaml: task, goal region, success distance and the object."""
        return {'task_name': self.name,
                'goal_region': {'frame': frame, 'low': self.goal_low.tolist(),
                                'high': self.goal_high.tolist()},
                'success_distance': float(self.distance_threshold),
                'object': {'shape': 'cube', 'size': 2 * CUBE_HALF, 'frame': frame,
                           'start_low': CUBE_LOW.tolist(), 'start_high': CUBE_HIGH.tolist()}}
