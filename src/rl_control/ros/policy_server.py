"""policy_server: a lifecycle node hosting `serve.loop.ServingLoop` on a robot's topics.

Messages in, the pure loop decides (serve/loop.py), messages out. configure loads the bundle
(a failure fails the transition and shows as ERROR on /diagnostics); activate starts the policy
tick, the velocity/effort stream and the watchdog; deactivate, shutdown, SIGINT, an e-stop and
every bad input brake to rest within the robot's limits. The control path runs on a bare node
in the main thread, services and /diagnostics on this node in a background thread (one lock
orders them); if that thread dies, the loop latches an internal error and brakes.

`record_dir` records what the server heard and said (joint states, goals, commands,
/diagnostics) as a segmented rosbag2 for `rl-control gap`; `shadow` publishes the commands on
`~/shadow_command` instead of the controller's topic, to watch a policy on a real arm that
something else drives.
"""
from __future__ import annotations

import sys
import threading
import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PointStamped
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.lifecycle import Node as LifecycleNode
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from rl_control.ros import conversions as conv
from rl_control.ros import qos
from rl_control.ros.hosting import control_node, flush, run_lifecycle_node
from rl_control.ros.hosting import locked as _locked
from rl_control.ros.params import declare, guard, read
from rl_control.ros.paths import default_bundle
from rl_control.ros.recorder import TopicRecorder
from rl_control.serve import diagnostics as diag
from rl_control.serve.loop import ServeError, ServingLoop
from rl_control.serve.settings import ServeSettings


