"""policy_server over real DDS against what a careless neighbour on the network sends.

A second publisher on `joint_states` with states no arm can be in (a velocity of 1e6 or 20
rad/s, a bridge that publishes degrees) must not kill the server nor reach a command, and once
only good states come the episode still succeeds; a second publisher on the command topic is
shown on /diagnostics while configured, refused at activation, and stops a running server until
`~/reset`.
"""
from __future__ import annotations

import json
from pathlib import Path
import time
from typing import Any

from conftest import (
    PANDA_ARM,
    Nodes,
    Probe,
    TrackingRobot,
    peak_speed,
    server_diag,
    wait_for,
)
import numpy as np
import pytest
from test_policy_server import ERROR, _change_state, publish_goal, start_server, wait_moving

from rl_control.robots.profiles import PANDA

pytestmark = pytest.mark.ros

GOAL_A = np.array([0.6, 0.1, 0.2])
GOAL_B = np.array([0.5, -0.1, 0.1])


def _inside_limits(msg: Any) -> bool:
    idx = [PANDA_ARM.index(n) for n in msg.joint_names]
    pos = np.array([p.positions for p in msg.points])
    vel = np.array([p.velocities for p in msg.points])
    return bool(np.all(pos >= PANDA.q_min[idx] - 1e-9) and np.all(pos <= PANDA.q_max[idx] + 1e-9)
                and np.all(np.abs(vel) <= PANDA.qd_max[idx] + 1e-9))


def _burst(pub: Any, robot: TrackingRobot, kind: str, seconds: float = 0.6) -> None:
    """`kind` joint states from a second publisher at 500 Hz, 0.05 rad off the arm."""
    from rl_control.ros.conversions import make_joint_state, sec_to_stamp

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t = robot.now()
        q, qd = robot.state_at(t)
        q = q.copy()
        q[0] += 0.05
        if kind == 'deg':
            q, qd = np.degrees(q), np.degrees(qd)
        else:
            qd = qd.copy()
            qd[0] = float(kind)
        pub.publish(make_joint_state(PANDA_ARM, q, qd, stamp=sec_to_stamp(t)))
        time.sleep(0.002)


def test_implausible_joint_states_from_a_second_publisher_never_reach_a_command(
        nodes: Nodes, probe: Probe, shipped_bundle: Path) -> None:
    from sensor_msgs.msg import JointState
    from std_msgs.msg import String

    from rl_control.ros import qos

    neighbour = Probe()
    status = probe.record(String, '/policy_server/status', qos.GOAL)
    robot = TrackingRobot(probe)
    proc = start_server(nodes, probe, shipped_bundle)
    robot.start()
    try:
        bad = neighbour.publisher(JointState, '/test/joint_states', qos.SENSOR)
        publish_goal(probe, GOAL_A)
        wait_moving(robot, 0.0, proc, n=2)
        t_bad = time.monotonic()
        for kind in ('1e6', '20', 'deg'):
            _burst(bad, robot, kind)
            assert proc.poll() is None, nodes.log(proc)[-3000:]
        time.sleep(0.6)  # a /diagnostics period
        errors = [d for d in _diags_since(probe, t_bad) if d['_level'] == ERROR]
        assert errors and all('implausible' in d['_message'] for d in errors), errors[-1:]
        assert any('panda_joint' in d['state_error'] for d in errors)
        # good states only: the next episode succeeds, no reset
        t_good = time.monotonic()
        publish_goal(probe, GOAL_B)
        wait_for(lambda: any(s['state'] == 'reached' and np.allclose(s['goal'], GOAL_B)
                             for t, s in _status_since(status, t_good)), 15,
                 'goal B reached', [proc])
    finally:
        robot.stop()
        neighbour.close()
    assert proc.poll() is None
    outside = [m for _t, m in robot.commands if not _inside_limits(m)]
    assert not outside, f'{len(outside)} of {len(robot.commands)} commands outside the limits'
    assert sum(peak_speed(m) > 0.05 for t, m in robot.commands if t > t_good) >= 1


def _diags_since(probe: Probe, since: float) -> list[dict[str, Any]]:
    from rl_control.ros.conversions import diagnostic_values

    out = []
    for t, arr in probe.snapshot('/diagnostics'):
        for st in arr.status:
            if t >= since and st.name.endswith('policy_server: policy'):
                out.append({**diagnostic_values(st), '_level': st.level[0] if isinstance(
                    st.level, bytes) else int(st.level), '_message': st.message})
    return out


def _status_since(rec: list[tuple[float, Any]], since: float) -> list[tuple[float, dict]]:
    return [(t, json.loads(m.data)) for t, m in list(rec) if t >= since]


def test_another_publisher_on_the_command_topic_is_refused_and_stops_a_running_server(
        nodes: Nodes, probe: Probe, test_bundle: Path) -> None:
    from lifecycle_msgs.msg import Transition
    from std_srvs.srv import Trigger
    from trajectory_msgs.msg import JointTrajectory

    from rl_control.ros import qos

    def conflict() -> str | None:
        return server_diag(probe).get('command_conflict')

    rival = Probe()
    rival_name = rival.node.get_fully_qualified_name()
    robot = TrackingRobot(probe)
    try:
        pub = rival.publisher(JointTrajectory, '/test/commands', qos.COMMAND)
        proc = start_server(nodes, probe, test_bundle, autostart=False)
        assert _change_state(probe, Transition.TRANSITION_CONFIGURE)
        d = wait_for(lambda: (lambda d: d if d.get('_level') == ERROR else None)(
            server_diag(probe)), 15, 'the conflict on /diagnostics', [proc])
        assert rival_name in d['_message'] and d['active'] == 'false'
        assert not _change_state(probe, Transition.TRANSITION_ACTIVATE)
        assert f'activate refused: another publisher on /test/commands: {rival_name}' in \
            nodes.log(proc)

        rival.node.destroy_publisher(pub)
        wait_for(lambda: conflict() == '', 15, 'the rival gone', [proc])
        robot.start()
        assert _change_state(probe, Transition.TRANSITION_ACTIVATE)
        publish_goal(probe)
        wait_moving(robot, 0.0, proc)
        pub = rival.publisher(JointTrajectory, '/test/commands', qos.COMMAND)
        # (the graph may list the endpoint before its node's name: wait for the name)
        d = wait_for(lambda: (lambda d: d if d.get('_level') == ERROR and rival_name in d.get(
            'command_conflict', '') else None)(server_diag(probe)), 15,
            'ERROR naming the rival on /diagnostics', [proc])
        assert rival_name in d['_message']
        time.sleep(0.5)  # the brake went out when the rival was seen
        t_stopped = time.monotonic()
        time.sleep(0.3)
        assert not [m for t, m in robot.commands if t > t_stopped and peak_speed(m) > 0.0]
        rival.node.destroy_publisher(pub)
        wait_for(lambda: conflict() == '', 15, 'the rival gone', [proc])
        assert probe.call(Trigger, '/policy_server/reset').success  # the latch lifts
        wait_moving(robot, time.monotonic(), proc)
    finally:
        robot.stop()
        rival.close()
    assert proc.poll() is None
