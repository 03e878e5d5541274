"""sim_robot over real DDS: the topics a ros2_control Panda has, commands in the controller's
joint order, refusal of malformed commands, goals and episode results."""
from __future__ import annotations

import json
import time

from conftest import Nodes, Probe, wait_for
import numpy as np
import pytest

pytestmark = pytest.mark.ros

ARM = [f'panda_joint{i}' for i in range(1, 8)]


def test_sim_robot_topics_command_order_and_refusal(nodes: Nodes, probe: Probe) -> None:
    from geometry_msgs.msg import PointStamped
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray, String

    from rl_control.ros import qos
    from rl_control.ros.conversions import float64_multiarray

    states = probe.record(JointState, '/joint_states', qos.SENSOR)
    goals = probe.record(PointStamped, '/policy_server/goal', qos.GOAL)
    results = probe.record(String, '/sim_robot/episode_result', qos.RESULTS)
    cmd_pub = probe.publisher(Float64MultiArray, '/velocity_controller/commands', qos.COMMAND)
    order = list(reversed(ARM))
    proc = nodes.start('rl_control.ros.sim_robot', {'joints': order, 'episode_steps': 25,
                                                     'command_timeout_s': 0.0, 'seed': 1})
    wait_for(lambda: len(states) > 10 and goals, 30, 'joint states and a goal', [proc])
    _t, js = states[-1]
    assert list(js.name) == ARM + ['panda_finger_joint1', 'panda_finger_joint2']
    assert len(js.position) == len(js.velocity) == 9
    assert goals[-1][1].header.frame_id == 'panda_link0'

    def velocity(joint: str) -> float:
        _t, m = states[-1]
        return m.velocity[list(m.name).index(joint)]

    wait_for(lambda: cmd_pub.get_subscription_count() > 0, 10, 'command subscriber')
    cmd_pub.publish(float64_multiarray([0.3] * 5))  # wrong length: refused, nothing applied
    time.sleep(0.3)
    assert max(abs(velocity(j)) for j in ARM) < 0.05
    wait_for(lambda: 'REFUSED' in nodes.log(proc), 5, 'a REFUSED log line')

    cmd = np.zeros(7)
    cmd[order.index('panda_joint1')] = 0.5  # the controller order is reversed
    cmd_pub.publish(float64_multiarray(cmd))
    wait_for(lambda: abs(velocity('panda_joint1') - 0.5) < 0.05, 3, 'joint1 moving at 0.5')
    assert abs(velocity('panda_joint7')) < 0.05

    wait_for(lambda: results, 10, 'an episode result (1 s episodes)', [proc])
    r = json.loads(results[0][1].data)
    assert {'episode', 'success', 'final_distance', 'goal', 'distances'} <= r.keys()
    assert len(r['distances']) == 25 and r['final_distance'] == pytest.approx(
        r['distances'][-1], abs=1e-4)
