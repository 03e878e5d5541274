"""policy_server across processes over real DDS: mapping by name, watchdog, NaN guard, e-stop,
bad bundles. The test process plays the robot (publishes joint states and goals) and records
the commands and /diagnostics that really crossed the process boundary."""
from __future__ import annotations

import math
from pathlib import Path
import threading
import time
from typing import Any

from conftest import Nodes, Probe, server_params, wait_for
import numpy as np
import pytest

pytestmark = pytest.mark.ros

ARM = [f'panda_joint{i}' for i in range(1, 8)]
HOME = np.array([0.0, 0.41, 0.0, -1.85, 0.0, 2.26, 0.79])
GOAL = np.array([0.6, 0.1, 0.2])
PERIOD = 0.04


class StatePublisher:
    """Publishes a JointState at `rate_hz` from a thread until stopped (like a robot driver)."""

    def __init__(self, probe: Probe, names: list[str], pos: np.ndarray, vel: np.ndarray,
                 rate_hz: float = 100.0, stamp_offset_s: float = 0.0) -> None:
        from sensor_msgs.msg import JointState

        from rl_control.ros import qos

        self.pub = probe.publisher(JointState, '/test/joint_states', qos.SENSOR)
        self.probe = probe
        self.names, self.pos, self.vel = names, pos, vel
        self.period = 1.0 / rate_hz
        self.stamp_offset_s = stamp_offset_s
        self.last_publish = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def publish_once(self, pos: np.ndarray | None = None) -> None:
        from rl_control.ros.conversions import make_joint_state, sec_to_stamp

        now = self.probe.node.get_clock().now().nanoseconds * 1e-9 + self.stamp_offset_s
        msg = make_joint_state(self.names, self.pos if pos is None else pos, self.vel,
                               stamp=sec_to_stamp(now))
        self.pub.publish(msg)
        self.last_publish = time.monotonic()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.publish_once()
            time.sleep(self.period)

    def start(self) -> StatePublisher:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> float:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self.last_publish


def publish_goal(probe: Probe, goal: Any = GOAL, frame: str = 'panda_link0') -> None:
    from geometry_msgs.msg import PointStamped

    from rl_control.ros import qos
    from rl_control.ros.conversions import point_stamped

    if not hasattr(probe, '_goal_pub'):
        probe._goal_pub = probe.publisher(PointStamped, '/test/goal', qos.GOAL)
    # goals are volatile: wait until the server (configured) subscribes
    wait_for(lambda: probe._goal_pub.get_subscription_count() > 0, 30, 'goal subscriber')
    probe._goal_pub.publish(point_stamped(goal, frame))


def commands(probe: Probe, since: float = 0.0) -> list[tuple[float, np.ndarray]]:
    return [(t, np.array(m.data)) for t, m in probe.snapshot('/test/commands') if t >= since]


def last_diag(probe: Probe) -> dict[str, str]:
    from rl_control.ros.conversions import diagnostic_values

    for _t, arr in reversed(probe.snapshot('/diagnostics')):
        for st in arr.status:
            if st.name.endswith('policy_server: policy'):
                return {**diagnostic_values(st), '_level': st.level, '_message': st.message}
    return {}


def start_server(nodes: Nodes, probe: Probe, bundle: Path, **over: Any) -> Any:
    from diagnostic_msgs.msg import DiagnosticArray
    from std_msgs.msg import Float64MultiArray

    from rl_control.ros import qos

    probe.record(Float64MultiArray, '/test/commands', qos.COMMAND)
    probe.record(DiagnosticArray, '/diagnostics', qos.DIAGNOSTICS)
    proc = nodes.start('rl_control.ros.policy_server',
                       server_params(bundle, ramp_in_s=0.0, rate_limit=[0.0], **over))
    wait_for(lambda: last_diag(probe).get('active') == 'true', 30, 'server active', [proc])
    return proc


def nonzero(cmd: np.ndarray) -> bool:
    return bool(np.any(np.abs(cmd) > 1e-6))


def expected_command(bundle: Path, names: list[str], pos: np.ndarray, vel: np.ndarray,
                     goal: np.ndarray, order: list[str]) -> np.ndarray:
    """The pure computation the server must reproduce: contract -> policy -> contract."""
    from rl_control.bundle.io import load_bundle
    from rl_control.contract.spec import action_to_command, build_observation, contract_from_yaml

    spec, policy = load_bundle(bundle)
    c = contract_from_yaml(spec)
    obs = build_observation(c.obs_spec, names, pos, vel, goal)
    cmd = action_to_command(c.act_spec, policy.act(obs))
    return cmd[[list(c.obs_spec.joint_names).index(j) for j in order]]


