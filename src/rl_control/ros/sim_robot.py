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
with the time they represent, as a loaded robot PC would). Joint states as `topology` wires
them (robots/bringup.py; the FR3 as franka_bringup: `franka/joint_states` every millisecond,
or decimated to `publish_rate_hz`, + joint_state_publisher's merged `joint_states` at
`joint_state_rate_hz`), the gripper's at `gripper_rate_hz`.
Lockstep (`publish_clock`): the node publishes /clock before every state and advances one
control period per received command (run the server with use_sim_time and trigger: state), or
after `lockstep_republish_s` of wall time without one (a server at rest sends nothing).

Episodes: each starts at rest (profile home, or the goals file's start) with a goal (the goals
file in order, or sampled in the reach region), published on the policy server's goal topic;
after `episode_s` the result goes to `~/episode_result` (JSON: success at 1/2/5 cm and at
`success_threshold`, time to goal, final distance, path length, reflex, rejected messages).
A reset moves the arm at once, so commands still in flight for the previous episode are not
delivered (robots/episode_guard.py: `reset_tolerance`, `reset_guard_s`, `reset_ignored`).
`~/robot_state` (JSON: mode, reflex, counters) and /diagnostics (ERROR on a reflex) report the
arm at `robot_state_rate_hz`; `robot_state_topic` its mode and errors as
franka_robot_state_broadcaster does (robots/robot_state.py; at once on a mode change);
`~/recover` (std_srvs/Trigger) is franka_ros2's error recovery; `~/reset_episode` starts a new
episode now; fault injection: `~/mute_joint_states` (std_srvs/SetBool: a dead driver or
network), `~/inject_reflex` (a reflex now, as on a collision).
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
from rclpy.signals import SignalHandlerOptions
from rosgraph_msgs.msg import Clock as ClockMsg
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory

from rl_control.envs.reach_metrics import EpisodeTrace, load_goals
from rl_control.robots import robot_state
from rl_control.robots.bringup import Republisher, wiring
from rl_control.robots.episode_guard import ResetGuard, arrival
from rl_control.robots.franka import FrankaArm
from rl_control.robots.kinematics import fk_single
from rl_control.robots.physics import mujoco_physics
from rl_control.robots.profiles import get_profile
from rl_control.ros import conversions as conv
from rl_control.ros import qos
from rl_control.ros.hosting import flush, print_help_if_asked
from rl_control.ros.params import SimParams, declare
from rl_control.ros.signals import spin_until_signal
from rl_control.serve.settings import trajectory_controller

