"""Bring-up over real DDS: move to start and a reflex with its recovery, on the simulated FR3.

sim_robot runs as franka_bringup wires an FR3 (franka/joint_states at 1 kHz, joint_states at
30 Hz), with its mode and errors as franka_robot_state_broadcaster publishes them; the server
runs config/policy_server_fr3.yaml (the broadcaster's stream, the robot-state watch).
"""
from __future__ import annotations

import json
from pathlib import Path

from conftest import Nodes, Probe, server_diag, wait_for

REPO = Path(__file__).resolve().parents[2]
FR3_PARAMS = str(REPO / 'config' / 'policy_server_fr3.yaml')


def start_fr3(nodes: Nodes, bundle: Path, sim: dict, srv: dict) -> tuple:
    from rl_control.ros.processes import start_node

    sim_proc = nodes.start('rl_control.ros.sim_robot', {'robot': 'fr3', **sim})
    log = nodes.log_dir / 'policy_server.log'
    srv_proc = start_node('rl_control.ros.policy_server',
                          {'bundle': str(bundle), 'autostart': True,
                           'diagnostics_period_s': 0.5, **srv}, log, params_file=FR3_PARAMS)
    srv_proc.log_path = str(log)
    nodes.procs.append(srv_proc)
    return sim_proc, srv_proc


def test_move_to_start_over_dds(nodes: Nodes, probe: Probe, test_bundle: Path) -> None:
    from diagnostic_msgs.msg import DiagnosticArray
    from std_msgs.msg import String
    from std_srvs.srv import Trigger

    from rl_control.ros import qos

    probe.record(DiagnosticArray, '/diagnostics', qos.DIAGNOSTICS)
    robot = probe.record(String, '/sim_robot/robot_state', qos.RESULTS)
    # stale_periods 5: this test is about the move, not about a loaded host's late states
    procs = start_fr3(nodes, test_bundle, {'episode_s': 60.0, 'seed': 3},
                      {'goal_topic': '/no_goals_here', 'stale_periods': 5.0})
    wait_for(lambda: server_diag(probe).get('last_reason') == 'no_goal', 30,
             'the server active, with no goal', procs)
    res = probe.call(Trigger, '/policy_server/move_to_start', timeout=30.0)
    assert res.success, res.message
    assert res.message.startswith('at the start pose'), res.message
    wait_for(lambda: robot, 5, 'sim_robot/robot_state', procs)
    state = json.loads(probe.snapshot('/sim_robot/robot_state')[-1][1].data)
    assert state['reflex_count'] == 0 and state['rejected'] == 0, state


def test_a_reflex_brakes_waits_and_after_recovery_the_next_goal_is_reached(
        nodes: Nodes, probe: Probe, shipped_bundle: Path) -> None:
    import time

    from diagnostic_msgs.msg import DiagnosticArray
    from std_msgs.msg import String
    from std_srvs.srv import Trigger

    from rl_control.ros import qos

    probe.record(DiagnosticArray, '/diagnostics', qos.DIAGNOSTICS)
    results = probe.record(String, '/sim_robot/episode_result', qos.RESULTS)
    procs = start_fr3(nodes, shipped_bundle,
                      {'episode_s': 8.0, 'goals_file': str(REPO / 'config/reach_goals.yaml')}, {})
    wait_for(lambda: len(results) >= 1, 30, 'a first episode', procs)
    time.sleep(0.3)  # mid-episode: the arm is on its way to the goal
    probe.call(Trigger, '/sim_robot/inject_reflex')
    wait_for(lambda: server_diag(probe).get('robot_error', '').startswith('reflex'), 5,
             'the server to see the reflex', procs)
    probe.call(Trigger, '/sim_robot/recover')
    wait_for(lambda: server_diag(probe).get('robot_recoveries') == '1', 5, 'recovery seen',
             procs)
    wait_for(lambda: len(results) >= 3, 30, 'the episode after the recovery', procs)
    hit, after = (json.loads(m.data) for _t, m in list(results)[1:3])
    last = (hit.get('reflex_log') or {}).get('violation')
    assert hit['reflexes'] == 1 and hit['reflex'] is None, (hit['reflexes'], last)
    assert after['reflexes'] == 0 and after['rejected'] == 0, after
    assert after['success'], after  # the next goal reached (2 cm)
    assert int(server_diag(probe)['reanchors']) >= 1
