"""policy_server: a lifecycle node hosting `serve.loop.ServingLoop` on a robot's topics.

Messages in, the pure loop decides (serve/), messages out (ros/endpoints.py: the topics, shadow
mode's `~/shadow_command`, the recording). configure loads the bundle (a failure fails the
transition and is ERROR on /diagnostics); activate starts the policy tick, the command
interface's stream and the watchdog; deactivate, shutdown, SIGINT, an e-stop and every bad
input brake to rest within the robot's limits. The control path runs on a bare node in the
main thread, services and /diagnostics on this node in a background thread (one lock orders
them); if that thread dies, or a callback raises, the loop latches an internal error and
brakes (the node stays up for `~/reset` or a transition). Another node publishing on the
command topic refuses activation or, while active, stops it.

Pick and place (a bundle that observes `object_pose` and has a gripper entry): the object pose
comes on `object_pose_topic`, hand commands leave on `gripper_command_topic` as JSON, one per
change; the interface and the relay to franka_gripper are in docs/pick_place.md.
"""
from __future__ import annotations

import sys
import threading
import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.lifecycle import Node as LifecycleNode
from rclpy.serialization import serialize_message
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger

from rl_control.ros import conversions as conv
from rl_control.ros import hosting, qos
from rl_control.ros.endpoints import Endpoints
from rl_control.ros.params import declare, guard, read
from rl_control.ros.paths import default_bundle
from rl_control.serve import diagnostics as diag
from rl_control.serve.loop import ServeError, ServingLoop
from rl_control.serve.settings import ServeSettings
from rl_control.serve.sources import StateRate
from rl_control.serve.start_pose import await_arrival


