"""The policy server driven in-process: decisions inside one node that messages across processes
would show only slowly or by chance, and a fault injected where no process boundary reaches
(the services thread dying under a running arm).
"""
from __future__ import annotations

from pathlib import Path
import signal
import threading
import time
from typing import Any

from conftest import (
    PANDA_ARM,
    PANDA_HOME,
    Probe,
    TrackingRobot,
    assert_brakes_to_rest,
    make_test_bundle,
    peak_speed,
    server_params,
    wait_for,
)
import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy', reason='ROS 2 Python packages (rclpy) are not installed')

from builtin_interfaces.msg import Time  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from rl_control.ros import conversions as conv  # noqa: E402
from rl_control.ros.policy_server import PolicyServer  # noqa: E402

pytestmark = pytest.mark.ros

GOAL = [0.6, 0.1, 0.2]


def _stamp(t: float) -> Time:
    return conv.sec_to_stamp(t)


def make_server(bundle: Path, context: Any = None, **params: Any) -> PolicyServer:
    p = {**server_params(bundle, ramp_in_s=0.0), **params}
    p.pop('autostart')
    kwargs = {'context': context} if context is not None else {}
    node = PolicyServer(parameter_overrides=[Parameter(k, value=v) for k, v in p.items()],
                        **kwargs)
    node.trigger_configure()
    node.trigger_activate()
    return node


@pytest.fixture()
def private_context():
    context = rclpy.Context()  # its own: other tests in this process hold the default one
    rclpy.init(context=context)
    try:
        yield context
    finally:
        rclpy.shutdown(context=context)


def _destroy(node: PolicyServer) -> None:
    node.state_node.destroy_node()
    node.destroy_node()


def test_state_trigger_answers_once_per_stamp_and_restarts_after_a_step_back(
        private_context: Any, test_bundle: Path) -> None:
    """Lockstep semantics on a sim clock set by hand (what /clock would say)."""
    from rclpy.time import Time as RclTime

    node = make_server(test_bundle, private_context, trigger='state', max_state_age_s=0.0,
                       use_sim_time=True)
    try:
        node._on_goal(conv.point_stamped(GOAL, 'panda_link0'))

        def send(t: float, clock: float | None = None) -> None:
            node._ctrl_clock.set_ros_time_override(RclTime(
                nanoseconds=round((t if clock is None else clock) * 1e9)))
            node._on_state(conv.make_joint_state(PANDA_ARM, PANDA_HOME, np.zeros(7),
                                                 stamp=_stamp(t)))

        for k in range(5):
            send(100.0 + 0.04 * k)
        assert node.loop.ticks == 5
        send(100.16)  # a re-sent state: not answered again
        assert node.loop.ticks == 5
        for k in range(1, 40):  # 1 kHz states between two periods: decimated
            send(100.16 + 1e-3 * k)
        assert node.loop.ticks == 5
        send(100.2, clock=100.16)  # its /clock not processed yet: answered at its stamp
        assert node.loop.ticks == 6 and node.loop.last_tick == pytest.approx(100.2)
        # The simulator restarts (its clock steps back to 0): fresh states are answered at
        # once, and plans start at the new time
        for k in range(3):
            send(0.04 * (k + 1))
        assert node.loop.ticks == 9
        assert node.loop.shaper.plan.t0 < 1.0
    finally:
        _destroy(node)


def test_empty_velocities_are_fine_when_the_policy_does_not_observe_them(
        private_context: Any, test_bundle: Path, tmp_path: Path) -> None:
    no_vel = make_test_bundle(tmp_path / 'no_joint_vel', joint_velocities=False)
    node = make_server(no_vel, private_context)
    plain = make_server(test_bundle, private_context, command_topic='/test/commands_plain')
    try:
        for n in (node, plain):
            n._on_goal(conv.point_stamped(GOAL, 'panda_link0'))
            n._on_state(conv.make_joint_state(PANDA_ARM, PANDA_HOME, [],
                                              stamp=_stamp(time.time())))
            n._tick()
        assert 'joint_vel' not in node.loop.obs_spec.terms
        assert node.loop.reason == 'ok' and node.loop.cache.last_error is None
        assert plain.loop.reason == 'no_state'
        assert 'no velocities' in plain.loop.cache.last_error
    finally:
        _destroy(node)
        _destroy(plain)


