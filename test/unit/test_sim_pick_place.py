"""sim_robot's pick-and-place cell without ROS (envs/sim_core.py + envs/sim_cell.py): the
server's JSON hand commands drive the hand with franka_gripper's latency, the object pose goes
out as a tracker sends it (capture stamps, delay, noise, one message per frame), a contact
above the collision thresholds is a reflex, and the episode result has the task's measures
(a dropped cube fails the episode)."""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from rl_control.contract.gripper import GripperSpec
from rl_control.robots.contact import CollisionBehavior

pytest.importorskip('rclpy')  # ros/params.py declares the node's parameters

SPEC = GripperSpec()
GRASP, OPEN = SPEC.close_command().to_json(), SPEC.open_command().to_json()


class Outputs:
    """What the host would publish, recorded with the grid time it went out."""

    def __init__(self) -> None:
        self.results: list[dict[str, Any]] = []
        self.poses: list[tuple[float, float, np.ndarray]] = []
        self.core: Any = None

    state = robot_mode = goal = lambda *a: None

    def result(self, r: dict[str, Any]) -> None:
        self.results.append(r)

    def object_pose(self, stamp: float, pose: np.ndarray) -> None:
        self.poses.append((self.core.arm.time, stamp, pose))


def make_core(**over: Any) -> tuple[Any, Outputs]:
    from rl_control.envs.sim_core import SimCore
    from rl_control.ros.params import SimParams

    p = dataclasses.replace(SimParams(), **{'task': 'pick_place', 'episode_s': 10.0, 'seed': 2,
                                            **over})
    out = Outputs()
    core = SimCore(p, out, wall_clock=lambda: 0.0)
    out.core = core
    core.start(epoch=100.0, mono0=0.0)
    return core, out


def run(core: Any, seconds: float) -> None:
    """Step `seconds` of grid time (advance returns early at an episode end)."""
    end = core.arm.time + seconds
    while core.arm.time < end - 1e-9:
        core.advance(round((end - core.arm.time) / core.arm.dt))


def width(core: Any) -> float:
    names, q, _, _ = core.gripper_state()
    assert names == ('panda_finger_joint1', 'panda_finger_joint2')
    assert q[0] == q[1]  # franka_gripper: width / 2 per finger joint
    return float(q.sum())


def test_the_success_distance_is_the_tasks_own_unless_set() -> None:
    """success_threshold 0 (the default): pick_place judges at 5 cm, reach at 2 cm."""
    from rl_control.envs.sim_core import SimCore
    from rl_control.ros.params import SimParams

    core, _out = make_core()
    assert core.task.distance_threshold == 0.05
    reach = SimCore(dataclasses.replace(SimParams(), seed=2), Outputs(), wall_clock=lambda: 0.0)
    assert reach.task.distance_threshold == 0.02
    core, _out = make_core(success_threshold=0.03)
    assert core.task.distance_threshold == 0.03


def test_a_json_hand_command_drives_the_sim_hand_after_its_latency() -> None:
    core, _ = make_core(hand_latency_s=0.05)
    run(core, 0.2)
    assert width(core) == pytest.approx(0.08, abs=1e-4)  # every episode starts open
    assert core.hand_command('{"action": "grasp"', core.arm.time) is not None  # not JSON
    assert core.hand_command('{"action": "grasp", "width": 0.2}', core.arm.time) is not None
    run(core, 0.3)
    assert width(core) == pytest.approx(0.08, abs=1e-4)  # refused ones move nothing
    assert core.report()[0]['hand_rejected'] == 2
    t = core.arm.time
    assert core.hand_command(GRASP, t) is None
    run(core, 0.045)
    assert width(core) == pytest.approx(0.08, abs=1e-4)  # still in its latency
    run(core, 0.2)  # closing at the command's speed (0.1 m/s of width)
    assert 0.05 < width(core) < 0.07
    run(core, 0.8)
    assert width(core) < 0.002  # nothing between the fingers: closed
    assert core.hand_command(OPEN, core.arm.time) is None
    run(core, 1.0)
    assert width(core) == pytest.approx(0.08, abs=1e-3)
    report = core.report()[0]
    assert report['hand_commands'] == 2 and report['hand_rejected'] == 2


