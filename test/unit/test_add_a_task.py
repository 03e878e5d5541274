"""docs/ARCHITECTURE.md, "Add a task": touch a point on a table, added in this one file.

The task declares what differs from reach: the policy observes joint positions and the end
effector but no joint velocities, goals lie on the table top (a plane at `TABLE_Z`) and a goal
above it is refused, episodes start at the home pose exactly, success is within 1 cm. One
`register_task` line makes it a task every layer runs: the training env, the serving loop's
goal gate and status, sim_robot's episodes and the reach benchmark.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from rl_control.contract.terms import ACTION_TERMS
from rl_control.envs import reach_metrics, tasks

TABLE_Z = 0.05
TABLE_LOW, TABLE_HIGH = np.array([0.45, -0.15, TABLE_Z]), np.array([0.75, 0.15, TABLE_Z])


@dataclass(frozen=True, eq=False)
class TableTouchTask:
    """Touch a point on the table top and stay there (envs/tasks.py `Task`)."""

    distance_threshold: float = 0.01
    sim_success = 0.01  # sim_robot's default success distance for this task
    reward_type: str = 'dense'

    name = 'table_touch'
    goal_message = 'point'  # geometry_msgs/PointStamped in the base frame
    achieved_term = 'ee_pos'

    @classmethod
    def from_bundle(cls, spec: Mapping[str, Any]) -> TableTouchTask:
        return cls(distance_threshold=float(spec.get('success_distance') or 0.01))

    def terms(self, action_history: int = 0) -> tuple[str, ...]:
        return ('joint_pos', 'ee_pos', *ACTION_TERMS[:action_history], 'goal')

    def start_pose(self, profile: Any, rng: np.random.Generator, noise: float) -> np.ndarray:
        return profile.home.copy()

    def sample_goal(self, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(TABLE_LOW, TABLE_HIGH)

    def achieved(self, profile: Any, q: np.ndarray) -> np.ndarray:
        return np.array(profile.ee_position(np.asarray(q, np.float64).tolist()))

    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray,
                       info: Any = None) -> np.ndarray:
        d = np.linalg.norm(np.asarray(achieved_goal) - np.asarray(desired_goal), axis=-1)
        return -d.astype(np.float32)

    def is_success(self, achieved_goal: np.ndarray, desired_goal: np.ndarray) -> np.ndarray:
        d = np.linalg.norm(np.asarray(achieved_goal) - np.asarray(desired_goal), axis=-1)
        return d <= self.distance_threshold

    def goal_region(self) -> tuple[np.ndarray, np.ndarray]:
        return TABLE_LOW, TABLE_HIGH

    def trace(self, goal: np.ndarray, start_q: np.ndarray, profile: Any
              ) -> reach_metrics.EpisodeTrace:
        return reach_metrics.EpisodeTrace(goal, self.distance_threshold,
                                          start_ee=self.achieved(profile, start_q))

    def summarize(self, results: list[dict[str, Any]]) -> dict[str, Any]:
        return reach_metrics.summarize(results)

    def to_yaml(self, frame: str) -> dict[str, Any]:
        return {'task_name': self.name, 'success_distance': self.distance_threshold,
                'goal_region': {'frame': frame, 'low': TABLE_LOW.tolist(),
                                'high': TABLE_HIGH.tolist()}}


@pytest.fixture
def task():
    yield tasks.register_task(TableTouchTask)  # the one registry line
    del tasks.TASKS['table_touch']  # (other tests do not expect it)


class TouchPolicy:
    """A stand-in actor for this task's observation: damped least squares on the kinematics."""

    def __init__(self, scale: np.ndarray) -> None:
        from rl_control.robots.profiles import PANDA

        self.profile, self.scale = PANDA, scale

    def act(self, obs: np.ndarray) -> np.ndarray:
        q, ee, goal = obs[:7].astype(np.float64), obs[7:10], obs[-3:]
        jac = np.stack([(np.array(self.profile.ee_position(q + 1e-6 * np.eye(7)[j]))
                         - np.array(self.profile.ee_position(q))) / 1e-6 for j in range(7)], 1)
        qd = jac.T @ np.linalg.solve(jac @ jac.T + 1e-3 * np.eye(3), 3.0 * (goal - ee))
        return np.clip(qd / self.scale, -0.8, 0.8).astype(np.float32)