class PolicyServer(LifecycleNode):
    """See the module docstring."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('policy_server', **kwargs)
        self._lock = threading.RLock()
        self.p = declare(self, ServeSettings)
        self.state_node = control_node(self)
        self._ctrl_clock = self.state_node.get_clock()
        self.loop: ServingLoop | None = None
        self.bundle_path, self.configure_error = '', ''
        self._ents, self._control_timers, self._cmd_pub, self._state_recv = [], [], None, 0.0
        self._latency = diag.LatencyStats()
        self._estop, self._late = False, 0
        self._rec: TopicRecorder | None = None
        self._topics: dict[str, str] = {}
        self.failure: str | None = None
        self.pump: Any = time.sleep
        guard(self, ServeSettings, lambda: self.loop is not None, self._apply_live)
        self.create_service(Trigger, '~/estop', self._on_estop)
        self.create_service(Trigger, '~/reset', self._on_reset)
        # /diagnostics from construction on: an operator sees a bundle that fails configure.
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', qos.DIAGNOSTICS)
        self._status_pub = self.create_publisher(String, '~/status', qos.GOAL)
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(self.p.diagnostics_period_s, self._publish_diagnostics,
                          clock=self._steady)

    def _now(self) -> float:
        return self._ctrl_clock.now().nanoseconds * 1e-9

    def _apply_live(self, name: str, value: Any) -> None:
        if name == 'clamp_scale' and self.loop is not None:
            self.loop.safety.set_clamp_scale(value)

    # -- lifecycle ----------------------------------------------------------------------------
    @_locked
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the bundle, build the loop, create publishers and subscriptions."""
        from rl_control.bundle import BundleError, load_bundle

        p = self.p = read(self, ServeSettings)
        self.bundle_path = p.bundle or default_bundle()
        try:
            spec, policy = load_bundle(self.bundle_path, backend=p.backend)
            self.loop = ServingLoop(spec, policy, p, self.bundle_path)
        except (BundleError, ServeError) as exc:
            self.configure_error = str(exc)
            self.get_logger().error(f'configure failed: {exc}')
            self._publish_diagnostics()
            return TransitionCallbackReturn.FAILURE
        if self._estop:
            self.loop.safety.estop()
        if self.failure:
            self.loop.fail(self.failure)
        self.configure_error = ''
        for w in self.loop.warnings:
            self.get_logger().warning(w)
        if p.record_dir:
            try:
                self._rec = TopicRecorder(p.record_dir, p.record_segment_s)
            except (OSError, ValueError) as exc:
                self.configure_error, self.loop = f'record_dir {p.record_dir!r}: {exc}', None
                self.get_logger().error(f'configure failed: {self.configure_error}')
                self._publish_diagnostics()
                return TransitionCallbackReturn.FAILURE
        msg_type = JointTrajectory if p.command_type == 'trajectory' else Float64MultiArray
        topic = '~/shadow_command' if p.shadow else p.default_command_topic()
        self._cmd_pub = self.create_lifecycle_publisher(msg_type, topic, qos.COMMAND)
        self._topics = {'goal': self.resolve_topic_name(p.goal_topic),
                        'state': self.resolve_topic_name(p.joint_state_topic),
                        'command': self._cmd_pub.topic_name}
        sn = self.state_node  # goal first: a new episode's goal is taken before its state
        self._ents = [sn.create_subscription(PointStamped, self._topics['goal'], self._on_goal,
                                             qos.GOAL),
                      sn.create_subscription(JointState, self._topics['state'], self._on_state,
                                             qos.SENSOR)]
        self.get_logger().info(f'configured: {self.loop.summary()} on {self._cmd_pub.topic_name}')
        return super().on_configure(state)

    @_locked
    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Start the policy tick, the output stream and the watchdog."""
        loop = self.loop
        loop.activate(self._now())
        timers = [(min(loop.tick_s / 4, 0.01), self._watchdog, self._steady)]
        if self.p.trigger == 'timer':
            timers.append((loop.tick_s, self._tick, self._ctrl_clock))
        if self.p.command_type != 'trajectory':
            timers.append((1.0 / self.p.stream_rate_hz, self._stream, self._ctrl_clock))
        self._control_timers = [self.state_node.create_timer(dt, cb, clock=c)
                                for dt, cb, c in timers]
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Brake to rest (the publisher is still active), then stop the timers."""
        self.stop_robot('deactivate')
        with self._lock:
            for t in self._control_timers:
                self.state_node.destroy_timer(t)
            self._control_timers = []
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Forget the bundle; destroy publishers and subscriptions (shutdown: brake first)."""
        if self._control_timers:
            self.on_deactivate(state)
        with self._lock:
            for sub in self._ents:
                self.state_node.destroy_subscription(sub)
            if self._cmd_pub is not None:
                self.destroy_lifecycle_publisher(self._cmd_pub)
            self._ents, self._cmd_pub, self.loop = [], None, None
            if self._rec is not None:
                self._rec.close()
                self._rec = None
        return super().on_cleanup(state)

    on_shutdown = on_cleanup

    # -- inputs and outputs -------------------------------------------------------------------
    @_locked
    def _on_state(self, msg: JointState) -> None:
        if self.loop is None:
            return
        self._state_recv, now = time.perf_counter(), self._now()
        if self._rec is not None:
            self._rec.record(self._topics['state'], msg, round(now * 1e9))
        names, pos, vel, stamp = conv.joint_state_arrays(msg)
        due, refused = self.loop.on_state(now, time.monotonic(), names, pos, vel, stamp)
        if refused is not None:
            self.get_logger().warning(f'joint state dropped: {self.loop.cache.last_error}',
                                   throttle_duration_sec=2.0)
        if due and self._control_timers:
            self._tick(self.loop.due_time)

    @_locked
    def _on_goal(self, msg: PointStamped) -> None:
        if self._rec is not None:
            self._rec.record(self._topics['goal'], msg, round(self._now() * 1e9))
        if self.loop is not None and self.loop.on_goal(*conv.point_array(msg)) is not None:
            self.get_logger().warning(self.loop.goals.last_refused, throttle_duration_sec=1.0)

    @_locked
    def _tick(self, now: float | None = None) -> None:
        if self.loop is None or not self._control_timers:
            return
        out = self.loop.tick(self._now() if now is None else now, time.monotonic())
        if out.trajectory is not None and self._cmd_pub is not None:
            self._publish(conv.trajectory_to_msg(out.trajectory))
            self._late += self._now() > out.plan.t0  # the controller steps: lead_s too short
        if out.reason == 'ok' and self.p.command_type == 'trajectory':
            self._latency.add(time.perf_counter() - self._state_recv)
        if self.loop.ticks % max(1, round(0.2 / self.loop.tick_s)) == 0:
            self._status_pub.publish(conv.json_string(self.loop.goal_status()))

    @_locked
    def _watchdog(self) -> None:
        """Brake now, not at the next policy tick, when the inputs go bad."""
        loop = self.loop
        if loop is not None and loop.reason == 'ok' and \
                loop.input_problem(self._now(), time.monotonic()) is not None:
            self._tick()

    @_locked
    def _stream(self) -> None:
        cmd = None if self.loop is None else self.loop.stream(self._now())
        if cmd is not None and self._cmd_pub is not None:
            self._publish(conv.float64_multiarray(cmd))

    def _publish(self, msg: Any) -> None:
        self._cmd_pub.publish(msg)
        if self._rec is not None:
            self._rec.record(self._topics['command'], msg, round(self._now() * 1e9))

    def stop_robot(self, why: str, wait_s: float = 2.0) -> None:
        """Brake to rest now (trajectory: one message; velocity/effort: stream until rest).

        Not under the lock while it waits, so that joint states keep arriving (the effort
        stop damps the measured velocity); `self.pump(dt)` waits (spins the control executor
        on the way out, when nothing else does).
        """
        with self._lock:
            loop = self.loop
            if loop is None or not self._control_timers:
                return
            loop.deactivate()
            self._tick()
        end = time.monotonic() + wait_s
        while not loop.stopped(self._now()) and time.monotonic() < end:
            self._stream()
            self.pump(1.0 / self.p.stream_rate_hz)
        flush(self._cmd_pub)
        self.get_logger().info(f'{why}: braking to rest ({loop.last_braking_s:.3f} s)')

    def fail(self, why: str) -> None:
        """The services thread died: latch an internal error, the loop brakes."""
        self.failure = why
        if self.loop is not None:
            self.loop.fail(why)

    @_locked
    def _on_estop(self, req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        self._estop = True
        if self.loop is not None:
            self.loop.safety.estop()
            self._tick()  # brake now
        self.get_logger().warning('E-STOP latched: braking to rest, holding until ~/reset')
        res.success, res.message = True, 'e-stop latched'
        return res

    @_locked
    def _on_reset(self, req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        self._estop = False
        if self.loop is not None:
            self.loop.safety.reset(self._now())
        res.success, res.message = True, 'e-stop reset: ramping in again'
        return res

    @_locked
    def _publish_diagnostics(self) -> None:
        level, message, hardware, values = diag.report(
            self.loop, bool(self._control_timers), self.configure_error, self.p.robot,
            self._latency, self._now(), time.monotonic())
        values.update(bundle=self.bundle_path, late_messages=self._late, shadow=self.p.shadow)
        if self.p.shadow:
            message = f'SHADOW (commands on ~/shadow_command only): {message}'
        if self._rec is not None:
            values.update(record_dir=self.p.record_dir, recorded=self._rec.bag.messages)
            if self._rec.error:
                level = max(level, diag.WARN)
                message = f'{message}; recording stopped: {self._rec.error}'
        msg = conv.diagnostic_array(f'{self.get_fully_qualified_name()}: policy', level,
                                    message, hardware, values, self.get_clock().now().to_msg())
        self._diag_pub.publish(msg)
        if self._rec is not None:
            self._rec.record('/diagnostics', msg, round(self._now() * 1e9))


def main(argv: list[str] | None = None) -> int:
    """Entry point `policy_server` (ROS arguments after --ros-args; --help prints them)."""
    return run_lifecycle_node(PolicyServer, ServeSettings, __doc__, 'policy_server', argv)


if __name__ == '__main__':
    sys.exit(main())