class DyingExecutor(SingleThreadedExecutor):
    """The services thread's executor, with a fault injected once `armed` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = threading.Event()
        self.died_at = 0.0

    def spin_once(self, timeout_sec: float | None = None) -> None:
        if self.armed.is_set():
            self.died_at = time.monotonic()
            raise RuntimeError('injected fault in the services thread')
        super().spin_once(timeout_sec=0.01)


def test_an_exception_in_the_services_thread_brakes_the_arm(
        ros_context: None, probe: Probe, test_bundle: Path) -> None:
    from rl_control.ros import hosting
    from rl_control.serve import diagnostics

    robot = TrackingRobot(probe)
    node = make_server(test_bundle)
    services, control = DyingExecutor(), SingleThreadedExecutor()
    seen: dict[str, Any] = {}

    def scenario() -> None:
        try:
            from geometry_msgs.msg import PointStamped

            from rl_control.ros import qos

            pub = probe.publisher(PointStamped, '/test/goal', qos.GOAL)
            wait_for(lambda: pub.get_subscription_count() > 0, 10, 'goal subscriber')
            pub.publish(conv.point_stamped(GOAL, 'panda_link0'))
            wait_for(lambda: sum(peak_speed(m) > 0.05 for _t, m in list(robot.commands)) >= 3,
                     10, 'moving')
            services.armed.set()
            wait_for(lambda: node.loop.reason == 'internal_error', 2, 'internal_error')
            seen['level'] = diagnostics.level_and_message(True, node.loop.reason, 25, 25)
            time.sleep(0.8)
        except BaseException as exc:  # noqa: BLE001 - reported by the test body
            seen['error'] = exc
        finally:
            signal.raise_signal(signal.SIGINT)  # what Ctrl-C does: brake and shut down

    def on_stop() -> None:
        node.pump = lambda dt: control.spin_once(timeout_sec=dt)
        node.trigger_shutdown()

    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    robot.start()
    threading.Thread(target=scenario, daemon=True).start()
    try:
        hosting.run_with_background(node, node.state_node, services, control, on_stop,
                                    node.fail)
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
        robot.stop()
        _destroy(node)
    if 'error' in seen:
        raise seen['error']
    assert services.died_at > 0
    assert seen['level'] == (diagnostics.ERROR, 'stopped: internal_error')
    t_rest = assert_brakes_to_rest(robot, services.died_at, 0.1)
    print(f'services thread died: reference at rest after {1e3 * t_rest:.0f} ms')
    assert node.failure == 'services thread died'


def test_an_exception_in_a_callback_latches_and_neither_it_nor_the_shutdown_path_raises(
        private_context: Any, test_bundle: Path) -> None:
    node = make_server(test_bundle, private_context)
    try:
        node._on_goal(conv.point_stamped(GOAL, 'panda_link0'))
        node._on_state(conv.make_joint_state(PANDA_ARM, PANDA_HOME, np.zeros(7),
                                             stamp=_stamp(time.time())))
        node._tick()
        assert node.loop.reason == 'ok'

        def boom(*_args: Any) -> None:
            raise ValueError('-101 is not a valid Result.')

        node.loop.tick = boom  # what Ruckig's unknown error code did inside a tick
        node._tick()
        node._on_state(conv.make_joint_state(PANDA_ARM, PANDA_HOME, np.zeros(7),
                                             stamp=_stamp(time.time())))
        assert node.loop.failure == 'tick: ValueError: -101 is not a valid Result.'
        assert node.loop.input_problem(node._now(), time.monotonic()) == 'internal_error'
        node.stop_robot('shutdown')  # ticks again, as SIGINT's path does
        del node.loop.tick
        node._on_reset(None, type('R', (), {})())
        assert node.loop.failure is None
    finally:
        _destroy(node)