def bundle_spec() -> dict[str, Any]:
    from rl_control.envs.franka_reach import FrankaReachEnv

    env = FrankaReachEnv(task='table_touch', randomize=False, action_history=0,
                         success_distance=0.01)
    env.close()
    return {**env.contract.to_yaml(), **env.robot_task}  # what policy.yaml records


def test_the_env_observes_and_rewards_as_the_task_declares(task):
    from rl_control.envs.franka_reach import FrankaReachEnv
    from rl_control.robots.profiles import PANDA

    env = FrankaReachEnv(task='table_touch', randomize=False, action_history=0,
                         success_distance=0.01)
    try:
        assert env.contract.obs_spec.terms == ('joint_pos', 'ee_pos', 'goal')
        obs, _ = env.reset(seed=3)
        assert obs['desired_goal'][2] == pytest.approx(TABLE_Z)
        np.testing.assert_array_equal(env.sim.joint_state()[1][:7], PANDA.home)  # no noise
        assert env.robot_task['task_name'] == 'table_touch'
        assert env.robot_task['goal_region']['high'][2] == TABLE_Z
    finally:
        env.close()


def test_the_serving_loop_gates_goals_by_it_and_needs_no_joint_velocities(task):
    from rl_control.robots.profiles import PANDA
    from rl_control.serve.loop import ServingLoop
    from rl_control.serve.settings import ServeSettings

    spec = bundle_spec()
    loop = ServingLoop(spec, TouchPolicy(np.asarray(spec['action']['scale'])), ServeSettings())
    assert isinstance(loop.task, TableTouchTask) and loop.success_distance == 0.01
    assert loop.on_goal('panda_link0', np.array([0.6, 0.0, 0.2])) == 'goal_outside_region'
    assert loop.on_goal('panda_link0', np.array([0.6, 0.0, TABLE_Z])) is None
    loop.activate(0.0)
    names = list(PANDA.joint_names)
    assert loop.on_state(0.0, 0.0, names, PANDA.home, np.zeros(0), 0.0)[1] is None
    assert loop.tick(0.0, 0.0).reason == 'ok'  # positions alone serve this policy
    assert loop.goal_status()['distance'] == pytest.approx(
        np.linalg.norm(np.array(PANDA.ee_position(PANDA.home)) - [0.6, 0.0, TABLE_Z]))


def test_sim_robot_runs_its_episodes(task):
    pytest.importorskip('rclpy')
    import dataclasses

    from rl_control.envs.sim_core import SimCore
    from rl_control.robots.profiles import PANDA
    from rl_control.ros.params import SimParams

    results: list[dict[str, Any]] = []

    class Outputs:
        state = robot_mode = goal = lambda *a: None
        result = results.append

    p = dataclasses.replace(SimParams(), task='table_touch', episode_s=0.2, seed=4)
    core = SimCore(p, Outputs(), wall_clock=lambda: 0.0)
    assert core.task.distance_threshold == 0.01  # the task's own, success_threshold left at 0
    core.start(epoch=0.0, mono0=0.0)
    assert core.goal[2] == pytest.approx(TABLE_Z)
    np.testing.assert_array_equal(core.arm.state()['q'], PANDA.home)
    for _ in range(2):
        core.advance(400)  # (returns at the end of an episode)
    assert len(results) == 2 and results[0]['success_distance'] == 0.01
    assert results[0]['goal'][2] == pytest.approx(TABLE_Z)


def test_the_benchmark_measures_it(task):
    from rl_control.envs.reach_bench import run_in_process

    spec = bundle_spec()
    goals = np.array([[0.55, -0.1, TABLE_Z], [0.7, 0.1, TABLE_Z]])
    out = run_in_process(spec, TouchPolicy(np.asarray(spec['action']['scale'])), 'mujoco',
                         'panda', False, goals, success_distance=0.01)
    s = out['summary']
    assert s['episodes'] == 2 and s['held'] == 1.0 and s['reflexes'] == 0
