"""policy_server across processes over real DDS, in trajectory mode (its default) and velocity
mode. The test process plays the robot: `TrackingRobot` publishes joint states that follow the
server's own commands (an arm that tracks perfectly), and the test records what really crossed
the process boundary: JointTrajectory messages, /diagnostics, exit codes and logs.

Every stop must be a BRAKE: a trajectory that starts from the motion and ends at zero
velocity, within the robot's limits; never an instant zero and never silence while moving.
"""
from __future__ import annotations

import math
from pathlib import Path
import shutil
import signal
import subprocess
import sys
import time
from typing import Any

from conftest import (
    PANDA_ARM,
    PANDA_HOME,
    Nodes,
    Probe,
    TrackingRobot,
    assert_brakes_to_rest,
    computed_at,
    last_velocities,
    peak_speed,
    server_diag,
    server_params,
    traj_after,
    wait_for,
)
import numpy as np
import pytest

pytestmark = pytest.mark.ros

GOAL = np.array([0.6, 0.1, 0.2])
PERIOD = 0.04
STALE_S = 1.5 * PERIOD   # stale_periods default
SLACK_S = 0.1            # a state's delivery to the server on this loaded 2-core host
REACT_S = STALE_S + 0.01 + SLACK_S  # + the 10 ms watchdog period
OK, WARN, ERROR = 0, 1, 2


def publish_goal(probe: Probe, goal: Any = GOAL, frame: str = 'panda_link0',
                 topic: str = '/test/goal') -> None:
    from geometry_msgs.msg import PointStamped

    from rl_control.ros import qos
    from rl_control.ros.conversions import point_stamped

    pubs = probe.__dict__.setdefault('_goal_pubs', {})
    if topic not in pubs:
        pubs[topic] = probe.publisher(PointStamped, topic, qos.GOAL)
    # goals are volatile: wait until the (configured) server subscribes
    wait_for(lambda: pubs[topic].get_subscription_count() > 0, 30, 'goal subscriber')
    pubs[topic].publish(point_stamped(goal, frame))


def record_diagnostics(probe: Probe) -> None:
    from diagnostic_msgs.msg import DiagnosticArray

    from rl_control.ros import qos

    if '/diagnostics' not in probe.records:
        probe.record(DiagnosticArray, '/diagnostics', qos.DIAGNOSTICS)


def start_server(nodes: Nodes, probe: Probe, bundle: Path, **over: Any) -> Any:
    record_diagnostics(probe)
    params = server_params(bundle, ramp_in_s=0.0, **over)
    proc = nodes.start('rl_control.ros.policy_server', params)
    if params.get('autostart', True):
        wait_for(lambda: server_diag(probe).get('active') == 'true', 30, 'server active',
                 [proc])
    return proc


def wait_moving(robot: TrackingRobot, since: float, proc: Any, n: int = 3,
                speed: float = 0.05) -> None:
    wait_for(lambda: sum(peak_speed(m) > speed for _t, m in traj_after(robot.commands, since))
             >= n, 15, 'moving trajectories', [proc])


def expected_first_message(bundle: Path, names: list[str], pos: np.ndarray,
                           order: list[str]) -> Any:
    """The pure computation the server must reproduce for its first move from rest."""
    from rl_control.bundle.io import load_bundle
    from rl_control.serve.loop import ServingLoop
    from rl_control.serve.settings import ServeSettings

    spec, policy = load_bundle(bundle)
    loop = ServingLoop(spec, policy, ServeSettings(command_joints=order, ramp_in_s=0.0))
    loop.activate(0.0)
    loop.on_goal('panda_link0', GOAL)
    loop.on_state(0.0, 0.0, names, pos, np.zeros(len(names)), 0.0)
    return loop.tick(0.0, 0.0).trajectory


