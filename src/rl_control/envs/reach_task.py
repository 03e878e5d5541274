"""The reach task: bring the end effector to a 3-D goal in the robot base frame.

Goals are drawn uniformly from a box every point of which is reachable (panda-gym's PandaReach
box, expressed in the base frame: its robot base sits at x = -0.6); the policy observes the
joint state, the end-effector position, optionally its last actions, and the goal last.
Served goals arrive as geometry_msgs/PointStamped in the base frame and are refused outside
the bundle's goal region (serve/goals.py). An episode starts at rest near the robot's home
pose. Reward: sparse -(d > threshold) or dense -d (the v2 "arrive and stay" reward is the env's,
envs/franka_reach.py); the episode measures (held, reached, time to settle) are
envs/reach_metrics.py's.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rl_control.contract.terms import ACTION_TERMS
from rl_control.envs import reach_metrics
from rl_control.envs.goal_distance import DistanceGoal

# panda-gym's PandaReach goal box, expressed in the robot base frame (its base sits at x=-0.6).
GOAL_LOW = np.array([0.45, -0.15, 0.0])
GOAL_HIGH = np.array([0.75, 0.15, 0.3])


@dataclass(frozen=True, eq=False)
class ReachTask(DistanceGoal):
    """Goal sampling, reward and success of the reach task, shared by every engine and node."""

    goal_low: np.ndarray = field(default_factory=GOAL_LOW.copy)
    goal_high: np.ndarray = field(default_factory=GOAL_HIGH.copy)
    distance_threshold: float = 0.05
    reward_type: str = 'sparse'

    name = 'reach'
    sim_success = 0.02  # sim_robot's and bench-reach's success: held within 2 cm (issue 16)
    goal_message = 'point'
    achieved_term = 'ee_pos'

    def __post_init__(self) -> None:
        if self.reward_type not in ('sparse', 'dense'):
            raise ValueError(f"reward_type must be 'sparse' or 'dense', got {self.reward_type!r}")

    @classmethod
    def from_bundle(cls, spec: Mapping[str, Any]) -> ReachTask:
        """The task of a bundle: its goal region (None: unbounded) and success distance."""
        region = spec.get('goal_region') or {}
        low, high = region.get('low'), region.get('high')
        return cls(goal_low=None if low is None else np.asarray(low, np.float64),
                   goal_high=None if high is None else np.asarray(high, np.float64),
                   distance_threshold=float(spec.get('success_distance') or 0.05))

    def terms(self, action_history: int = 0) -> tuple[str, ...]:
        """Joint state, end effector, the last `action_history` actions, the goal."""
        if not 0 <= action_history <= len(ACTION_TERMS):
            raise ValueError(f'action_history must be 0..{len(ACTION_TERMS)}, got '
                             f'{action_history}')
        return ('joint_pos', 'joint_vel', 'ee_pos', *ACTION_TERMS[:action_history], 'goal')

    def start_pose(self, profile: Any, rng: np.random.Generator, noise: float) -> np.ndarray:
        """Home plus uniform noise of up to `noise` per joint."""
        return profile.home + rng.uniform(-noise, noise, profile.dof)

    def sample_goal(self, rng: np.random.Generator) -> np.ndarray:
        """A goal uniform in the goal box (base frame); every point of it is reachable."""
        return rng.uniform(self.goal_low, self.goal_high)

    def achieved(self, profile: Any, q: np.ndarray) -> np.ndarray:
        """The end-effector position (the robot's kinematics, base frame)."""
        return np.array(profile.ee_position(np.asarray(q, np.float64).tolist()))

    def goal_region(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The box a served goal must lie in: the policy never saw a goal outside it."""
        return None if self.goal_low is None else (self.goal_low, self.goal_high)

    def trace(self, goal: np.ndarray, start_q: np.ndarray, profile: Any
              ) -> reach_metrics.EpisodeTrace:
        """Distance and speeds over one episode from rest at `start_q` (reach_metrics)."""
        return reach_metrics.EpisodeTrace(goal, self.distance_threshold,
                                          start_ee=self.achieved(profile, start_q))

    def summarize(self, results: list[dict[str, Any]]) -> dict[str, Any]:
        """reach_metrics.summarize: held first, then how the arm got there."""
        return reach_metrics.summarize(results)

    def to_yaml(self, frame: str) -> dict[str, Any]:
        """policy.yaml: `task_name`, `goal_region` (base frame) and `success_distance`."""
        return {'task_name': self.name,
                'goal_region': {'frame': frame, 'low': self.goal_low.tolist(),
                                'high': self.goal_high.tolist()},
                'success_distance': float(self.distance_threshold)}