def test_shuffled_joint_state_with_extras_gives_commands_in_controller_order(
        nodes: Nodes, probe: Probe, test_bundle: Path) -> None:
    order = list(reversed(ARM))  # the controller's joint order differs from the policy's
    rng = np.random.default_rng(3)
    names = ARM + ['panda_finger_joint1', 'panda_finger_joint2', 'extra_joint']
    perm = rng.permutation(len(names))
    names = [names[i] for i in perm]
    pos_by_name = dict(zip(ARM, HOME + rng.uniform(-0.2, 0.2, 7), strict=True))
    pos_by_name.update(panda_finger_joint1=0.02, panda_finger_joint2=0.02, extra_joint=9.0)
    vel_by_name = dict(zip(ARM, rng.uniform(-0.3, 0.3, 7), strict=True))
    vel_by_name.update(panda_finger_joint1=0.0, panda_finger_joint2=0.0, extra_joint=-5.0)
    pos = np.array([pos_by_name[n] for n in names])
    vel = np.array([vel_by_name[n] for n in names])

    proc = start_server(nodes, probe, test_bundle, command_joints=order)
    pub = StatePublisher(probe, names, pos, vel).start()
    try:
        publish_goal(probe)
        t0 = time.monotonic()
        wait_for(lambda: sum(nonzero(c) for _, c in commands(probe, t0)) >= 5, 10,
                 'commands', [proc])
    finally:
        pub.stop()
    got = [c for _, c in commands(probe, t0) if nonzero(c)][-1]
    want = expected_command(test_bundle, names, pos, vel, GOAL, order)
    policy_order = expected_command(test_bundle, names, pos, vel, GOAL, ARM)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)
    assert not np.allclose(want, policy_order)  # the reorder really mattered
    assert proc.poll() is None


def test_watchdog_zeroes_within_two_periods_and_old_stamps_are_stale(
        nodes: Nodes, probe: Probe, test_bundle: Path) -> None:
    proc = start_server(nodes, probe, test_bundle, max_state_age_s=0.2)
    pub = StatePublisher(probe, ARM, HOME, np.zeros(7)).start()
    publish_goal(probe)
    t0 = time.monotonic()
    wait_for(lambda: sum(nonzero(c) for _, c in commands(probe, t0)) >= 5, 10, 'commands',
             [proc])
    t_last = pub.stop()
    time.sleep(0.4)
    after = commands(probe, t_last)
    first_zero = next(t for t, c in after if not nonzero(c))
    print(f'watchdog: first zero command {1e3 * (first_zero - t_last):.1f} ms after the last '
          f'joint state (limit {2e3 * PERIOD:.0f} ms)')
    assert first_zero - t_last <= 2 * PERIOD, f'zero after {first_zero - t_last:.3f} s'
    assert all(not nonzero(c) for t, c in after if t > first_zero)
    wait_for(lambda: int(last_diag(probe).get('stale_ticks', 0)) > 0, 3, 'stale in diag')

    # Fresh arrivals with a stamp older than max_state_age_s: still stale.
    old = StatePublisher(probe, ARM, HOME, np.zeros(7), stamp_offset_s=-1.0).start()
    try:
        t1 = time.monotonic()
        time.sleep(0.4)
        cmds = commands(probe, t1)
        assert cmds and all(not nonzero(c) for _, c in cmds)
        wait_for(lambda: last_diag(probe).get('last_reason') == 'old_stamp', 3, 'old_stamp')
    finally:
        old.stop()
    # Fresh data again: commands resume.
    pub.start()
    try:
        t2 = time.monotonic()
        wait_for(lambda: any(nonzero(c) for _, c in commands(probe, t2)), 5, 'resume')
    finally:
        pub.stop()
    assert proc.poll() is None


