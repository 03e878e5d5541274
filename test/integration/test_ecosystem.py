"""Ecosystem features across processes: shadow mode with recording (a SIGKILLed server leaves
a readable rosbag2 that `rl-control gap` replays), and two robots under namespaces on one
domain, neither hearing the other."""
from __future__ import annotations

import json
from pathlib import Path
import subprocess
import sys

from conftest import Nodes, Probe, TrackingRobot, peak_speed, server_diag, wait_for
import numpy as np
import pytest
from test_policy_server import publish_goal, start_server

pytestmark = pytest.mark.ros


def test_shadow_mode_publishes_only_on_shadow_command_and_the_recording_survives_sigkill(
        nodes: Nodes, probe: Probe, test_bundle: Path, tmp_path: Path) -> None:
    from trajectory_msgs.msg import JointTrajectory

    from rl_control.robots.recording import read_recording
    from rl_control.ros import qos

    shadow = probe.record(JointTrajectory, '/policy_server/shadow_command', qos.COMMAND)
    robot = TrackingRobot(probe)  # listens on the controller topic, /test/commands
    rec = tmp_path / 'rec'
    proc = start_server(nodes, probe, test_bundle, shadow=True, record_dir=str(rec),
                        record_segment_s=0.3)
    robot.start()
    try:
        publish_goal(probe)
        wait_for(lambda: sum(peak_speed(m) > 0.05 for _t, m in probe.snapshot(
            '/policy_server/shadow_command')) >= 10, 20, 'moving shadow commands', [proc])
        wait_for(lambda: len(list(rec.glob('seg_*'))) >= 3, 10, 'closed segments', [proc])
        assert 'SHADOW' in server_diag(probe)['_message']
        proc.kill()  # SIGKILL: no cleanup, the segment being written is lost
        proc.wait(10)
    finally:
        robot.stop()
    assert robot.commands == [], 'a shadow server published on the controller topic'
    assert shadow
    topics: dict[str, int] = {}
    for topic, _ty, _t, _msg in read_recording(rec):  # every closed segment reads back
        topics[topic] = topics.get(topic, 0) + 1
    assert {'/test/joint_states', '/test/goal', '/policy_server/shadow_command',
            '/diagnostics'} <= set(topics), topics
    assert topics['/policy_server/shadow_command'] >= 5


def run_demo_async(ns: str, out: Path, domain: str, rec: Path | None = None
                   ) -> subprocess.Popen:
    args = [sys.executable, '-m', 'rl_control.ros.demo', '--namespace', ns, '--lockstep',
            '--episodes', '3', '--json', '--out', str(out), '--domain-id', domain]
    if rec is not None:
        args += ['--record', str(rec)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_two_robots_under_namespaces_each_reach_their_goals_and_hear_only_their_server(
        probe: Probe, shipped_bundle: Path, tmp_path: Path) -> None:
    import os

    domain = os.environ['ROS_DOMAIN_ID']
    procs = {ns: run_demo_async(ns, tmp_path / ns.strip('/'), domain,
                                tmp_path / 'rec' if ns == '/robot1' else None)
             for ns in ('/robot1', '/robot2')}
    node = probe.node
    wiring: dict[str, tuple[list[str], list[str]]] = {}

    def wired() -> bool:  # both pairs up: who publishes and who listens on each robot's topics
        for ns in procs:
            cmd = f'{ns}/panda_position_trajectory_controller/joint_trajectory'
            pubs = sorted(i.node_namespace + '/' + i.node_name
                          for i in node.get_publishers_info_by_topic(cmd))
            subs = sorted(i.node_namespace + '/' + i.node_name
                          for i in node.get_subscriptions_info_by_topic(f'{ns}/joint_states'))
            wiring[ns] = (pubs, subs)
        return all(w[0] and w[1] and 'UNKNOWN' not in ''.join(w[0] + w[1])
                   for w in wiring.values())  # (node names arrive after the endpoints)

    wait_for(wired, 60, 'both robots wired', list(procs.values()))
    summaries = {}
    for ns, p in procs.items():
        out, err = p.communicate(timeout=400)
        assert p.returncode == 0, err[-3000:]
        summaries[ns] = json.loads(out.strip().splitlines()[-1])
    for ns, (pubs, subs) in wiring.items():
        assert pubs == [f'{ns}/policy_server'], pubs  # only its own server commands it
        assert all(s.startswith(f'{ns}/') for s in subs), subs  # only its own server listens
    for topic in ('/panda_position_trajectory_controller/joint_trajectory', '/joint_states'):
        assert node.get_publishers_info_by_topic(topic) == [], topic  # nothing un-namespaced
    for ns, s in summaries.items():
        assert s['namespace'] == ns and s['episodes'] == 3
        assert s['reflexes'] == 0 and s['rejected'] == 0, (ns, s)
        assert s['held_5cm'] >= 2 / 3, (ns, s)
    # the recording of robot1's session replays through the twin (lockstep: identical)
    gap = subprocess.run([sys.executable, '-m', 'rl_control.cli', 'gap', str(tmp_path / 'rec'),
                          '--out', str(tmp_path / 'gap'), '--json'], capture_output=True,
                         text=True, timeout=300)
    assert gap.returncode == 0, gap.stdout[-2000:] + gap.stderr[-2000:]
    report = json.loads(gap.stdout.strip().splitlines()[-1])
    assert max(report['rms_rad']) < 1e-3 and report['twin_reflexes'] == 0, report
    assert np.isfinite(report['rms_rad']).all()
