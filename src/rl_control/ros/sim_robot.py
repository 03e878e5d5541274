"""sim_robot: a simulated Franka on the topics a ros2_control franka_ros2 robot speaks.

`fidelity: franka` (default) hosts `robots.franka.FrankaArm`: a virtual 1 kHz loop that runs
the controller (joint_trajectory_controller or a forward command controller, as they behave),
checks every commanded sample against libfranka's limits and stops with a reflex at the first
violation, and a MuJoCo arm that tracks the reference. `fidelity: ideal` is the same without
the checks (quick experiments). The robot profile (`robot: panda|fr3`) sets joint names, limits
and the base frame.

Clocks. Real time: the arm's 1 ms grid is tied to ROS time once, at start (grid time t is ROS
time `epoch + t`, the steady clock measures it), and a steady timer steps the grid up to now in
batches of `step_period_s`; every command is stamped with its arrival time on that grid and
trajectory stamps are mapped through the same epoch, so neither a late Python loop nor a slow
batch changes what is checked (a sim that falls behind publishes its states late, stamped
with the time they represent, as a loaded robot PC would). Joint states go out for every
millisecond (or decimated to `publish_rate_hz`), the gripper's at `gripper_rate_hz`.
Lockstep (`publish_clock`): the node publishes /clock before every state and advances one
control period per received command (run the server with use_sim_time and trigger: state), or
after `lockstep_republish_s` of wall time without one (a server at rest sends nothing).

Episodes: each starts at rest (profile home, or the goals file's start) with a goal (the goals
file in order, or sampled in the reach region), published on the policy server's goal topic;
after `episode_s` the result goes to `~/episode_result` (JSON: success at 1/2/5 cm and at
`success_threshold`, time to goal, final distance, path length, reflex, rejected messages).
A reset moves the arm home at once, which no real arm does, so commands still in flight for
the previous episode would jump it: until the first command that starts at the new pose
(within `reset_tolerance`: a trajectory whose reference at arrival is there, a velocity of ~0)
commands are not delivered, as an evaluation harness that deactivates the server across the
reset would (counted as `reset_ignored`; after `reset_guard_s` everything is delivered again).
`~/robot_state` (JSON at `robot_state_rate_hz`: mode idle|move|reflex, reflex, rejected, time,
max_abs_qd, ...) and /diagnostics (ERROR on a reflex) report the arm; `~/recover`
(std_srvs/Trigger) is franka_ros2's error recovery; `~/reset_episode` starts a new episode now;
`~/mute_joint_states` (std_srvs/SetBool) stops the joint states while the arm runs on (fault
injection: a dead driver or network).
"""
from __future__ import annotations

import sys
import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PointStamped
import numpy as np
import rclpy
from rclpy.clock import Clock, ClockType
import rclpy.executors
from rclpy.node import Node
from rclpy.qos import QoSProfile
from rclpy.signals import SignalHandlerOptions
from rosgraph_msgs.msg import Clock as ClockMsg
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory

from rl_control.envs.reach_metrics import EpisodeTrace, load_goals
from rl_control.robots.franka import FrankaArm
from rl_control.robots.kinematics import fk_single
from rl_control.robots.physics import mujoco_physics
from rl_control.robots.profiles import get_profile
from rl_control.robots.trajectory import starts_at
from rl_control.ros import conversions as conv
from rl_control.ros import qos
from rl_control.ros.hosting import flush, print_help_if_asked
from rl_control.ros.params import SimParams, declare
from rl_control.ros.signals import spin_until_signal
from rl_control.serve.settings import trajectory_controller

GOAL_LOW, GOAL_HIGH = np.array([0.45, -0.15, 0.0]), np.array([0.75, 0.15, 0.3])
INIT_NOISE = 0.1  # the reach task's start noise around home (envs/panda_reach.py)
RESET_GRACE_S = 0.02  # real time: forward commands this soon after a reset were sent before it
CATCH_UP_CHUNK = 4  # real time: ms stepped between takes of pending commands
MAX_TRANSPORT_S = 0.002  # real time: a command arrives at most this long after it was sent