def test_nan_state_and_goal_give_zero_and_a_diagnostic_and_the_node_keeps_running(
        nodes: Nodes, probe: Probe, test_bundle: Path) -> None:
    proc = start_server(nodes, probe, test_bundle)
    pub = StatePublisher(probe, ARM, HOME, np.zeros(7)).start()
    publish_goal(probe)
    t0 = time.monotonic()
    wait_for(lambda: any(nonzero(c) for _, c in commands(probe, t0)), 10, 'commands', [proc])
    pub.stop()
    bad = HOME.copy()
    bad[2] = math.nan
    t_nan = time.monotonic()
    pub.publish_once(bad)
    wait_for(lambda: commands(probe, t_nan), 2, 'a command after the NaN state')
    assert not nonzero(commands(probe, t_nan)[0][1]), 'NaN state must zero the next command'
    d = wait_for(lambda: (lambda d: d if int(d.get('dropped_state', 0)) >= 1 else None)(
        last_diag(probe)), 3, 'dropped_state in /diagnostics')
    assert d['_level'] != b'\x00'  # not OK while inputs are being dropped

    pub.start()  # valid states again: the node is still serving
    t1 = time.monotonic()
    wait_for(lambda: any(nonzero(c) for _, c in commands(probe, t1)), 5, 'resume after NaN')
    publish_goal(probe, [math.nan, 0.0, 0.2])
    t2 = time.monotonic()
    time.sleep(0.3)
    later = [c for t, c in commands(probe, t2) if t > t2 + 0.1]
    assert later and all(not nonzero(c) for c in later), 'NaN goal must zero commands'
    wait_for(lambda: int(last_diag(probe).get('dropped_goal', 0)) >= 1, 3, 'dropped_goal')
    publish_goal(probe)
    t3 = time.monotonic()
    wait_for(lambda: any(nonzero(c) for _, c in commands(probe, t3)), 5, 'resume after goal')
    pub.stop()
    assert proc.poll() is None


def test_estop_latches_zero_until_reset(nodes: Nodes, probe: Probe, test_bundle: Path) -> None:
    from std_srvs.srv import Trigger

    proc = start_server(nodes, probe, test_bundle)
    pub = StatePublisher(probe, ARM, HOME, np.zeros(7)).start()
    try:
        publish_goal(probe)
        t0 = time.monotonic()
        wait_for(lambda: any(nonzero(c) for _, c in commands(probe, t0)), 10, 'commands',
                 [proc])
        assert probe.call(Trigger, '/policy_server/estop').success
        t1 = time.monotonic()
        time.sleep(0.6)
        cmds = commands(probe, t1)
        assert len(cmds) >= 10 and all(not nonzero(c) for _, c in cmds)
        publish_goal(probe)  # a new goal does not lift the latch
        time.sleep(0.2)
        assert all(not nonzero(c) for _, c in commands(probe, t1))
        wait_for(lambda: last_diag(probe).get('estop') == 'true', 3, 'estop in diagnostics')
        assert probe.call(Trigger, '/policy_server/reset').success
        t2 = time.monotonic()
        wait_for(lambda: any(nonzero(c) for _, c in commands(probe, t2)), 5, 'resume')
    finally:
        pub.stop()
    assert proc.poll() is None


def _corrupt_bundles(src: Path, tmp: Path) -> dict[str, tuple[Path, str]]:
    """name -> (bundle folder, text the error log must contain)."""
    import shutil

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


def test_bad_bundle_fails_configure_with_a_clear_message(
        nodes: Nodes, probe: Probe, test_bundle: Path, tmp_path: Path) -> None:
    cases = _corrupt_bundles(test_bundle, tmp_path)
    procs = {name: nodes.start('rl_control.ros.policy_server',
                               server_params(path), name=f'server_{name}')
             for name, (path, _) in cases.items()}
    # incompatible: a velocity policy cannot drive an effort controller
    procs['incompatible'] = nodes.start(
        'rl_control.ros.policy_server', server_params(test_bundle, command_type='effort'),
        name='server_incompatible')
    cases['incompatible'] = (test_bundle, 'command_type')
    for name, proc in procs.items():
        rc = proc.wait(timeout=60)
        log = nodes.log(proc)
        assert rc == 1, f'{name}: exit {rc}\n{log}'
        assert 'configure failed' in log and cases[name][1] in log, f'{name}:\n{log}'


