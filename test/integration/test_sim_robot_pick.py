"""sim_robot in pick-and-place mode and the policy server, as separate processes over real DDS
(a private domain, localhost only): the tracker's object poses reach the server, the server's
JSON hand commands reach the simulated hand and move its fingers, and when the tracker dies
(`~/mute_object_pose`) the server brakes the arm to rest without a reflex and sends the hand
nothing more. No pick-and-place bundle is trained: the actor here is a fixed network that opens
the hand when it is closed and closes it when it is open (a command every ~0.9 s while it is
served) and moves the end effector back and forth with it."""
from __future__ import annotations

import json
from pathlib import Path
import time
from typing import Any

from conftest import Nodes, Probe, make_pick_bundle, server_diag, server_params, wait_for
import numpy as np
import pytest

pytestmark = pytest.mark.ros

POSE_TOPIC = '/test/object_pose'
HAND_TOPIC = '/policy_server/gripper_command'  # both nodes' defaults
FINGERS = ('panda_finger_joint1', 'panda_finger_joint2')


def oscillate(agent: Any, contract: Any) -> None:
    """Gripper entry = tanh(8 * (width - 0.04) / 0.04): close when open, open when closed; the
    end effector's x velocity follows the same sign (bounded motion, back and forth)."""
    w = contract.obs_spec.term_slice('gripper_width').start
    for key in ('l0.weight', 'l0.bias', 'l1.weight', 'l1.bias'):
        agent.weights[key][:] = 0.0
    agent.weights['l0.weight'][0, w], agent.weights['l0.bias'][0] = 200.0, -8.0  # wider
    agent.weights['l0.weight'][1, w], agent.weights['l0.bias'][1] = -200.0, 8.0  # narrower
    agent.weights['l1.weight'][0, :2] = [0.1, -0.1]  # x velocity
    agent.weights['l1.weight'][3, :2] = [1.0, -1.0]  # the gripper entry


def test_pick_place_sim_and_server_talk_and_a_dead_tracker_brakes_and_sends_no_hand(
        nodes: Nodes, probe: Probe, tmp_path: Path) -> None:
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import PoseStamped
    from sensor_msgs.msg import JointState
    from std_msgs.msg import String
    from std_srvs.srv import SetBool

    from rl_control.ros import qos

    bundle = make_pick_bundle(tmp_path / 'pick', oscillate)
    poses = probe.record(PoseStamped, POSE_TOPIC, qos.SENSOR)
    hand = probe.record(String, HAND_TOPIC, qos.GRIPPER)
    probe.record(JointState, '/test/joint_states', qos.SENSOR)
    probe.record(String, '/sim_robot/robot_state', qos.RESULTS)
    probe.record(DiagnosticArray, '/diagnostics', qos.DIAGNOSTICS)
    sim = nodes.start('rl_control.ros.sim_robot', {
        'task': 'pick_place', 'episode_s': 120.0, 'seed': 5,
        # 100 Hz, not the Panda's 1 kHz: the probe records every state in this process, and
        # on a loaded 2-core host its load made the server's commands late (a reflex)
        'publish_rate_hz': 100.0,
        'joint_state_topic': '/test/joint_states', 'gripper_state_topic': '/test/joint_states',
        'command_topic': '/test/commands', 'goal_topic': '/test/goal',
        'object_pose_topic': POSE_TOPIC})
    server = nodes.start('rl_control.ros.policy_server', server_params(
        bundle, ramp_in_s=0.0, object_pose_topic=POSE_TOPIC))
    procs = [sim, server]

    def fingers() -> list[float]:
        """The finger widths (sum of both joints) in the joint states, in order."""
        out = []
        for _t, m in probe.snapshot('/test/joint_states'):
            if FINGERS[0] in m.name:
                out.append(m.position[m.name.index(FINGERS[0])]
                           + m.position[m.name.index(FINGERS[1])])
        return out

    def sim_report() -> dict[str, Any]:
        snap = probe.snapshot('/sim_robot/robot_state')
        return json.loads(snap[-1][1].data) if snap else {}

    # the tracker's poses reach the server: it serves on them
    wait_for(lambda: server_diag(probe).get('_message') == 'serving', 45, 'server serving',
             procs)
    wait_for(lambda: poses, 10, 'object poses', procs)
    assert poses[-1][1].header.frame_id == 'panda_link0'
    assert float(server_diag(probe)['object_pose_age_ms']) < 200
    # its hand commands reach the sim and move the fingers, both ways
    # (the probe may join the server's hand topic after its first command: DDS discovery)
    wait_for(lambda: {json.loads(m.data)['action'] for _t, m in probe.snapshot(HAND_TOPIC)}
             == {'grasp', 'move'}, 20, 'a grasp and a move', procs)
    wait_for(lambda: min(fingers(), default=1.0) < 0.03, 10, 'the fingers closing', procs)
    wait_for(lambda: sim_report().get('hand_commands', 0) >= 2, 10, 'the sim took them', procs)
    assert sim_report()['hand_rejected'] == 0

    def arm_speed() -> float:
        """The fastest arm joint in the last arm message (the fingers share the topic)."""
        arm = [m for _t, m in probe.snapshot('/test/joint_states')[-20:]
               if 'panda_joint1' in m.name]
        return float(np.max(np.abs(arm[-1].velocity[:7]))) if arm else 0.0

    try:
        wait_for(lambda: arm_speed() > 0.02, 10, 'the arm moving', procs)
    except BaseException:  # say why: a reflex (late commands on a loaded host) or a brake
        print('sim:', sim_report(), '\nserver:', server_diag(probe))
        raise

    # the tracker dies while the arm moves
    client = probe.node.create_client(SetBool, '/sim_robot/mute_object_pose')
    assert client.wait_for_service(timeout_sec=5)
    fut = client.call_async(SetBool.Request(data=True))
    wait_for(fut.done, 5, 'mute reply', procs)
    t_mute = time.monotonic()
    wait_for(lambda: 'stale_object_pose' in server_diag(probe).get('_message', ''), 5,
             'the server braking on a stale object pose', procs)
    time.sleep(0.5)  # a command sent just before the stale pose has arrived; the sim's
    n_hand = len(hand)  # ~/robot_state (10 Hz) has caught up with what was sent
    n_sim = sim_report()['hand_commands']
    time.sleep(2.0)  # an oscillating hand would have switched twice by now, were it served
    assert [t for t, _m in probe.snapshot(POSE_TOPIC) if t > t_mute + 0.1] == []
    assert len(hand) == n_hand, 'a hand command was sent on a stale object pose'
    assert all(t < t_mute + 0.5 for t, _m in probe.snapshot(HAND_TOPIC))
    last = probe.snapshot('/test/joint_states')[-50:]
    arm = [m for _t, m in last if 'panda_joint1' in m.name]
    assert arm and max(np.max(np.abs(m.velocity[:7])) for m in arm) < 1e-3, 'not at rest'
    report = sim_report()
    assert report['reflex_count'] == 0 and report['mode'] != 'reflex'
    assert report['object_pose_muted'] and report['hand_commands'] == n_sim  # none reached it