@pytest.mark.parametrize('delay, noise', [(0.05, 0.0), (0.12, 0.003)])
def test_the_object_pose_carries_the_trackers_capture_stamp_delay_and_noise(
        delay: float, noise: float) -> None:
    core, out = make_core(tracker_delay_s=delay, tracker_position_noise=noise,
                          tracker_orientation_noise=0.0, tracker_rate_hz=30.0)
    t0 = core.arm.time
    true = core.cell.physics.cube_pose()  # the cube rests on the table
    run(core, 3.0)
    sent, stamps, poses = (np.array(v) for v in zip(*out.poses, strict=True))
    late = sent - (stamps - 100.0)  # grid time it went out - its capture (ROS time - epoch)
    assert np.all(late >= delay - 1e-9) and np.all(late <= delay + 1e-3 + 1e-9)
    assert (stamps[0] - 100.0) == pytest.approx(t0)  # the first frame: captured at the reset
    np.testing.assert_allclose(np.diff(stamps), 1 / 30.0, atol=1e-9)  # one message per frame
    assert len(stamps) == pytest.approx(30 * (3.0 - delay), abs=1)
    err = poses[:, :3] - true[:3]
    if noise == 0.0:
        np.testing.assert_allclose(err, 0.0, atol=2e-4)  # (the cube settles on the table)
    else:
        assert np.std(err) == pytest.approx(noise, rel=0.25)
        assert len({tuple(p) for p in poses[:, :3]}) == len(poses)  # drawn once per frame
    core.mute_object(True)
    n = len(out.poses)
    run(core, 0.5)
    assert len(out.poses) == n  # a dead tracker publishes nothing
    core.mute_object(False)
    run(core, 0.1)
    assert len(out.poses) > n


def hold_cube(core: Any) -> None:
    """The cube between the fingers, the hand grasping it (as the env's `start_grasped`)."""
    cell = core.cell.physics
    q = core.arm.state()['q']
    ee = np.array(core.profile.ee_position(q.tolist()))
    cell.reset(q, 0.04, np.r_[ee - [0.0, 0.0, 0.005], 0.0, 0.0, 0.0, 1.0])
    core.cell._cube = cell.cube_pose()[:3]
    assert core.hand_command(GRASP, core.arm.time) is None


def test_the_episode_result_counts_a_dropped_cube() -> None:
    core, out = make_core(episode_s=2.0)
    hold_cube(core)
    run(core, 0.8)
    assert core.cell.physics.hand.grasped and core.cell.physics.cube_pose()[2] > 0.1
    assert core.hand_command(OPEN, core.arm.time) is None  # let go in the air
    run(core, 1.2 + 0.01)
    (r,) = out.results
    assert r['grasped'] and r['lifted'] and r['dropped'] and not r['success']
    assert 0.8 < r['drop_time_s'] < 1.2
    assert r['hand_commands'] == 2 and r['reflex'] is None


def test_holding_on_is_no_drop() -> None:
    core, out = make_core(episode_s=2.0)
    hold_cube(core)
    run(core, 2.01)
    (r,) = out.results
    assert r['grasped'] and r['lifted'] and not r['dropped'] and r['drop_time_s'] is None


def test_a_contact_above_the_collision_threshold_is_a_reflex() -> None:
    core, out = make_core(episode_s=1.0)
    core.cell.collision = CollisionBehavior(upper_force=np.full(3, 0.5))  # < the cube's weight
    hold_cube(core)
    run(core, 1.01)
    (r,) = out.results
    assert r['reflex'] == 'cartesian_reflex' and r['contact_reflexes'] > 0
    assert r['reflex_violation'] and 'contact' in r['reflex_violation']


def test_an_episodes_file_gives_each_episode_its_cube_and_goal(tmp_path) -> None:
    """sim_robot's `goals_file` may be a pick-and-place episodes file (the benchmark's): each
    episode starts at home with that episode's cube and goal, in order, wrapping around."""
    import yaml

    eps = [{'cube': [0.5, -0.1, 0.02, 0.0, 0.0, 0.0, 1.0], 'goal': [0.6, 0.1, 0.1]},
           {'cube': [0.7, 0.12, 0.02, 0.0, 0.0, 0.1305, 0.9914], 'goal': [0.55, 0.0, 0.02]}]
    path = tmp_path / 'eps.yaml'
    path.write_text(yaml.safe_dump({'episodes': eps}))
    core, out = make_core(goals_file=str(path), episode_s=0.2)
    for k in range(3):
        e = eps[k % 2]
        np.testing.assert_allclose(core.goal, e['goal'])
        np.testing.assert_allclose(core.cell.physics.cube_pose()[:2], e['cube'][:2], atol=1e-4)
        np.testing.assert_allclose(core.arm.state()['q'], core.profile.home, atol=1e-6)
        core.finish_episode()


def test_a_cartesian_action_is_served_by_its_joint_types_interface() -> None:
    """bench-pick --engine ros serves an ee_velocity bundle on the trajectory interface."""
    from rl_control.ros.reach_bench import bundle_interface

    assert bundle_interface({'action': {'type': 'ee_velocity'}}).name == 'trajectory'
    assert bundle_interface({'action': {'type': 'joint_velocity'}}).name == 'trajectory'
    assert bundle_interface({'action': {'type': 'joint_effort'}}).name == 'effort'
