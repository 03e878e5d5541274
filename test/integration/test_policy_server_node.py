"""The policy server's callbacks driven in-process (no DDS traffic): ordering and stamp rules.

These cover decisions inside one node that messages across processes would only show slowly
or by chance: which joint a per-joint limit lands on when the controller's order differs from
the policy's, and what the `trigger: state` path does when joint-state stamps go backwards.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy', reason='ROS 2 Python packages (rclpy) are not installed')

from builtin_interfaces.msg import Time  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from rl_control.robots.kinematics import PANDA  # noqa: E402
from rl_control.ros import conversions as conv  # noqa: E402
from rl_control.ros.policy_server import PolicyServer  # noqa: E402

pytestmark = pytest.mark.ros

PANDA_RATES = [15.0, 7.5, 10.0, 12.5, 15.0, 20.0, 20.0]  # panda_joint1..7
SWAPPED = ['panda_joint2', 'panda_joint1', *PANDA.arm_joint_names[2:]]


def _stamp(t: float) -> Time:
    return Time(sec=int(t), nanosec=int((t - int(t)) * 1e9))


@pytest.fixture()
def server():
    context = rclpy.Context()  # its own: other tests in this process may hold the default one
    rclpy.init(context=context)
    node = PolicyServer(context=context, parameter_overrides=[
        Parameter('trigger', value='state'), Parameter('max_state_age_s', value=0.0),
        Parameter('rate_limit', value=PANDA_RATES), Parameter('command_joints', value=SWAPPED)])
    sent: list[np.ndarray] = []
    try:
        node.trigger_configure()
        node.trigger_activate()
        node._publish = lambda cmd, hold=False: sent.append(np.array(cmd))
        node._on_goal(conv.point_stamped([0.6, 0.1, 0.2], 'panda_link0'))
        yield node, sent
    finally:
        node.state_node.destroy_node()
        node.destroy_node()
        rclpy.shutdown(context=context)


def _send(node: PolicyServer, t: float) -> None:
    node._on_state(conv.make_joint_state(PANDA.arm_joint_names, PANDA.home, np.zeros(7),
                                         stamp=_stamp(t)))


def test_per_joint_rate_limit_follows_the_joint_not_the_slot(server):
    node, _sent = server
    # Command slot 0 is panda_joint2: it must get joint 2's 7.5 rad/s^2, not joint 1's 15.
    assert node.safety._rate.tolist() == [7.5, 15.0, *PANDA_RATES[2:]]


def test_state_trigger_answers_once_per_stamp_and_restarts_after_a_step_back(server):
    node, sent = server
    base = time.time()
    for k in range(5):
        _send(node, base + 0.04 * k)
    answered = len(sent)
    assert answered == 5
    _send(node, base + 0.04 * 4)  # a re-sent state: not answered again
    assert len(sent) == answered
    # The driver restarts (or its clock steps back 10 s): fresh states must be answered, not
    # ignored while the controller keeps the last velocity.
    for k in range(3):
        _send(node, base - 10.0 + 0.04 * k)
    assert len(sent) == answered + 3
