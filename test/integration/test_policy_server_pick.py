"""The policy server hosting a pick-and-place bundle, driven in-process on a clock set by hand:
the object pose subscription, the hand commands on their topic (once per change), and the
object-pose watchdog (a stale pose brakes the arm, opens nothing, and says so on /diagnostics).
The decisions themselves are the pure loop's (test/unit/test_serving_pick_place.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import PANDA_ARM, PANDA_HOME, make_pick_bundle, server_params
import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy', reason='ROS 2 Python packages (rclpy) are not installed')

from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import ReliabilityPolicy  # noqa: E402
from rclpy.time import Time as RclTime  # noqa: E402

from rl_control.contract.gripper import GripperSpec  # noqa: E402
from rl_control.robots.franka_hand import GripperCommand  # noqa: E402
from rl_control.ros import conversions as conv  # noqa: E402
from rl_control.ros.policy_server import PolicyServer  # noqa: E402

pytestmark = pytest.mark.ros

FINGERS = ['panda_finger_joint1', 'panda_finger_joint2']
CUBE = [0.6, 0.0, 0.02, 0.0, 0.0, 0.0, 1.0]
GOAL = [0.6, 0.1, 0.15]


@pytest.fixture()
def private_context():
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        yield context
    finally:
        rclpy.shutdown(context=context)


def test_the_node_takes_object_poses_sends_the_hand_on_change_and_a_stale_pose_opens_nothing(
        private_context: Any, tmp_path: Path) -> None:
    bundle = make_pick_bundle(tmp_path / 'pick')
    p = {**server_params(bundle, ramp_in_s=0.0), 'use_sim_time': True, 'backstop_s': 10.0}
    p.pop('autostart')
    node = PolicyServer(parameter_overrides=[Parameter(k, value=v) for k, v in p.items()],
                        context=private_context)
    try:
        node.trigger_configure()
        node.trigger_activate()
        io = node.io
        assert io.topics['object_pose'] == '/object_pose'
        assert io.topics['gripper'] == '/policy_server/gripper_command'
        pose_sub = next(s for s in io.subs if s.topic_name == '/object_pose')
        assert pose_sub.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT  # sensor data
        sent: list[Any] = []
        diag: list[Any] = []
        io.gripper_pub.publish = sent.append
        node._diag_pub.publish = diag.append

        def at(t: float, pose: bool) -> None:
            node._ctrl_clock.set_ros_time_override(RclTime(nanoseconds=round(t * 1e9)))
            node._on_state(conv.make_joint_state(PANDA_ARM + FINGERS, [*PANDA_HOME, 0.04, 0.04],
                                                 np.zeros(9), stamp=conv.sec_to_stamp(t)))
            if pose:
                node._on_object_pose(conv.pose_stamped(CUBE, 'panda_link0',
                                                       conv.sec_to_stamp(t - 0.03)))

        def diagnostics() -> tuple[str, dict[str, str]]:
            node._publish_diagnostics()
            status = diag[-1].status[0]
            return status.message, {kv.key: kv.value for kv in status.values}

        node._on_goal(conv.point_stamped(GOAL, 'panda_link0'))
        at(100.0, pose=False)
        node._tick()
        assert node.loop.reason == 'no_object_pose' and sent == []
        assert 'no_object_pose' in diagnostics()[0]
        for k in range(1, 6):
            at(100.0 + 0.04 * k, pose=True)
            node._tick()
            assert node.loop.reason == 'ok'
        assert len(sent) == 1  # one Grasp, not one per tick
        close = GripperSpec.from_yaml(node.loop.spec['action']['gripper']).close_command()
        assert GripperCommand.from_json(sent[0].data) == close
        message, values = diagnostics()
        assert message == 'serving' and values['gripper_closed'] == 'true'
        assert float(values['object_pose_age_ms']) == pytest.approx(0.0, abs=1e-6)
        # the tracker dies; joint states go on; the watchdog brakes at once and opens nothing
        at(100.44, pose=False)  # 0.24 s after the last pose (object_stale_s 0.2)
        node._watchdog()
        assert node.loop.reason == 'stale_object_pose' and len(sent) == 1
        assert node.loop.task_io.hand.switch.closed
        message, values = diagnostics()
        assert 'stale_object_pose' in message and float(values['object_pose_age_ms']) > 200
    finally:
        node.state_node.destroy_node()
        node.destroy_node()