class PolicyServer(LifecycleNode):
    """See the module docstring."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('policy_server', **kwargs)
        self._lock = threading.RLock()
        self.p = declare(self, ServeSettings)
        self.state_node = hosting.control_node(self)
        self._ctrl_clock = self.state_node.get_clock()
        self.loop: ServingLoop | None = None
        self.bundle_path, self.configure_error = '', ''
        self._control_timers, self._state_recv = [], 0.0
        self.io: Endpoints | None = None
        self._latency, self._rate = diag.LatencyStats(), StateRate()
        self._estop, self.failure, self.conflict = False, None, ''
        self.pump: Any = time.sleep
        guard(self, ServeSettings, lambda: self.loop is not None, self._apply_live)
        self.create_service(Trigger, '~/estop', self._on_estop)
        self.create_service(Trigger, '~/reset', self._on_reset)
        hosting.blocking_service(self, Trigger, 'move_to_start', self._on_move_to_start)
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
    @hosting.locked
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the bundle, build the loop, create publishers and subscriptions."""
        from rl_control.bundle import BundleError, load_bundle

        p = self.p = read(self, ServeSettings)
        self.bundle_path = p.bundle or default_bundle()
        try:
            spec, policy = load_bundle(self.bundle_path, backend=p.backend)
            self.loop = ServingLoop(spec, policy, p, self.bundle_path)
        except (BundleError, ServeError) as exc:
            return self._configure_failed(str(exc))
        if self._estop:
            self.loop.safety.estop()
        if self.failure:
            self.loop.fail(self.failure)
        self.configure_error = ''
        for w in self.loop.warnings:
            self.get_logger().warning(w)
        try:
            tio = self.loop.task_io
            self.io = Endpoints(self, self.state_node, p, self.loop.task.goal_message,
                                self._on_goal, self._on_state, self._on_robot_state,
                                self._on_object_pose if tio.object is not None else None,
                                gripper=tio.hand is not None)
        except (OSError, ValueError) as exc:
            return self._configure_failed(f'endpoints: {exc}')
        self.get_logger().info(f'configured: {self.loop.summary()} on {self.io.pub.topic_name}')
        return super().on_configure(state)

    def _configure_failed(self, why: str) -> TransitionCallbackReturn:
        self.configure_error, self.loop = why, None
        self.get_logger().error(f'configure failed: {why}')
        self._publish_diagnostics()
        return TransitionCallbackReturn.FAILURE

    @hosting.locked
    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Start the policy tick, the output stream and the watchdog (alone on the topic)."""
        loop = self.loop
        self.conflict = self.io.conflict(settle=True)
        if self.conflict:
            self.get_logger().error(f'activate refused: {self.conflict}')
            self._publish_diagnostics()
            return TransitionCallbackReturn.FAILURE
        loop.activate(self._now())
        if self.failure:
            loop.fail(self.failure)
        timers = [(min(loop.tick_s / 4, 0.01), self._watchdog, self._steady)]
        if self.p.trigger == 'timer':
            timers.append((loop.tick_s, self._tick, self._ctrl_clock))
        if loop.output.streams:
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
            if self.io is not None:
                self.io.close()
            self.io, self.loop = None, None
        return super().on_cleanup(state)

    on_shutdown = on_cleanup

    # -- inputs and outputs -------------------------------------------------------------------
    def fault(self, where: str, exc: Exception) -> None:
        """An exception in a callback: latch it (the loop brakes), log it; the node stays up."""
        text = f'{where}: {type(exc).__name__}: {" ".join(str(exc).split())[:300]}'
        self.get_logger().error(f'{text}; braking, ~/reset or a lifecycle transition resumes',
                                throttle_duration_sec=1.0)
        if self.loop is not None and self.loop.failure is None:
            self.loop.fail(text)

    @hosting.guarded('joint state')
    def _on_state(self, msg: JointState) -> None:
        if self.loop is None:
            return
        self._state_recv, now = time.perf_counter(), self._now()
        self._rate.add(time.monotonic())
        self.io.record('state', msg)
        names, pos, vel, stamp = conv.joint_state_arrays(msg)
        due, refused = self.loop.on_state(now, time.monotonic(), names, pos, vel, stamp)
        if refused is not None:
            self.get_logger().warning(f'joint state dropped: {self.loop.cache.last_error}',
                                   throttle_duration_sec=2.0)
        if due and self._control_timers:
            self._tick(self.loop.due_time)

    @hosting.guarded('object pose')
    def _on_object_pose(self, msg: Any) -> None:
        if self.loop is None:
            return
        self.io.record('object_pose', msg)
        if self.loop.on_object_pose(self._now(), time.monotonic(),
                                    *conv.pose_array(msg)) is not None:
            self.get_logger().warning(f'object pose dropped: '
                                      f'{self.loop.task_io.object.last_error}',
                                      throttle_duration_sec=2.0)

    @hosting.locked
    def _on_goal(self, msg: Any) -> None:
        self.io.record('goal', msg)  # (subscribed only while self.io exists)
        if self.loop is not None and self.loop.on_goal(*self.io.goal.decode(msg)) is not None:
            self.get_logger().warning(self.loop.goals.last_refused, throttle_duration_sec=1.0)

    @hosting.guarded('robot state')
    def _on_robot_state(self, msg: Any) -> None:
        if self.loop is not None:
            self.loop.robot_state(self._now(), *conv.robot_state_fields(msg))  # watchdog brakes

    def _on_move_to_start(self, req: Trigger.Request, res: Trigger.Response
                          ) -> Trigger.Response:
        """Plan the move to the start pose, send it, answer once the arm is there (or not)."""
        with self._lock:
            out = ('move to start refused: not configured' if self.loop is None
                   else self.loop.move_to_start(self._now(), time.monotonic(),
                                                self.p.start_speed, self.p.shadow))
            if not isinstance(out, str):
                self.io.publish(self.io.encode(out.trajectory))
        res.success, res.message = ((False, out) if isinstance(out, str)
                                     else await_arrival(self.loop, self._now, self._lock))
        return res

    @hosting.guarded('tick')  # the watchdog's next call brakes
    def _tick(self, now: float | None = None) -> None:
        if self.loop is None or not self._control_timers:
            return
        out = self.loop.tick(self._now() if now is None else now, time.monotonic())
        if out.trajectory is not None and self.io is not None:
            msg = self.io.encode(out.trajectory)
            raw = serialize_message(msg)  # before the deadline check: the send is then short
            if self.loop.withheld(self._now(), out.plan):  # this process stalled
                self.get_logger().warning(
                    'trajectory withheld: computed too late to reach the controller before '
                    'its start (this process stalled; lead_s too short?)',
                    throttle_duration_sec=1.0)
            else:
                self.io.publish(msg, raw)
                self.loop.sent(self._now(), out.plan)
        if out.gripper is not None and self.io is not None:  # on change (serve/hand.py)
            self.io.publish_gripper(out.gripper)
        if out.reason == 'ok' and out.trajectory is not None:  # one message per tick
            self._latency.add(time.perf_counter() - self._state_recv)
        if self.loop.ticks % max(1, round(0.2 / self.loop.tick_s)) == 0:
            self._status_pub.publish(conv.json_string(self.loop.goal_status()))

    @hosting.locked
    def _watchdog(self) -> None:
        """Brake now, not at the next policy tick, when the inputs go bad."""
        if self.loop is not None and self.loop.inputs_failed(self._now(), time.monotonic()):
            self._tick()

    @hosting.guarded('stream')
    def _stream(self) -> None:
        cmd = None if self.loop is None else self.loop.stream(self._now())
        if cmd is not None and self.io is not None:
            self.io.publish(self.io.encode(cmd))

    def stop_robot(self, why: str, wait_s: float = 2.0) -> None:
        """Brake to rest (one message, or a stream); waits unlocked: states keep arriving."""
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
        hosting.flush(self.io.pub if self.io is not None else None)
        self.get_logger().info(f'{why}: braking to rest ({loop.last_braking_s:.3f} s)')

    def fail(self, why: str) -> None:
        """The services thread died: latch an internal error, the loop brakes."""
        self.failure = why
        if self.loop is not None:
            self.loop.fail(why)

    @hosting.locked
    def _on_estop(self, req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        self._estop = True
        if self.loop is not None:
            self.loop.safety.estop()
            self._tick()  # brake now
        self.get_logger().warning('E-STOP latched: braking to rest, holding until ~/reset')
        res.success, res.message = True, 'e-stop latched'
        return res

    @hosting.locked
    def _on_reset(self, req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        self._estop = False
        if self.loop is not None:
            self.loop.reset(self._now())  # lifts the e-stop and a latched error
            if self.failure:
                self.loop.fail(self.failure)
        res.success, res.message = True, 'e-stop reset: ramping in again'
        return res

    @hosting.locked
    def _publish_diagnostics(self) -> None:
        if self.io is not None:  # configured: shown before an activation would be refused
            self.conflict = self.io.conflict()
            if self.conflict and self._control_timers and self.loop.failure is None:
                self.get_logger().error(f'{self.conflict}: braking')
                self.loop.fail(self.conflict)
                self._tick()
        wall = time.monotonic()
        level, message, hardware, values = diag.server_status(
            self.loop, bool(self._control_timers), self.configure_error, self.p, self._latency,
            self._now(), wall, self.bundle_path, self.conflict,
            None if self.io is None else self.io.rec,
            None if self.io is None else (self._rate.rate(wall), self.io.topics['state']))
        msg = conv.diagnostic_array(f'{self.get_fully_qualified_name()}: policy', level,
                                    message, hardware, values, self.get_clock().now().to_msg())
        self._diag_pub.publish(msg)
        if self.io is not None:
            self.io.record('/diagnostics', msg)


def main(argv: list[str] | None = None) -> int:
    """Entry point `policy_server` (ROS arguments after --ros-args; --help prints them)."""
    return hosting.run_lifecycle_node(PolicyServer, ServeSettings, __doc__, 'policy_server', argv)


if __name__ == '__main__':
    sys.exit(main())