GOAL_LOW, GOAL_HIGH = np.array([0.45, -0.15, 0.0]), np.array([0.75, 0.15, 0.3])
INIT_NOISE = 0.1  # the reach task's start noise around home (envs/panda_reach.py)
CATCH_UP_CHUNK = 4  # real time: ms stepped between takes of pending commands


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
        self.max_lag_s = 0.0
        self.guard = ResetGuard(self.profile.joint_names, p.command_type, p.reset_tolerance,
                                p.reset_guard_s)
        self.muted_at: float | None = None  # fault injection: joint states stopped (grid time)
        self._diag_wall, self._diag_mode = 0.0, ''
        topic = p.command_topic or (f'{trajectory_controller(p.robot)}/joint_trajectory'
                                    if p.command_type == 'trajectory'
                                    else f'{p.command_type}_controller/commands')
        msg_type = JointTrajectory if p.command_type == 'trajectory' else Float64MultiArray
        self._cmd_sub = self.create_subscription(msg_type, topic, self._on_command,
                                                 qos.COMMAND_READER)
        w = wiring(p.topology, p.robot, p.joint_state_topic, p.gripper_state_topic,
                   p.joint_state_rate_hz)
        self._js_pub = self.create_publisher(JointState, w.arm_topic, qos.SENSOR)
        self._grip_pub = self.create_publisher(JointState, w.gripper_topic, qos.SENSOR)
        self._rep = Republisher(w.merged_rate_hz, self.arm.dt) if w.merged_topic else None
        self._rep_pub = (self.create_publisher(JointState, w.merged_topic, qos.SENSOR)
                         if w.merged_topic else None)
        self._fr_type = conv.robot_state_type('auto')
        self._fr_pub = self.create_publisher(self._fr_type, p.robot_state_topic, 10)
        self._fr_mode = ''
        self._goal_pub = self.create_publisher(PointStamped, p.goal_topic, qos.GOAL)
        self._result_pub = self.create_publisher(String, '~/episode_result', qos.RESULTS)
        self._state_pub = self.create_publisher(String, '~/robot_state', qos.RESULTS)
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', qos.DIAGNOSTICS)
        self._clock_pub = self.create_publisher(ClockMsg, '/clock', 10) if p.publish_clock \
            else None
        self.create_service(Trigger, '~/reset_episode', self._on_reset_episode)
        self.create_service(Trigger, '~/recover', self._on_recover)
        self.create_service(SetBool, '~/mute_joint_states', self._on_mute)
        self.create_service(Trigger, '~/inject_reflex', self._on_inject_reflex)
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
        """A command's arrival on the arm's grid (robots/episode_guard.py `arrival`)."""
        if self.p.publish_clock:
            return self.arm.time
        return arrival(self.arm.time, time.monotonic() - self._mono0, self._epoch,
                       received_ns, sent_ns)

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
        self.guard.reset(self.arm.time, self.arm.state()['q'])  # commands still in flight
        self.trace = EpisodeTrace(self.goal, self.p.success_threshold,
                                  start_ee=fk_single(self.arm.state()['q'].tolist()))
        self._ep_start, self._ep_reflexes = self.arm.time, self.arm.reflex_count
        self._ep_rejected = self.arm.state()['rejected']
        self._next_sample = self.arm.time
        self._ep_ignored, self._ep_silent = self.guard.ignored, self.silent_steps
        self._publish_goal()
        self._publish_state()

    def _finish_episode(self) -> None:
        st = self.arm.state()
        result = {'episode': self.episode, **self.trace.result(), 'robot': self.profile.name,
                  **robot_state.episode_reflex(st, self._ep_reflexes, self._ep_start,
                                               self.arm.reflex_log),
                  'rejected': st['rejected'] - self._ep_rejected,
                  'reset_ignored': self.guard.ignored - self._ep_ignored,
                  'silent_steps': self.silent_steps - self._ep_silent,
                  'start_q': [float(v) for v in self.guard.q_start],
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

    def _on_inject_reflex(self, req: Trigger.Request, res: Trigger.Response
                          ) -> Trigger.Response:
        """Fault injection: the robot raises a reflex now (as on a collision)."""
        self.arm.inject_reflex()
        self._publish_robot_state()
        res.success, res.message = True, f'reflex at {self.arm.time:.3f}'
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
            cmd = conv.msg_to_trajectory(msg)
            if cmd.stamp:  # ROS time -> the arm's grid
                cmd = type(cmd)(cmd.joint_names, cmd.points, cmd.stamp - self._epoch)
        else:
            cmd = conv.multiarray_values(msg)
        if self.guard.drop(t, cmd, self.p.publish_clock):
            return  # meant for the previous episode (robots/episode_guard.py)
        if self.p.command_type == 'trajectory':
            self.arm.submit_trajectory(t, cmd)
        else:
            (self.arm.submit_velocity if self.p.command_type == 'velocity'
             else self.arm.submit_effort)(t, cmd.tolist())
        self._last_cmd_wall = time.monotonic()
        if self.p.publish_clock and self._awaiting:
            self._awaiting, self._answering = False, True
            self._advance(round(self.p.control_period_s / self.arm.dt))

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
        """Run `_on_command` for every command held, as rclpy's executor would (take_message).

        A robot's controller thread takes each message when it arrives.
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
            if self.arm.mode != self._fr_mode:
                self._publish_franka_state()  # a mode change goes out at once
            if self.arm.time >= self._next_sample - 1e-9:
                self._next_sample += period
                st = self.arm.state()
                self.trace.add(self.arm.time - self._ep_start,
                               np.array(fk_single(st['q'].tolist())), st['qd'])
            if self.arm.time - self._ep_start >= self.p.episode_s - 1e-9:
                self._finish_episode()
                return
        if self.p.publish_clock:
            self._publish_state()

    def _republish(self) -> None:
        """Lockstep, no command for a while: time passes anyway (the controller holds).

        A server at rest answers no state. One that answered the previous state is waited for
        longer (`lockstep_stall_s`): its command, a period late, would step the reference.
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
        rep = self._rep
        if rep is not None:
            rep.offer_arm(names, q, qd, tau)
        if gripper:
            names, q, qd, eff = self.arm.gripper_state()
            self._grip_pub.publish(conv.make_joint_state(names, q, qd, eff, stamp=stamp))
            if rep is not None:
                rep.offer_gripper(names, q, qd, eff)
        if rep is not None and rep.due(self.arm.time):  # joint_state_publisher: stamped now
            now = conv.sec_to_stamp(self._ros_time(self.arm.time) if self.p.publish_clock
                                    else self.get_clock().now().nanoseconds * 1e-9)
            self._rep_pub.publish(conv.make_joint_state(*rep.merged(), stamp=now))
        self._awaiting = True

    def _publish_goal(self) -> None:
        self._goal_pub.publish(conv.point_stamped(self.goal, self.profile.base_frame,
                                                  conv.sec_to_stamp(self._ros_time(
                                                      self.arm.time))))

    def _publish_franka_state(self) -> None:
        """Mode and errors as franka_robot_state_broadcaster publishes them."""
        arm = self.arm
        self._fr_mode = arm.mode
        fields = robot_state.franka_state(arm.mode, arm.reflex_errors, arm.last_motion_errors,
                                          self._ros_time(arm.time))
        self._fr_pub.publish(conv.robot_state_msg(self._fr_type, fields))

    def _publish_robot_state(self) -> None:
        st = self.arm.state()
        report = robot_state.report(
            st, reset_ignored=self.guard.ignored, max_lag_ms=self.max_lag_s * 1e3,
            episode=self.episode, ros_time=self._ros_time(st['time']), muted_at=self.muted_at)
        self._state_pub.publish(conv.json_string(report))
        self._publish_franka_state()
        now = time.monotonic()
        if now - self._diag_wall < 0.1 and st['mode'] == self._diag_mode:
            return  # /diagnostics at most 10 Hz, at once on a mode change
        self._diag_wall, self._diag_mode = now, st['mode']
        level = 2 if st['mode'] == 'reflex' else 0
        message = f'reflex: {st["reflex"]}' if level else f'{st["mode"]} ({self.p.fidelity})'
        self._diag_pub.publish(conv.diagnostic_array(
            f'{self.get_fully_qualified_name()}: robot', level, message, self.profile.name,
            report, self.get_clock().now().to_msg()))


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