def test_joint_states_mapped_by_name_and_commands_in_controller_order(
        nodes: Nodes, probe: Probe, test_bundle: Path) -> None:
    order = [PANDA_ARM[i] for i in (6, 5, 4, 3, 2, 1, 0)]  # the controller's own order
    rng = np.random.default_rng(3)
    names = [*PANDA_ARM, 'panda_finger_joint1', 'panda_finger_joint2', 'extra_joint']
    names = [names[i] for i in rng.permutation(len(names))]
    q0 = PANDA_HOME + rng.uniform(-0.2, 0.2, 7)
    robot = TrackingRobot(probe, q0, names=names, extras={'extra_joint': 9.0,
                                                          'panda_finger_joint1': 0.04})
    proc = start_server(nodes, probe, test_bundle, command_joints=order)
    robot.start()
    try:
        publish_goal(probe)
        wait_for(lambda: robot.commands, 10, 'a trajectory', [proc])
        wait_moving(robot, 0.0, proc)
    finally:
        robot.stop()
    first = robot.commands[0][1]
    pos = np.array([dict(zip(PANDA_ARM, q0, strict=True)).get(n, 0.0) for n in names])
    pos[names.index('extra_joint')], pos[names.index('panda_finger_joint1')] = 9.0, 0.04
    want = expected_first_message(test_bundle, names, pos, order)
    assert list(first.joint_names) == order
    assert len(first.points) == len(want.points)
    for got, exp in zip(first.points, want.points, strict=True):  # ROS time as float seconds
        np.testing.assert_allclose(got.positions, exp.positions, atol=1e-6)  # (~0.2 us at 2e9)
        np.testing.assert_allclose(got.velocities, exp.velocities, atol=1e-5)
    np.testing.assert_allclose(first.points[0].positions, q0[[PANDA_ARM.index(j)
                                                               for j in order]], atol=1e-12)
    for _t, m in robot.commands:  # every message a default JTC accepts: it ends at rest
        assert np.all(last_velocities(m) == 0.0)
    assert proc.poll() is None


def test_watchdog_states_stop_then_old_stamps_brake_within_the_stale_window(
        nodes: Nodes, probe: Probe, test_bundle: Path) -> None:
    robot = TrackingRobot(probe)
    proc = start_server(nodes, probe, test_bundle, max_state_age_s=0.2)
    robot.start()
    publish_goal(probe)
    wait_moving(robot, 0.0, proc)
    t_last = robot.stop()
    time.sleep(1.2)
    # a brake computed once the stale window has passed; ordinary ticks may come until then
    t_rest = assert_brakes_to_rest(robot, t_last, REACT_S, react_from_s=STALE_S - 0.005)
    off = robot.now() - time.monotonic()
    t_brake = min(computed_at(robot, m, off) for _t, m in robot.commands
                  if computed_at(robot, m, off) > t_last + STALE_S - 0.005)
    print(f'watchdog: brake computed {1e3 * (t_brake - t_last):.1f} ms after the last joint '
          f'state was sent (stale window {1e3 * STALE_S:.0f} ms), reference at rest after '
          f'{1e3 * t_rest:.0f} ms')
    wait_for(lambda: server_diag(probe).get('last_reason') == 'stale_state', 3, 'stale_state')
    assert server_diag(probe)['_level'] == WARN

    # Fresh arrivals stamped older than max_state_age_s: the arm stays at rest.
    robot.stamp_offset_s = -1.0
    robot.start()
    try:
        wait_for(lambda: server_diag(probe).get('last_reason') == 'old_stamp', 3, 'old_stamp')
        t1 = time.monotonic()
        time.sleep(0.3)
        assert all(peak_speed(m) == 0.0 for _t, m in traj_after(robot.commands, t1))
        robot.stamp_offset_s = 0.0  # fresh again: moving again
        wait_moving(robot, time.monotonic(), proc)
    finally:
        robot.stop()
    assert proc.poll() is None


