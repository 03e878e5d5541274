"""The task registry: what a robot is asked to do, declared once for every layer that runs it.

A task declares the observation terms a policy sees (contract/terms.py), the goal (its ROS
message and the gate that accepts it), the reward and success, the episode measures (success
and hold), how an episode starts and how goals are drawn. The training env
(envs/franka_reach.py), the serving loop's goal handling (serve/build.py, serve/report.py),
sim_robot's episodes (envs/sim_core.py) and the reach benchmark (envs/reach_bench.py) all
ask it. A bundle names its task in policy.yaml (`task_name`; bundles without one are reach
bundles). Adding a task is one file with a class following `Task` and one `register_task`
line (docs/ARCHITECTURE.md, "Add a task").
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np

from rl_control.envs.pick_place_task import PickPlaceTask
from rl_control.envs.reach_task import ReachTask


class Task(Protocol):
    """What the layers ask a task (envs/reach_task.py is the reference implementation)."""

    name: str
    goal_message: str
    """The ROS message a goal arrives in ('point': geometry_msgs/PointStamped, base frame)."""
    achieved_term: str
    """The observation term that is the achieved goal (HER's `achieved_goal`)."""
    distance_threshold: float
    """The success distance [m]."""
    sim_success: float
    """sim_robot's success distance [m] when its `success_threshold` is left at 0."""

    def terms(self, action_history: int) -> tuple[str, ...]:
        """The observation terms in order (the goal last: HER's `desired_goal`)."""

    def start_pose(self, profile: Any, rng: np.random.Generator, noise: float) -> np.ndarray:
        """The joint positions an episode starts from (before clipping into the range)."""

    def sample_goal(self, rng: np.random.Generator) -> np.ndarray:
        """A goal of the task's region."""

    def achieved(self, profile: Any, q: np.ndarray) -> np.ndarray:
        """The achieved goal at arm joint positions `q` (noise-free)."""

    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray,
                       info: Any = None) -> np.ndarray:
        """Reward, vectorized over leading axes (HER relabels whole batches)."""

    def is_success(self, achieved_goal: np.ndarray, desired_goal: np.ndarray) -> np.ndarray:
        """Success at one moment (vectorized)."""

    def goal_region(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The box served goals must lie in (None: any goal); serve/goals.py gates by it."""

    def trace(self, goal: np.ndarray, start_q: np.ndarray, profile: Any) -> Any:
        """The episode measures: `.add(t, achieved, qd)` per control period, `.result()`."""

    def summarize(self, results: list[dict[str, Any]]) -> dict[str, Any]:
        """Fractions and statistics over episode results."""

    def to_yaml(self, frame: str) -> dict[str, Any]:
        """The policy.yaml fields of the task (`task_name`, its goal region, success)."""


TASKS: dict[str, Any] = {}
"""Task name -> its class: `cls(distance_threshold=..., reward_type=...)` and
`cls.from_bundle(spec)`."""
TASK_NAMES = TASKS.keys()


def register_task(cls: Any) -> Any:
    """Make the task class `cls` known by its `name` (usable as a class decorator)."""
    if TASKS.get(cls.name, cls) is not cls:
        raise ValueError(f'a task called {cls.name!r} is registered already')
    TASKS[cls.name] = cls
    return cls


def task_class(name: str) -> Any:
    """The task class called `name`."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f'unknown task {name!r}; valid: {sorted(TASKS)}') from None


def task_for_bundle(spec: Mapping[str, Any]) -> Task:
    """The task a bundle was trained on, with its goal region and success distance."""
    return task_class(spec.get('task_name') or 'reach').from_bundle(spec)


register_task(ReachTask)
register_task(PickPlaceTask)