class SimRobot(Node):
    """See the module docstring."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('sim_robot', **kwargs)
        self.p = p = declare(self, SimParams)
        self.profile = get_profile(p.robot)
        jtc = {} if p.command_type != 'trajectory' else {
            'interpolate_from_desired_state': p.jtc_interpolate_from_desired_state,
            'allow_nonzero_velocity_at_trajectory_end':
                p.jtc_allow_nonzero_velocity_at_trajectory_end,
            'allow_trajectory_replacement': p.jtc_allow_trajectory_replacement}
        self.arm = FrankaArm(self.profile, p.command_type,
                             physics=mujoco_physics(self.profile),
                             torque_rate_limiter=p.torque_rate_limiter,
                             check_limits=p.fidelity == 'franka', **jtc)
        self.arm.settle()  # before anyone sees it (FrankaArm.settle says why)
        self.rng = np.random.default_rng(None if p.seed < 0 else p.seed)
        self.goals = load_goals(p.goals_file) if p.goals_file else None
        self.episode, self.done, self._last_cmd_wall = 0, False, -1e9
        self._awaiting = False
        self._answering = False  # lockstep: the server answered the last state
        self.silent_steps = 0  # lockstep: periods advanced without a command
        self._publish_every = max(1, round(1.0 / (p.publish_rate_hz * self.arm.dt)))
        self._grip_every = max(1, round(1.0 / (p.gripper_rate_hz * self.arm.dt)))
        self.reset_ignored, self.max_lag_s = 0, 0.0
        self.muted_at: float | None = None  # fault injection: joint states stopped (grid time)
        self._diag_wall, self._diag_mode = 0.0, ''
        topic = p.command_topic or (f'{trajectory_controller(p.robot)}/joint_trajectory'
                                    if p.command_type == 'trajectory'
                                    else f'{p.command_type}_controller/commands')
        msg_type = JointTrajectory if p.command_type == 'trajectory' else Float64MultiArray
        # Deeper than the publisher's depth 1: while this process steps a batch (up to 0.1 s
        # of a 1 kHz stream), later commands must not overwrite earlier ones in the reader's
        # cache (a controller's subscription thread takes each one as it comes; each keeps
        # its receive time).
        self._cmd_sub = self.create_subscription(
            msg_type, topic, self._on_command,
            QoSProfile(**{**_qos_fields(qos.COMMAND), 'depth': 200}))
        self._js_pub = self.create_publisher(JointState, p.joint_state_topic, qos.SENSOR)
        self._grip_pub = self.create_publisher(JointState, p.gripper_state_topic, qos.SENSOR)
        self._goal_pub = self.create_publisher(PointStamped, p.goal_topic, qos.GOAL)
        self._result_pub = self.create_publisher(String, '~/episode_result', qos.RESULTS)
        self._state_pub = self.create_publisher(String, '~/robot_state', qos.RESULTS)
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', qos.DIAGNOSTICS)
        self._clock_pub = self.create_publisher(ClockMsg, '/clock', 10) if p.publish_clock \
            else None
        self.create_service(Trigger, '~/reset_episode', self._on_reset_episode)
        self.create_service(Trigger, '~/recover', self._on_recover)
        self.create_service(SetBool, '~/mute_joint_states', self._on_mute)
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        if p.publish_clock:
            self.create_timer(p.lockstep_republish_s, self._republish, clock=steady)
        else:
            self.create_timer(p.step_period_s, self._realtime_step, clock=steady)
        self.create_timer(0.5, self._publish_goal, clock=steady)  # late joiners get the goal
        self.create_timer(1.0 / p.robot_state_rate_hz, self._publish_robot_state,
                          clock=steady)
        # grid time 0 = ROS time epoch, measured on the steady clock from here on
        self._mono0 = time.monotonic()
        self._epoch = 0.0 if p.publish_clock else self.get_clock().now().nanoseconds * 1e-9
        self._start_episode()
        self.get_logger().info(
            f'sim_robot: {p.robot} ({p.fidelity} fidelity), {p.command_type} commands on '
            f'{self.resolve_topic_name(topic)}, '
            + ('lockstep on /clock' if p.publish_clock else 'real time'))

    # -- time -------------------------------------------------------------------------------
    def _ros_time(self, t_arm: float) -> float:
        return self._epoch + t_arm

    def _arrival(self, received_ns: int = 0, sent_ns: int = 0) -> float:
        """A command's arrival on the arm's grid: when DDS received it (else now).

        The middleware's receive time, not this callback's: a command must not count as late
        because this process was busy stepping (a real controller's subscription thread takes
        messages while its 1 kHz loop runs). And no later than `MAX_TRANSPORT_S` after it was
        sent: a later receive on one host is this process starved (its receive thread did not
        run), which a robot's real-time receive is not; the sender's own lateness is kept.
        """
        if self.p.publish_clock:
            return self.arm.time
        now = time.monotonic() - self._mono0
        if received_ns > 0:
            now = min(now, received_ns * 1e-9 - self._epoch)
        if sent_ns > 0:
            now = min(now, sent_ns * 1e-9 + MAX_TRANSPORT_S - self._epoch)
        return max(self.arm.time, now)

    # -- episodes ---------------------------------------------------------------------------
    def _start_episode(self) -> None:
        prof = self.profile
        q = prof.home + self.rng.uniform(-INIT_NOISE, INIT_NOISE, 7)
        if self.goals is not None:
            q = prof.home.copy()
            self.goal = self.goals[self.episode % len(self.goals)]
        else:
            self.goal = self.rng.uniform(GOAL_LOW, GOAL_HIGH)
        self.arm.reset(np.clip(q, prof.q_min, prof.q_max))
        # A reset teleports the arm, which no real arm does: commands planned before it (still
        # in flight) must not reach the new episode. Trajectories carry their plan time;
        # forward commands get a short grace window.
        self._reset_time = self.arm.time
        self.trace = EpisodeTrace(self.goal, self.p.success_threshold)
        self._ep_start, self._ep_reflexes = self.arm.time, self.arm.reflex_count
        self._ep_rejected = self.arm.state()['rejected']
        self._next_sample = self.arm.time
        self._reset_q, self._reset_t = self.arm.state()['q'], self.arm.time
        self._reset_pose = self._reset_q
        self._ep_ignored, self._ep_silent = self.reset_ignored, self.silent_steps
        self._publish_goal()
        self._publish_state()

    def _finish_episode(self) -> None:
        st = self.arm.state()
        result = {'episode': self.episode, **self.trace.result(), 'robot': self.profile.name,
                  'reflex': st['reflex'] if st['reflex_count'] > self._ep_reflexes else None,
                  'reflexes': st['reflex_count'] - self._ep_reflexes,
                  'reflex_at_s': (None if st['reflex_count'] == self._ep_reflexes
                                  or st['reflex_time'] is None
                                  else round(st['reflex_time'] - self._ep_start, 4)),
                  'reflex_violation': (None if st['reflex_count'] == self._ep_reflexes
                                       else str(st['reflex_violation'])),
                  'reflex_log': (None if st['reflex_count'] == self._ep_reflexes
                                 else self.arm.reflex_log),
                  'rejected': st['rejected'] - self._ep_rejected,
                  'reset_ignored': self.reset_ignored - self._ep_ignored,
                  'silent_steps': self.silent_steps - self._ep_silent,
                  'distances': [round(d, 5) for d in self.trace.distances],
                  'start_q': [float(v) for v in self._reset_pose],
                  'final_q': [float(v) for v in st['q']],
                  'sim_time': self.arm.time, 'wall_time': time.time()}
        self._result_pub.publish(conv.json_string(result))
        self.get_logger().info(f"episode {self.episode}: success={result['success']} "
                               f"min_distance={result['min_distance']:.4f} m reflex="
                               f"{result['reflex']}")
        self.episode += 1
        self.done = bool(self.p.episodes and self.episode >= self.p.episodes)
        self._start_episode()

    def _on_reset_episode(self, req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        self.episode += 1  # the interrupted episode gets no result
        self._start_episode()
        res.success, res.message = True, f'episode {self.episode} started'
        return res

    def _on_recover(self, req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        was = self.arm.state()['reflex']
        self.arm.recover()
        res.success, res.message = True, f'recovered from {was}' if was else 'no reflex'
        self._publish_robot_state()
        return res

    def _on_mute(self, req: SetBool.Request, res: SetBool.Response) -> SetBool.Response:
        """Fault injection: stop (true) or resume (false) publishing joint states."""
        self.muted_at = self.arm.time if req.data else None
        res.success, res.message = True, f'joint states muted at {self.arm.time:.3f}' \
            if req.data else 'joint states resumed'
        return res

    # -- commands and stepping --------------------------------------------------------------
    def _on_command(self, msg: Any, info: Any) -> None:
        info = info or {}
        t = self._arrival(int(info.get('received_timestamp') or 0),
                          int(info.get('source_timestamp') or 0))
        if self.p.command_type == 'trajectory':
            traj = conv.msg_to_trajectory(msg)
            if traj.stamp:  # ROS time -> the arm's grid
                traj = type(traj)(traj.joint_names, traj.points, traj.stamp - self._epoch)
                if traj.stamp < self._reset_time - 1e-9:
                    return  # planned for the previous episode
            if self._from_old_episode(t, traj):
                return
            self.arm.submit_trajectory(t, traj)
        elif (self.p.command_type == 'effort' and not self.p.publish_clock
              and t < self._reset_time + RESET_GRACE_S):
            return  # effort commands carry no state to tell the episodes apart
        else:
            data = conv.multiarray_values(msg)
            if self._from_old_episode(t, data):
                return
            (self.arm.submit_velocity if self.p.command_type == 'velocity'
             else self.arm.submit_effort)(t, data.tolist())
        self._last_cmd_wall = time.monotonic()
        if self.p.publish_clock and self._awaiting:
            self._awaiting, self._answering = False, True
            self._advance(round(self.p.control_period_s / self.arm.dt))

    def _from_old_episode(self, t: float, cmd: Any) -> bool:
        """Whether a command right after a reset belongs to the previous episode (docstring)."""
        if self._reset_q is None:
            return False
        if t - self._reset_t > self.p.reset_guard_s or self.p.command_type == 'effort':
            self._reset_q = None
            return False
        if self.p.command_type == 'velocity':
            fresh = len(cmd) != 7 or float(np.max(np.abs(cmd))) <= 1e-3  # malformed: deliver
        else:
            fresh = starts_at(cmd, t, self.profile.joint_names, self._reset_q,
                                  self.p.reset_tolerance)
        if fresh:
            self._reset_q = None
        else:
            self.reset_ignored += 1
        return not fresh

    def _realtime_step(self) -> None:
        now = time.monotonic()
        n = int((now - self._mono0) / self.arm.dt + 1e-6) - round(self.arm.time / self.arm.dt)
        self.max_lag_s = max(self.max_lag_s, n * self.arm.dt)
        if (self.p.fidelity == 'ideal' and self.p.command_type == 'velocity'
                and self.p.command_timeout_s > 0
                and now - self._last_cmd_wall > self.p.command_timeout_s):
            self.arm.submit_velocity(self.arm.time, [0.0] * 7)  # ideal: a dead server stops
        # Catching up after this process stalled: take the commands that arrived meanwhile
        # before stepping past their arrival (each keeps its receive time), chunk by chunk
        n = min(n, 100)  # at most 0.1 s per call: services and the rest keep running
        while n > 0:
            self._take_commands()
            chunk = min(n, CATCH_UP_CHUNK)
            self._advance(chunk)
            n -= chunk

    def _take_commands(self) -> None:
        """Run `_on_command` for every command the middleware holds (the executor would later).

        Uses the subscription handle as rclpy's executor does (`take_message`); a robot's
        controller thread takes each message when it arrives, which a stepping callback of a
        single-threaded executor cannot.
        """
        sub = self._cmd_sub
        take = getattr(sub.handle, 'take_message', None)
        if take is None:  # an rclpy without this handle API: the executor takes them later
            return
        while True:
            with sub.handle:
                taken = take(sub.msg_type, sub.raw)
            if taken is None:
                return
            self._on_command(*taken)  # outside the handle: a failure here is not hidden

    def _advance(self, n: int) -> None:
        """Step n ms, publishing states and sampling the episode on their schedules."""
        period = self.p.control_period_s
        for _ in range(n):
            self.arm.step(1)
            k = round(self.arm.time / self.arm.dt)
            if not self.p.publish_clock and k % self._publish_every == 0:
                self._publish_state(gripper=k % self._grip_every == 0)
            if self.arm.time >= self._next_sample - 1e-9:
                self._next_sample += period
                q = self.arm.state()['q']
                self.trace.add(self.arm.time - self._ep_start, np.array(fk_single(q.tolist())))
            if self.arm.time - self._ep_start >= self.p.episode_s - 1e-9:
                self._finish_episode()
                return
        if self.p.publish_clock:
            self._publish_state()

    def _republish(self) -> None:
        """Lockstep, no command for a while: time passes anyway (the controller holds).

        A server with nothing to send (no goal yet, at rest) answers no state, and re-sending
        the same state would not make it answer: the clock would stand still for good. A
        server that answered the previous state is waited for longer (`lockstep_stall_s`):
        its command, applied a period late, would start after its plan and step the reference.
        """
        wait = self.p.lockstep_stall_s if self._answering else self.p.lockstep_republish_s
        if time.monotonic() - self._last_cmd_wall >= wait:
            self._last_cmd_wall = time.monotonic()
            self._awaiting, self._answering = False, False
            self.silent_steps += 1
            self._advance(round(self.p.control_period_s / self.arm.dt))

    # -- output -----------------------------------------------------------------------------
    def _publish_state(self, gripper: bool = True) -> None:
        """The arm's (and the gripper's) joint state; lockstep: /clock first, then the state."""
        stamp = conv.sec_to_stamp(self._ros_time(self.arm.time))
        if self._clock_pub is not None:
            self._clock_pub.publish(ClockMsg(clock=stamp))
        if self.muted_at is not None:
            return
        names, q, qd, tau = self.arm.joint_state()
        self._js_pub.publish(conv.make_joint_state(names, q, qd, tau, stamp=stamp))
        if gripper:
            names, q, qd, eff = self.arm.gripper_state()
            self._grip_pub.publish(conv.make_joint_state(names, q, qd, eff, stamp=stamp))
        self._awaiting = True

    def _publish_goal(self) -> None:
        self._goal_pub.publish(conv.point_stamped(self.goal, self.profile.base_frame,
                                                  conv.sec_to_stamp(self._ros_time(
                                                      self.arm.time))))

    def _publish_robot_state(self) -> None:
        st = self.arm.state()
        keys = ('mode', 'reflex', 'reflex_time', 'reflex_errors', 'reflex_count', 'rejected',
                'dropped', 'ignored', 'at_rest', 'time')
        report = {k: st[k] for k in keys}
        report['reflex_errors'] = list(report['reflex_errors'])
        report['last_rejection'] = st['rejections'][-1][1] if st['rejections'] else None
        report['max_abs_qd'] = float(np.abs(st['qd']).max())
        report['qd_ref'] = [float(v) for v in st['qd_ref']]  # the commanded reference
        report['reset_ignored'], report['max_lag_ms'] = self.reset_ignored, self.max_lag_s * 1e3
        report.update(episode=self.episode, ros_time=self._ros_time(st['time']),
                      muted_at=self.muted_at, qd=[float(v) for v in st['qd']])
        self._state_pub.publish(conv.json_string(report))
        now = time.monotonic()
        if now - self._diag_wall < 0.1 and st['mode'] == self._diag_mode:
            return  # /diagnostics at most 10 Hz, at once on a mode change
        self._diag_wall, self._diag_mode = now, st['mode']
        level = 2 if st['mode'] == 'reflex' else 0
        message = f'reflex: {st["reflex"]}' if level else f'{st["mode"]} ({self.p.fidelity})'
        self._diag_pub.publish(conv.diagnostic_array(
            f'{self.get_fully_qualified_name()}: robot', level, message, self.profile.name,
            report, self.get_clock().now().to_msg()))


def _qos_fields(profile: QoSProfile) -> dict[str, Any]:
    return {'history': profile.history, 'reliability': profile.reliability,
            'durability': profile.durability}


def main(argv: list[str] | None = None) -> int:
    """Entry point `sim_robot`; `--help` prints the parameters; SIGINT/SIGTERM stop it."""
    args = sys.argv if argv is None else ['sim_robot', *argv]
    if print_help_if_asked(args, 'sim_robot', SimParams, __doc__):
        return 0
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    try:
        node = SimRobot()
    except ValueError as exc:
        print(f'sim_robot: {exc}', file=sys.stderr)
        rclpy.shutdown()
        return 2
    executor = rclpy.executors.SingleThreadedExecutor()
    try:
        spin_until_signal(node, executor, done=lambda: node.done)
        flush(node._result_pub)  # the last episode's result must not die in the queue
    finally:
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