def test_nan_state_and_nan_goal_brake_and_the_node_keeps_serving(
        nodes: Nodes, probe: Probe, test_bundle: Path) -> None:
    robot = TrackingRobot(probe)
    proc = start_server(nodes, probe, test_bundle)
    robot.start()
    try:
        publish_goal(probe)
        wait_moving(robot, 0.0, proc)

        def nan_joint3(pos: np.ndarray, vel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            pos = pos.copy()
            pos[2] = math.nan
            return pos, vel

        robot.corrupt = nan_joint3
        time.sleep(1.0)
        # at that state (its delivery), not at the next tick
        assert_brakes_to_rest(robot, robot.corrupt_since, SLACK_S)
        d = wait_for(lambda: (lambda d: d if int(d.get('dropped_state', 0)) >= 1 else None)(
            server_diag(probe)), 3, 'dropped_state in /diagnostics')
        assert d['_level'] == WARN and 'NaN' in d['state_error']
        assert d['last_reason'] == 'bad_state'

        robot.corrupt, robot.corrupt_since = None, 0.0  # valid states again: serving again
        wait_moving(robot, time.monotonic(), proc)
        t_goal = time.monotonic()
        publish_goal(probe, [math.nan, 0.0, 0.2])
        time.sleep(1.0)
        assert_brakes_to_rest(robot, t_goal, PERIOD + SLACK_S)  # at the next tick
        d = wait_for(lambda: (lambda d: d if int(d.get('goal_refused', 0)) >= 1 else None)(
            server_diag(probe)), 3, 'goal_refused')
        assert 'NaN' in d['goal_error']
        publish_goal(probe)
        wait_moving(robot, time.monotonic(), proc)
    finally:
        robot.stop()
    assert proc.poll() is None


def test_estop_latches_a_brake_until_reset(nodes: Nodes, probe: Probe,
                                           test_bundle: Path) -> None:
    from std_srvs.srv import Trigger

    robot = TrackingRobot(probe)
    proc = start_server(nodes, probe, test_bundle)
    robot.start()
    try:
        publish_goal(probe)
        wait_moving(robot, 0.0, proc)
        t0 = time.monotonic()
        assert probe.call(Trigger, '/policy_server/estop').success
        call_s = time.monotonic() - t0  # the server brakes before it replies
        publish_goal(probe)  # a new goal does not lift the latch
        time.sleep(1.0)
        t_rest = assert_brakes_to_rest(robot, t0, call_s + 0.005)
        print(f'e-stop: reference at rest after {1e3 * t_rest:.0f} ms')
        d = wait_for(lambda: (lambda d: d if d.get('estop') == 'true' else None)(
            server_diag(probe)), 3, 'estop in diagnostics')
        assert d['_level'] == ERROR and 'estop' in d['_message']
        assert probe.call(Trigger, '/policy_server/reset').success
        wait_moving(robot, time.monotonic(), proc)
    finally:
        robot.stop()
    assert proc.poll() is None


def _corrupt_bundles(src: Path, tmp: Path) -> dict[str, tuple[Path, str]]:
    """name -> (bundle folder, text the error log must contain)."""
    out: dict[str, tuple[Path, str]] = {'missing': (tmp / 'nope', 'nope')}
    bad_yaml = tmp / 'bad_yaml'
    shutil.copytree(src, bad_yaml)
    (bad_yaml / 'policy.yaml').write_text('format: [unclosed\n')
    out['bad_yaml'] = (bad_yaml, 'policy.yaml')
    bad_weights = tmp / 'bad_weights'
    shutil.copytree(src, bad_weights)
    (bad_weights / 'actor.safetensors').write_bytes(b'garbage')
    out['bad_weights'] = (bad_weights, 'actor.safetensors')
    return out


def test_bad_bundles_fail_configure_with_a_clear_message(
        nodes: Nodes, probe: Probe, test_bundle: Path, tmp_path: Path) -> None:
    cases = _corrupt_bundles(test_bundle, tmp_path)
    procs = {name: nodes.start('rl_control.ros.policy_server', server_params(path),
                               name=f'server_{name}') for name, (path, _) in cases.items()}
    # incompatible: a velocity policy cannot drive an effort controller
    procs['incompatible'] = nodes.start(
        'rl_control.ros.policy_server', server_params(test_bundle, command_type='effort'),
        name='server_incompatible')
    cases['incompatible'] = (test_bundle, "cannot drive command_type 'effort'")
    for name, proc in procs.items():
        rc = proc.wait(timeout=60)
        log = nodes.log(proc)
        assert rc == 1, f'{name}: exit {rc}\n{log}'
        assert 'configure failed' in log and cases[name][1] in log, f'{name}:\n{log}'


def _change_state(probe: Probe, transition: int) -> bool:
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState

    client = probe.node.create_client(ChangeState, '/policy_server/change_state')
    assert client.wait_for_service(timeout_sec=30)
    fut = client.call_async(ChangeState.Request(transition=Transition(id=transition)))
    wait_for(fut.done, 20, 'change_state reply')
    return fut.result().success


def test_diagnostics_from_construction_and_configure_failure_is_an_error(
        nodes: Nodes, probe: Probe, tmp_path: Path) -> None:
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import GetState

    record_diagnostics(probe)
    proc = nodes.start('rl_control.ros.policy_server',
                       server_params(tmp_path / 'missing_bundle', autostart=False))
    d = wait_for(lambda: server_diag(probe), 30, '/diagnostics before any transition', [proc])
    assert d['_level'] == WARN and d['_message'] == 'unconfigured'
    assert not _change_state(probe, Transition.TRANSITION_CONFIGURE)
    d = wait_for(lambda: (lambda d: d if d.get('_level') == ERROR else None)(
        server_diag(probe)), 5, 'ERROR on /diagnostics')
    assert d['_message'].startswith('configure failed') and 'missing_bundle' in d['_message']
    client = probe.node.create_client(GetState, '/policy_server/get_state')
    assert client.wait_for_service(timeout_sec=5)
    fut = client.call_async(GetState.Request())
    wait_for(fut.done, 5, 'get_state reply')
    assert fut.result().current_state.label == 'unconfigured'
    assert proc.poll() is None  # still alive: a fixed bundle can be configured next


def test_lifecycle_deactivate_and_sigint_brake(nodes: Nodes, probe: Probe,
                                               test_bundle: Path) -> None:
    from lifecycle_msgs.msg import Transition

    robot = TrackingRobot(probe)
    proc = start_server(nodes, probe, test_bundle, autostart=False)
    robot.start()
    try:
        assert _change_state(probe, Transition.TRANSITION_CONFIGURE)
        publish_goal(probe)
        time.sleep(0.3)
        assert not robot.commands, 'inactive: the lifecycle publisher stays silent'
        assert _change_state(probe, Transition.TRANSITION_ACTIVATE)
        wait_moving(robot, 0.0, proc)
        t0 = time.monotonic()
        assert _change_state(probe, Transition.TRANSITION_DEACTIVATE)
        t1 = time.monotonic()  # the brake goes out before the transition completes
        time.sleep(0.8)
        assert_brakes_to_rest(robot, t0, t1 - t0 + 0.005)
        assert not traj_after(robot.commands, t1 + 0.05), 'inactive again: silent'
        assert _change_state(probe, Transition.TRANSITION_ACTIVATE)
        t_active = time.monotonic()
        time.sleep(0.5)  # the goal was forgotten on deactivate: no motion toward it
        assert not [m for t, m in traj_after(robot.commands, t_active) if peak_speed(m) > 0]
        publish_goal(probe)
        wait_moving(robot, time.monotonic(), proc)
        t2 = time.monotonic()
        assert nodes.stop(proc) == 0, nodes.log(proc)[-2000:]
        time.sleep(0.8)
        assert_brakes_to_rest(robot, t2, 1.0)
        assert 'braking to rest' in nodes.log(proc)
    finally:
        robot.stop()


def test_partial_messages_keep_the_arm_moving_while_every_joint_is_fresh(
        nodes: Nodes, probe: Probe, test_bundle: Path) -> None:
    fingers = ['panda_finger_joint1', 'panda_finger_joint2']
    names = [*PANDA_ARM, *fingers]
    halves = [PANDA_ARM[:4], PANDA_ARM[4:], fingers]   # three messages per cycle
    robot = TrackingRobot(probe, names=names, groups=halves)
    proc = start_server(nodes, probe, test_bundle)
    robot.start()
    try:
        publish_goal(probe)
        wait_moving(robot, 0.0, proc)
        t0 = time.monotonic()
        time.sleep(0.5)
        moving = [m for _t, m in traj_after(robot.commands, t0)]
        assert len(moving) >= 8
        wait_for(lambda: server_diag(probe).get('last_reason') == 'ok', 3, 'ok', [proc])
        # moving right now (a stalled test thread can make the server brake before the event)
        t_check = time.monotonic()
        wait_for(lambda: [m for _t, m in traj_after(robot.commands, t_check)
                          if peak_speed(m) > 0.0], 3, 'a moving command', [proc])
        t_half = time.monotonic()
        robot.groups = [PANDA_ARM[:4], fingers]   # joints 5-7 stop reporting
        time.sleep(1.0)
        assert_brakes_to_rest(robot, t_half, REACT_S, react_from_s=STALE_S - 0.005)
        wait_for(lambda: server_diag(probe).get('last_reason') == 'stale_state', 3, 'stale')
    finally:
        robot.stop()


def test_duplicate_joint_names_are_refused_naming_them_and_a_rate_unlike_the_bundles_warns(
        nodes: Nodes, probe: Probe, test_bundle: Path) -> None:
    robot = TrackingRobot(probe, names=[*PANDA_ARM, 'panda_joint3'])
    proc = start_server(nodes, probe, test_bundle, control_rate_hz=50.0)
    robot.start()
    try:
        publish_goal(probe)
        d = wait_for(lambda: (lambda d: d if 'duplicate' in d.get('_message', '') else None)(
            server_diag(probe)), 5, 'duplicate_joints on /diagnostics', [proc])
        assert d['_level'] == ERROR and "['panda_joint3']" in d['_message']
        assert not any(peak_speed(m) > 0 for _t, m in robot.commands)
    finally:
        robot.stop()
    assert 'control_rate_hz 50 differs' in d['warnings']
    assert 'control_rate_hz 50 differs' in nodes.log(proc)


def test_velocity_mode_streams_and_brakes_within_the_acceleration_limit(
        nodes: Nodes, probe: Probe, test_bundle: Path) -> None:
    from rl_control.robots.profiles import PANDA

    robot = TrackingRobot(probe, command_type='velocity', rate_hz=250.0)
    proc = start_server(nodes, probe, test_bundle, command_type='velocity',
                        stream_rate_hz=500.0)
    robot.start()
    publish_goal(probe)
    wait_for(lambda: any(np.abs(m.data).max() > 0.05 for _t, m in robot.commands), 10,
             'a moving velocity command', [proc])
    time.sleep(0.3)
    t_last = robot.stop()
    time.sleep(0.6)
    after = [(t, np.array(m.data)) for t, m in traj_after(robot.commands, t_last)]
    times, v = np.array([t for t, _c in after]), np.array([c for _t, c in after])
    assert np.all(v[-1] == 0.0), 'the stream ends at rest'
    speed = np.abs(v).max(1)
    first_zero = int(np.argmax(speed == 0.0))
    assert first_zero > 10, 'a stream that brakes, not an instant zero'
    # no joint stops faster than its acceleration limit allows (receive times jitter, the
    # whole stop does not)
    need = np.abs(v[0]) / PANDA.qdd_max
    took = times[first_zero] - times[0]
    assert np.all(took >= 0.9 * need - 0.005), (took, need)
    print(f'velocity brake: {first_zero} commands from {speed[0]:.3f} rad/s to rest')
    assert proc.poll() is None


def test_under_sim_time_a_dead_clock_and_states_brake_on_the_steady_backstop(
        nodes: Nodes, probe: Probe, test_bundle: Path) -> None:
    import threading

    from rosgraph_msgs.msg import Clock

    from rl_control.ros.conversions import sec_to_stamp

    clock_pub = probe.publisher(Clock, '/clock', 10)
    stop_clock = threading.Event()

    def run_clock() -> None:
        while not stop_clock.is_set():
            t = probe.node.get_clock().now().nanoseconds * 1e-9
            clock_pub.publish(Clock(clock=sec_to_stamp(t)))
            time.sleep(0.004)

    clock = threading.Thread(target=run_clock, daemon=True)
    clock.start()
    robot = TrackingRobot(probe)
    try:
        proc = start_server(nodes, probe, test_bundle, use_sim_time=True, backstop_s=0.3)
        robot.start()
        publish_goal(probe)
        wait_moving(robot, 0.0, proc)
        stop_clock.set()  # the simulator died: no /clock, no states; the ROS clock stands
        clock.join()
        t_last = robot.stop()
        time.sleep(1.5)
        # the ROS clock stands: only the steady backstop can brake
        t_rest = assert_brakes_to_rest(robot, t_last, 0.3 + 0.01 + SLACK_S, react_from_s=0.29,
                                       by_arrival=True)
        print(f'sim time, no /clock: at rest {1e3 * t_rest:.0f} ms after the last state '
              '(backstop 300 ms)')
    finally:
        stop_clock.set()
        robot.stop()


@pytest.mark.parametrize('command,prog', [('serve', 'policy_server'), ('sim', 'sim_robot')])
def test_help_prints_the_parameters_and_starts_no_node(command: str, prog: str) -> None:
    exe = Path(sys.executable).with_name('rl-control')
    cmd = [str(exe)] if exe.exists() else [sys.executable, '-m', 'rl_control.cli']
    t0 = time.monotonic()
    out = subprocess.run([*cmd, command, '--help'], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f'usage: {prog}') and 'parameters:' in out.stdout
    assert 'command_type' in out.stdout and 'one of trajectory|velocity|effort' in out.stdout
    assert '[INFO]' not in out.stdout + out.stderr, 'a node started'
    print(f'{command} --help: {time.monotonic() - t0:.2f} s')
    # a typo in a parameter value is refused before anything moves
    bad = subprocess.run([*cmd, command, '--ros-args', '-p', 'command_type:=torque'],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and 'command_type' in bad.stderr, bad.stderr
    assert signal.SIGINT  # (no process left to stop)