def test_configure_transition_fails_over_the_lifecycle_service(
        nodes: Nodes, probe: Probe, tmp_path: Path) -> None:
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState, GetState

    proc = nodes.start('rl_control.ros.policy_server',
                       server_params(tmp_path / 'missing_bundle', autostart=False))
    client = probe.node.create_client(ChangeState, '/policy_server/change_state')
    assert client.wait_for_service(timeout_sec=30)
    fut = client.call_async(ChangeState.Request(
        transition=Transition(id=Transition.TRANSITION_CONFIGURE)))
    wait_for(fut.done, 10, 'change_state reply')
    assert fut.result().success is False
    state = probe.node.create_client(GetState, '/policy_server/get_state')
    assert state.wait_for_service(timeout_sec=5)
    f2 = state.call_async(GetState.Request())
    wait_for(f2.done, 5, 'get_state reply')
    assert f2.result().current_state.label == 'unconfigured'
    assert proc.poll() is None  # still alive: a fixed bundle can be configured next
    wait_for(lambda: 'missing_bundle' in nodes.log(proc), 5, 'log naming the bundle')


def _change_state(probe: Probe, transition: int) -> bool:
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState

    client = probe.node.create_client(ChangeState, '/policy_server/change_state')
    assert client.wait_for_service(timeout_sec=30)
    fut = client.call_async(ChangeState.Request(transition=Transition(id=transition)))
    wait_for(fut.done, 20, 'change_state reply')
    return fut.result().success


def test_lifecycle_services_then_deactivate_and_sigint_send_zero(
        nodes: Nodes, probe: Probe, test_bundle: Path) -> None:
    from lifecycle_msgs.msg import Transition
    from std_msgs.msg import Float64MultiArray

    from rl_control.ros import qos

    probe.record(Float64MultiArray, '/test/commands', qos.COMMAND)
    proc = nodes.start('rl_control.ros.policy_server',
                       server_params(test_bundle, autostart=False, ramp_in_s=0.0))
    pub = StatePublisher(probe, ARM, HOME, np.zeros(7)).start()
    try:
        assert _change_state(probe, Transition.TRANSITION_CONFIGURE)
        publish_goal(probe)
        time.sleep(0.3)
        assert not commands(probe), 'inactive: the lifecycle publisher must stay silent'
        assert _change_state(probe, Transition.TRANSITION_ACTIVATE)
        t0 = time.monotonic()
        wait_for(lambda: any(nonzero(c) for _, c in commands(probe, t0)), 10, 'commands')
        assert _change_state(probe, Transition.TRANSITION_DEACTIVATE)
        t1 = time.monotonic()
        time.sleep(0.3)
        after = commands(probe, t1 - 0.05)
        assert after and not nonzero(after[-1][1]), 'deactivate must end on a zero command'
        assert not commands(probe, t1 + 0.1), 'inactive again: silent'
        assert _change_state(probe, Transition.TRANSITION_ACTIVATE)
        t2 = time.monotonic()
        wait_for(lambda: any(nonzero(c) for _, c in commands(probe, t2)), 10, 'reactivated')
        assert nodes.stop(proc) == 0
        time.sleep(0.2)
        assert not nonzero(commands(probe)[-1][1]), 'SIGINT must end on a zero command'
    finally:
        pub.stop()


def test_trajectory_mode_publishes_one_point_in_controller_order(
        nodes: Nodes, probe: Probe, test_bundle: Path) -> None:
    from trajectory_msgs.msg import JointTrajectory

    from rl_control.ros import qos

    order = [ARM[i] for i in (2, 0, 1, 6, 5, 4, 3)]
    traj = probe.record(JointTrajectory, '/test/commands', qos.COMMAND)
    proc = nodes.start('rl_control.ros.policy_server', server_params(
        test_bundle, command_type='trajectory', command_joints=order, ramp_in_s=0.0,
        rate_limit=[0.0]))
    q = HOME + 0.05
    pub = StatePublisher(probe, ARM, q, np.zeros(7)).start()
    try:
        publish_goal(probe)
        wait_for(lambda: any(np.any(np.abs(m.points[0].velocities) > 1e-6) for _t, m in traj),
                 20, 'a moving trajectory point', [proc])
    finally:
        pub.stop()
    m = [m for _t, m in traj if np.any(np.abs(m.points[0].velocities) > 1e-6)][-1]
    assert list(m.joint_names) == order and len(m.points) == 1
    pt = m.points[0]
    want_v = expected_command(test_bundle, ARM, q, np.zeros(7), GOAL, order)
    np.testing.assert_allclose(pt.velocities, want_v, rtol=1e-6, atol=1e-9)
    dt = pt.time_from_start.sec + pt.time_from_start.nanosec * 1e-9
    assert dt == pytest.approx(PERIOD)
    q_order = np.array([q[ARM.index(j)] for j in order])
    np.testing.assert_allclose(pt.positions, q_order + want_v * dt, atol=1e-9)
