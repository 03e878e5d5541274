"""policy_server: a lifecycle node that serves a policy bundle on a robot's topics.

Thin host around pure code: `sim.contract` builds the observation from `/joint_states` (joints
mapped BY NAME on every message) and the goal, `core.policy.Policy` runs the actor in numpy,
`sim.contract.action_to_command` maps the action to joint commands, and `core.safety` filters
them. This file only moves messages in and out and keeps statistics.

Lifecycle (managed by `ros2 lifecycle set`, a launch file, or `autostart:=true`):
- configure: load and validate the bundle (a missing, corrupt or incompatible bundle FAILS the
  transition with an error log naming the problem), build the contract, create the command
  publisher (a lifecycle publisher: silent unless active), subscriptions and /diagnostics.
- activate: start the control timer and the ramp-in.
- deactivate / shutdown / SIGINT: publish a zero command first, then stop.

Trigger modes: `timer` computes at `control_rate_hz` (what the policy was trained at); `state`
computes on each joint-state message (minimum latency, and the way to run in lockstep with a
simulator on /clock); in `state` mode the timer still runs as the watchdog. Effort commands are
zeroed on a stop (zero torque on top of the robot's gravity compensation); trajectory commands
hold the last measured position.

Threads: the control path runs on a bare helper node (`<name>_state_input`, no services) in the
main thread; lifecycle, parameter and e-stop services and /diagnostics run on this node in a
background thread; one lock orders them. In state mode each state is answered once (a re-sent
or reordered state, stamped no later than the last answered one, is not), which keeps a lockstep
simulator exactly in step with the policy.
"""
from __future__ import annotations

from collections import deque
import functools
import math
import os
import sys
import threading
import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PointStamped
import numpy as np
import rclpy
from rclpy.clock import Clock, ClockType
from rclpy.duration import Duration
import rclpy.executors
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.lifecycle import Node as LifecycleNode
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from rl_control.contract.spec import (
    ContractError,
    ObservationSpec,
    action_to_command,
    build_observation,
    contract_from_yaml,
)
from rl_control.ros import conversions as conv
from rl_control.ros import qos
from rl_control.ros.params import ServerParams, declare, read
from rl_control.ros.signals import spin_until_signal
from rl_control.serve import safety
from rl_control.serve.safety import SafetyConfig, SafetyFilter

COMMAND_TYPES = ('velocity', 'effort', 'trajectory')
ACTION_FOR_COMMAND = {'velocity': 'joint_velocity', 'effort': 'joint_effort',
                      'trajectory': 'joint_velocity'}
MISSING_JOINT = 'missing_joint'


def default_bundle() -> str:
    """The shipped bundle: installed share/rl_control/models, else the source tree's models/."""
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [os.path.join(sys.prefix, 'share', 'rl_control', 'models', 'panda_reach_sac'),
                  os.path.normpath(os.path.join(here, '..', '..', '..', 'models',
                                                'panda_reach_sac'))]
    try:  # a colcon install: share/ found through the ament index
        from ament_index_python.packages import get_package_share_directory
        candidates.insert(0, os.path.join(get_package_share_directory('rl_control'), 'models',
                                          'panda_reach_sac'))
    except Exception:  # noqa: BLE001 - no ament index without a ROS distro
        pass
    for c in candidates:
        if os.path.isfile(os.path.join(c, 'policy.yaml')):
            return c
    return candidates[-1]


def _fast_clock_handle(clock: Clock) -> Any:
    """The rcl clock handle behind `clock.now()`, or None where this rclpy hides it.

    Checked once here, so that `_now` can take the cheap path without guessing per call.
    """
    h = getattr(clock, 'handle', None)
    try:
        with h:
            ns = h.get_now().nanoseconds
    except Exception:  # noqa: BLE001 - any other rclpy layout: use the public API
        return None
    return h if isinstance(ns, int) else None


def _all_finite(*arrays: np.ndarray) -> bool:
    """Whether every entry of the given float arrays is finite; cheap on small vectors.

    A finite sum of Python floats proves every entry finite (~0.1 us for 7 entries, against
    ~1 us for np.isfinite(...).all()); only a non-finite sum (NaN/Inf, or an overflow of huge
    finite entries) pays for the exact check.
    """
    if math.isfinite(sum(sum(a.tolist()) for a in arrays)):
        return True
    return all(bool(np.isfinite(a).all()) for a in arrays)


def _locked(fn: Any) -> Any:
    """Run a callback under the node's lock: two executors (threads) call into the node."""

    @functools.wraps(fn)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return fn(self, *args, **kwargs)

    return wrapper


class LatencyStats:
    """Windowed and long-run state->command latency samples (seconds)."""

    def __init__(self, keep: int = 10000) -> None:
        self.window: list[float] = []
        self.total: deque[float] = deque(maxlen=keep)

    def add(self, dt: float) -> None:
        """Record one sample."""
        self.window.append(dt)
        self.total.append(dt)

    @staticmethod
    def percentiles_ms(samples: Any) -> tuple[float, float]:
        """(p50, p99) in milliseconds, NaN when empty."""
        if not len(samples):
            return float('nan'), float('nan')
        p50, p99 = np.percentile(np.fromiter(samples, float), [50, 99])
        return float(p50 * 1e3), float(p99 * 1e3)


class PolicyServer(LifecycleNode):
    """See the module docstring."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('policy_server', **kwargs)
        self._lock = threading.RLock()
        self.p = declare(self, ServerParams)
        self._cmd_msg = Float64MultiArray()
        # The control path (joint-state and goal subscriptions, control and watchdog timers)
        # lives on a second, bare node spun by its own executor in the main thread (see main):
        # rclpy's Python executors walk every entity of a node on every wake-up, and this
        # node has ~30 (lifecycle, parameter and e-stop services, diagnostics). At 1 kHz that
        # walk, not the policy, dominated the state->command latency. The bare node
        # takes no global ROS arguments (no duplicate node name from `-r __node:=`); topic
        # remaps reach it because the topic name is resolved by this node.
        # It also owns the control clock: under use_sim_time its /clock subscription is then
        # served by the same thread, in order, as the joint states; on the lifecycle node's
        # thread the clock could lag several periods behind the states and fire the watchdog.
        use_sim_time = bool(self.get_parameter('use_sim_time').value)
        self.state_node = Node(
            f'{self.get_name()}_state_input', namespace=self.get_namespace(),
            context=self.context, use_global_arguments=False, start_parameter_services=False,
            enable_rosout=False,
            parameter_overrides=[Parameter('start_type_description_service', value=False),
                                 Parameter('use_sim_time', value=use_sim_time)])
        self._clock = self.state_node.get_clock()
        self._clock_handle = _fast_clock_handle(self._clock)
        self._reset_runtime()
        # E-stop services exist in every lifecycle state: an operator must always be able to
        # latch a stop, even before the node is configured.
        self._estop_latched = False
        self.create_service(Trigger, '~/estop', self._on_estop)
        self.create_service(Trigger, '~/reset', self._on_reset)

    def _reset_runtime(self) -> None:
        self.policy: Any = None
        self.spec: dict[str, Any] = {}
        self.safety: SafetyFilter | None = None
        self.obs_spec: ObservationSpec | None = None
        self._goal: np.ndarray | None = None
        self._state: tuple[Any, ...] | None = None   # (names, pos, vel, recv_perf, idx_cmd)
        self._timer = None
        self._wd_timer = None
        self._diag_timer = None
        self._cmd_pub = None
        self._diag_pub = None
        self._subs: list[Any] = []
        self._lat = LatencyStats()       # state arrival -> command published
        self._compute = LatencyStats()   # tick start -> command published
        self._ticks = 0
        self._window_ticks = 0
        self._window_start = time.monotonic()
        self._last_reason = safety.INACTIVE
        self._last_cmd_sent: np.ndarray | None = None
        self._last_drop_diag = 0.0
        self._state_trigger = False
        self._answered_stamp = 0.0

    # -- lifecycle -------------------------------------------------------------------------
    @_locked
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load and validate the bundle; build publishers and subscriptions."""
        p = self.p = read(self, ServerParams)
        try:
            self._configure(p)
        except Exception as exc:  # noqa: BLE001 - every failure must fail the transition
            self.get_logger().error(f'configure failed: {exc}')
            self._destroy_entities()
            self._reset_runtime()
            return TransitionCallbackReturn.FAILURE
        return super().on_configure(state)

    def _configure(self, p: ServerParams) -> None:
        from rl_control.bundle.io import load_bundle

        if p.command_type not in COMMAND_TYPES:
            raise ValueError(f'command_type {p.command_type!r} is not one of {COMMAND_TYPES}')
        if p.trigger not in ('timer', 'state'):
            raise ValueError(f"trigger must be 'timer' or 'state', got {p.trigger!r}")
        path = p.bundle or default_bundle()
        self.bundle_path = path
        self.spec, self.policy = load_bundle(path)
        try:
            contract = contract_from_yaml(self.spec)
        except ContractError as exc:
            raise ValueError(f'bundle {path} is not a robot policy this server can serve: '
                             f'{exc}') from None
        act = contract.act_spec
        if act.type != ACTION_FOR_COMMAND[p.command_type]:
            raise ValueError(f'bundle {path} has action.type {act.type!r}, which cannot drive '
                             f'command_type {p.command_type!r}')
        policy_joints = list(contract.obs_spec.joint_names)
        robot = list(p.robot_joints) or policy_joints
        if len(robot) != len(policy_joints):
            raise ValueError(f'robot_joints has {len(robot)} names, the bundle '
                             f'{len(policy_joints)} ({policy_joints})')
        if len(set(robot)) != len(robot):
            raise ValueError(f'robot_joints {robot} names a joint twice')
        cmd_joints = list(p.command_joints) or robot
        if sorted(cmd_joints) != sorted(robot):
            raise ValueError(f'command_joints {cmd_joints} must be a permutation of the policy '
                             f'joints on this robot {robot}')
        # Everything below works in robot names; the policy order is robot order.
        self.obs_spec = ObservationSpec(tuple(robot), contract.obs_spec.terms)
        self.act_spec = act
        self.robot_joints = robot
        self.cmd_joints = cmd_joints
        self.perm = np.array([robot.index(n) for n in cmd_joints], dtype=np.intp)
        self.period_s = float(contract.control_period_s)
        rate = p.control_rate_hz or 1.0 / self.period_s
        self.tick_s = 1.0 / rate
        # A dry run proves the actor accepts the contract's observation size before any robot
        # moves: an incompatible bundle fails here, at configure time.
        probe = np.zeros(self.obs_spec.size, dtype=np.float32)
        try:
            a = np.asarray(self.policy.act(probe), dtype=np.float64).reshape(-1)
        except Exception as exc:  # noqa: BLE001
            raise ValueError(f'bundle {path}: actor rejects the {self.obs_spec.size}-entry '
                             f'observation of its contract: {exc}') from None
        if a.shape != (act.size,):
            raise ValueError(f'bundle {path}: actor outputs {a.shape[0]} values, action.size is '
                             f'{act.size}')
        low = act.low[self.perm].copy()
        high = act.high[self.perm].copy()
        if p.max_command:
            lim = np.asarray(p.max_command, dtype=np.float64)
            if lim.shape != low.shape or np.any(lim <= 0):
                raise ValueError(f'max_command needs {low.size} positive values, got {lim}')
            low, high = np.maximum(low, -lim), np.minimum(high, lim)
        rate_limit = list(p.rate_limit) or [0.0]
        if len(rate_limit) not in (1, low.size):
            raise ValueError(f'rate_limit needs 1 or {low.size} values, got {rate_limit}')
        if len(rate_limit) > 1:  # given per joint in robot/policy order, like the limits
            rate_limit = [float(rate_limit[i]) for i in self.perm]
        self.safety = SafetyFilter(SafetyConfig(
            low=low, high=high, period_s=self.tick_s, clamp_scale=p.clamp_scale,
            rate_limit=rate_limit[0] if len(rate_limit) == 1 else rate_limit,
            ramp_in_s=p.ramp_in_s, stale_periods=p.stale_periods,
            max_state_age_s=p.max_state_age_s))
        if self._estop_latched:
            self.safety.estop()
        self.horizon_s = p.trajectory_horizon_s or self.period_s
        self._state_trigger = p.trigger == 'state'

        msg_type = JointTrajectory if p.command_type == 'trajectory' else Float64MultiArray
        self._cmd_pub = self.create_lifecycle_publisher(msg_type, p.command_topic, qos.COMMAND)
        # /diagnostics is a plain publisher: why the robot is NOT moving (inactive, e-stop)
        # is exactly what an operator needs to see while the node is not active.
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', qos.DIAGNOSTICS)
        # Goal and joint states on the same node and executor, goal created first: when both
        # are ready in one wake-up (a simulator publishes a new episode's goal, then its first
        # state) the goal is taken first, so no command pairs the new state with the old goal.
        sn = self.state_node
        self._subs = [
            (sn, sn.create_subscription(PointStamped, self.resolve_topic_name(p.goal_topic),
                                        self._on_goal, qos.GOAL)),
            (sn, sn.create_subscription(JointState, self.resolve_topic_name(
                p.joint_state_topic), self._on_state, qos.SENSOR)),
        ]
        self._diag_timer = self.create_timer(p.diagnostics_period_s, self._publish_diagnostics,
                                             clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.get_logger().info(
            f'configured: bundle {path} ({self.spec.get("algorithm")}, '
            f'{self.spec.get("task", {}).get("env_id")}), {p.command_type} commands for '
            f'{cmd_joints} on {self._cmd_pub.topic_name} at {1.0 / self.tick_s:g} Hz '
            f'(trigger: {p.trigger}); safety: stale after {p.stale_periods:g} periods, '
            f'stamp age <= {p.max_state_age_s:g} s, rate limit {rate_limit}/s, ramp-in '
            f'{p.ramp_in_s:g} s, clamp x{p.clamp_scale:g}')

    @_locked
    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Start the control timer and the ramp-in."""
        assert self.safety is not None
        self.safety.activate(self._now())
        self._answered_stamp = 0.0  # a new activation answers the next state, whatever its stamp
        # Control timer (trigger: timer) or watchdog-only timer (trigger: state). A second,
        # faster watchdog check makes a stop land within stale_periods + 1/8 period of the last
        # state instead of up to a whole period later; below 2 ms it would cost more CPU than
        # it saves, so then the control timer alone checks.
        # In state mode the timer is only the watchdog; at high rates (1 kHz) a timer per
        # tick would double the executor's work, so it checks at most every 5 ms.
        # Both timers run on the joint-state node (main thread, the control path) but on this
        # node's clock, so they follow /clock under use_sim_time.
        period = self.tick_s if self.p.trigger == 'timer' else max(self.tick_s, 0.005)
        clock = self._clock
        self._timer = self.state_node.create_timer(period, self._on_timer, clock=clock)
        wd = max(self.tick_s / 8.0, 0.002)
        self._wd_timer = (self.state_node.create_timer(wd, self._on_watchdog, clock=clock)
                          if wd < self.tick_s else None)
        self._window_start, self._window_ticks = time.monotonic(), 0
        self.get_logger().info(f'active: ramp-in over {self.p.ramp_in_s:g} s')
        return super().on_activate(state)

    @_locked
    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Publish a zero command, then stop the control timer."""
        self.stop_robot('deactivate')
        self._destroy_control_timers()
        if self.safety is not None:
            self.safety.deactivate()
        return super().on_deactivate(state)

    @_locked
    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Forget the bundle and destroy publishers and subscriptions."""
        self._destroy_entities()
        self._reset_runtime()
        return super().on_cleanup(state)

    @_locked
    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Zero command (when active), then release everything."""
        self.stop_robot('shutdown')
        self._destroy_entities()
        return super().on_shutdown(state)

    def _destroy_control_timers(self) -> None:
        """Stop the control and watchdog timers (the node is then not active)."""
        for t in (self._timer, self._wd_timer):
            if t is not None:
                self.state_node.destroy_timer(t)
        self._timer = self._wd_timer = None

    def _destroy_entities(self) -> None:
        self._destroy_control_timers()
        if self._diag_timer is not None:
            self.destroy_timer(self._diag_timer)
        self._diag_timer = None
        for node, sub in self._subs:
            node.destroy_subscription(sub)
        self._subs = []
        if self._cmd_pub is not None:
            self.destroy_lifecycle_publisher(self._cmd_pub)
        if self._diag_pub is not None:
            self.destroy_publisher(self._diag_pub)
        self._cmd_pub = self._diag_pub = None

    # -- inputs ----------------------------------------------------------------------------
    def _now(self) -> float:
        # The control clock in seconds. Read from the clock's rcl handle directly where this
        # rclpy allows (see _fast_clock_handle): Clock.now() reads the very same handle but then
        # builds a validated rclpy Time, ~1.5 us of the 1 kHz path for the same number.
        h = self._clock_handle
        if h is None:
            return self._clock.now().nanoseconds * 1e-9
        with h:
            return h.get_now().nanoseconds * 1e-9

    @_locked
    def _on_state(self, msg: JointState) -> None:
        recv = time.perf_counter()
        sf = self.safety
        if sf is None:
            return
        names, pos, vel, stamp = conv.joint_state_arrays(msg)
        try:
            idx = self.obs_spec.indices(names)
        except ContractError as exc:
            sf.invalidate_state(MISSING_JOINT)
            self.get_logger().error(f'joint state dropped: {exc}', throttle_duration_sec=2.0)
            self._on_dropped_input()
            return
        if (pos.shape != (len(names),) or vel.shape != (len(names),)
                or not _all_finite(pos[idx], vel[idx])):
            sf.invalidate_state(safety.BAD_STATE)
            self.get_logger().warn('joint state dropped: NaN/Inf or missing positions/velocities'
                                   ' of the policy joints', throttle_duration_sec=2.0)
            self._on_dropped_input()
            return
        now = self._now()
        if self._state_trigger and stamp:
            # One command per state: a state stamped no later than the last one answered (a
            # re-sent or reordered message) is not answered again. A lockstep simulator
            # advances one step per command, so a second answer would run it ahead of the
            # policy for good. Such a state does not feed the watchdog either, or a stream of
            # stale re-sends would keep the last velocity running. Stamps that jump back by
            # more than a period mean the source restarted (or its clock stepped): start over.
            if stamp < self._answered_stamp - self.period_s:
                self._answered_stamp = 0.0
            elif stamp <= self._answered_stamp:
                return
        sf.note_state(now, stamp)
        self._state = (names, pos, vel, recv, idx)
        if self._state_trigger:
            if self._tick(now) and stamp:
                self._answered_stamp = stamp

    @_locked
    def _on_goal(self, msg: PointStamped) -> None:
        if self.safety is None:
            return
        frame, xyz = conv.point_array(msg)
        if frame and frame != self.p.base_frame:
            self._goal = None
            self.safety.counts[safety.BAD_GOAL] += 1
            self.get_logger().error(f'goal dropped: frame {frame!r} is not {self.p.base_frame!r}'
                                    ' (no TF here: publish goals in the base frame)',
                                    throttle_duration_sec=2.0)
            self._on_dropped_input()
            return
        if not np.all(np.isfinite(xyz)):
            self._goal = None
            self.safety.counts[safety.BAD_GOAL] += 1
            self.get_logger().warn('goal dropped: NaN/Inf', throttle_duration_sec=2.0)
            self._on_dropped_input()
            return
        self._goal = xyz

    def _on_dropped_input(self) -> None:
        """A dropped input stops the robot now, not at the next tick, and is reported now."""
        if self._timer is not None:
            self._tick()
        now = time.monotonic()
        if now - self._last_drop_diag > 0.2:
            self._last_drop_diag = now
            self._publish_diagnostics()

    @_locked
    def _on_estop(self, request: Trigger.Request, response: Trigger.Response
                  ) -> Trigger.Response:
        self._estop_latched = True
        if self.safety is not None:
            self.safety.estop()
        self.stop_robot('e-stop')
        self.get_logger().warn('E-STOP latched: zero commands until ~/reset')
        response.success, response.message = True, 'e-stop latched'
        self._publish_diagnostics()
        return response

    @_locked
    def _on_reset(self, request: Trigger.Request, response: Trigger.Response
                  ) -> Trigger.Response:
        self._estop_latched = False
        if self.safety is not None:
            self.safety.reset(self._now())
        self.get_logger().info('e-stop reset: ramping in again')
        response.success, response.message = True, 'e-stop reset'
        return response

    # -- control ---------------------------------------------------------------------------
    @_locked
    def _on_timer(self) -> None:
        if self.p.trigger == 'timer':
            self._tick()
            return
        # state trigger: the timer is the watchdog; while the state is bad it re-sends zero
        # at the control rate.
        if self.safety is not None and self.safety.state_problem(self._now()) is not None:
            self._tick()

    @_locked
    def _on_watchdog(self) -> None:
        # Acts once, on the transition into a bad state; the control timer continues from there.
        if (self._last_reason == safety.OK and self.safety is not None
                and self.safety.state_problem(self._now()) is not None):
            self._tick()

    def _raw_command(self) -> tuple[np.ndarray | None, str]:
        """The policy's command in controller order, or (None, why not)."""
        st = self._state
        if st is None:
            return None, safety.NO_STATE
        if self._goal is None:
            return None, safety.NO_GOAL
        names, pos, vel, _recv, _idx = st
        obs = build_observation(self.obs_spec, names, pos, vel, self._goal)
        action = np.asarray(self.policy.act(obs), dtype=np.float64).reshape(-1)
        if not _all_finite(action):
            return None, safety.BAD_ACTION
        return action_to_command(self.act_spec, action)[self.perm], safety.OK

    def _tick(self, now: float | None = None) -> bool:
        """Compute, filter and publish one command; True when one was published (active)."""
        sf = self.safety
        if sf is None or self._cmd_pub is None:
            return False
        t0 = time.perf_counter()
        if now is None:
            now = self._now()
        raw, why = (None, safety.NO_STATE)
        if sf.state_problem(now) is None and not sf.estopped:
            try:
                raw, why = self._raw_command()
            except ContractError as exc:
                raw, why = None, MISSING_JOINT
                self.get_logger().error(f'no command: {exc}', throttle_duration_sec=2.0)
        result = sf.filter(now, raw, why)
        self._publish(result.command, hold=result.reason != safety.OK)
        self._ticks += 1
        self._window_ticks += 1
        self._last_reason = result.reason
        if result.reason == safety.OK and self._state is not None:
            t1 = time.perf_counter()
            self._lat.add(t1 - self._state[3])
            self._compute.add(t1 - t0)
        elif result.reason == safety.BAD_ACTION:
            self.get_logger().warn('policy returned NaN/Inf: zero command',
                                   throttle_duration_sec=2.0)
        return self._timer is not None

    def _publish(self, cmd: np.ndarray, hold: bool = False) -> None:
        pub = self._cmd_pub
        if pub is None:
            return
        if self.p.command_type == 'trajectory':
            if self._state is None:
                return  # no measured position to hold: publish nothing rather than guess
            names, pos, _vel, _recv, idx = self._state
            q = pos[idx][self.perm]
            vel = np.zeros_like(cmd) if hold else cmd
            pub.publish(conv.joint_trajectory(self.cmd_joints, q + vel * self.horizon_s, vel,
                                              self.horizon_s))
        else:
            pub.publish(conv.float64_multiarray(cmd, self._cmd_msg))
        self._last_cmd_sent = cmd

    @_locked
    def stop_robot(self, why: str, flush_s: float = 0.0) -> None:
        """Publish a zero (hold) command now, if the command publisher is active.

        With `flush_s` > 0, wait (up to that long) until every reliable subscriber has
        acknowledged it: on the way out of the process, a zero still queued in DDS when the
        node is destroyed would be lost, and the robot would keep its last velocity.
        """
        if self._cmd_pub is not None and self.safety is not None and self._timer is not None:
            self._publish(np.zeros(len(self.cmd_joints)), hold=True)
            self.get_logger().info(f'{why}: zero command sent')
            if flush_s > 0.0:
                try:
                    self._cmd_pub.wait_for_all_acked(Duration(seconds=flush_s))
                except Exception as exc:  # noqa: BLE001 - best effort on the way out
                    self.get_logger().warn(f'zero command not acknowledged: {exc}')

    # -- diagnostics -----------------------------------------------------------------------
    @_locked
    def _publish_diagnostics(self) -> None:
        if self._diag_pub is None or self.safety is None:
            return
        sf = self.safety
        now_m = time.monotonic()
        span = max(now_m - self._window_start, 1e-9)
        rate = self._window_ticks / span
        w50, w99 = LatencyStats.percentiles_ms(self._lat.window)
        t50, t99 = LatencyStats.percentiles_ms(self._lat.total)
        c50, c99 = LatencyStats.percentiles_ms(self._compute.total)
        active = self._timer is not None
        reason = self._last_reason if active else safety.INACTIVE
        if sf.estopped:
            level, msg = DiagnosticStatus.ERROR, 'e-stop latched'
        elif not active:
            level, msg = DiagnosticStatus.WARN, 'inactive'
        elif reason != safety.OK:
            level, msg = DiagnosticStatus.WARN, f'zero command: {reason}'
        else:
            level, msg = DiagnosticStatus.OK, 'serving'
        c = sf.counts
        values = {
            'active': active, 'estop': sf.estopped, 'last_reason': reason,
            'rate_hz': rate, 'target_rate_hz': 1.0 / self.tick_s, 'trigger': self.p.trigger,
            'latency_ms_p50': w50, 'latency_ms_p99': w99,
            'latency_ms_p50_total': t50, 'latency_ms_p99_total': t99,
            'latency_samples_total': len(self._lat.total),
            'compute_ms_p50_total': c50, 'compute_ms_p99_total': c99,
            'state_age_ms': sf.state_age(self._now()) * 1e3,
            'ticks': self._ticks, 'commands_ok': c[safety.OK],
            'clamped': c['clamped'], 'rate_limited': c['rate_limited'],
            'dropped_state': c[safety.BAD_STATE] + c[MISSING_JOINT],
            'dropped_goal': c[safety.BAD_GOAL], 'bad_action': c[safety.BAD_ACTION],
            'stale_ticks': c[safety.STALE_STATE] + c[safety.OLD_STAMP],
            'no_goal_ticks': c[safety.NO_GOAL], 'estop_ticks': c[safety.ESTOP],
        }
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        arr.status = [conv.diagnostic_status(f'{self.get_fully_qualified_name()}: policy',
                                             level, msg, self.bundle_path, values)]
        self._diag_pub.publish(arr)
        self._lat.window = []
        self._compute.window = []
        self._window_ticks, self._window_start = 0, now_m


def make_executor(kind: str | None = None) -> rclpy.executors.Executor:
    """SingleThreadedExecutor, or rclpy's EventsExecutor with RL_CONTROL_EXECUTOR=events.

    The events executor dispatches from C++ without rebuilding a wait set per callback, which
    lowers latency at 1 kHz; it is marked experimental in rclpy, hence opt-in (and in the
    rclpy 9.1.2 PyPI build it delivers no subscription callbacks: use it only where it works).
    """
    kind = kind or os.environ.get('RL_CONTROL_EXECUTOR', 'single')
    if kind == 'events':
        from rclpy.experimental import EventsExecutor

        return EventsExecutor()
    return rclpy.executors.SingleThreadedExecutor()


def main(argv: list[str] | None = None) -> int:
    """Entry point `policy_server` (ROS arguments after --ros-args).

    Two executors: the joint-state node's in the main thread (the latency-critical path), the
    lifecycle node's (services, timers, goal) in a background thread; the node's lock keeps
    them from interleaving. On SIGINT/SIGTERM both stop first, then, with nothing else running,
    the zero command goes out and the node walks its shutdown transition.
    """
    args = sys.argv if argv is None else ['policy_server', *argv]
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    # A thread waking up for the GIL waits up to the switch interval (5 ms by default) while
    # another holds it: too coarse for a 1 kHz control path sharing the process.
    sys.setswitchinterval(0.0005)
    node = PolicyServer()
    executor = make_executor()
    state_executor = make_executor()
    rc = 0
    if node.p.autostart:
        if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            node.get_logger().fatal('autostart: configure failed (see above)')
            rc = 1
        elif node.trigger_activate() != TransitionCallbackReturn.SUCCESS:
            node.get_logger().fatal('autostart: activate failed')
            rc = 1

    stop_bg = threading.Event()

    def background() -> None:
        executor.add_node(node)
        while not stop_bg.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=0.1)

    bg = threading.Thread(target=background, name='policy_server-lifecycle', daemon=True)

    def on_stop() -> None:
        stop_bg.set()
        bg.join(timeout=5.0)
        node.stop_robot('signal', flush_s=1.0)
        try:
            state = node._state_machine.current_state[1]
            if state in ('active', 'inactive', 'unconfigured'):
                node.trigger_shutdown()
        except Exception as exc:  # noqa: BLE001 - best effort on the way out
            node.get_logger().warn(f'shutdown transition: {exc}')
        time.sleep(0.05)  # let the last messages go out

    try:
        if rc == 0:
            bg.start()
            spin_until_signal(node.state_node, state_executor, on_stop)
    finally:
        stop_bg.set()
        if bg.is_alive():
            bg.join(timeout=5.0)
        state_executor.shutdown()
        executor.shutdown()
        node.state_node.destroy_node()
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return rc


if __name__ == '__main__':
    sys.exit(main())
