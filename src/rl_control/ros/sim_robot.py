"""sim_robot: a simulated Franka on the topics a ros2_control franka_ros2 robot speaks.

`fidelity: franka` (default) hosts `robots.franka.FrankaArm`: a virtual 1 kHz loop that runs
the controller (joint_trajectory_controller or a forward command controller, as they behave),
checks every commanded sample against libfranka's limits and stops with a reflex at the first
violation, and a MuJoCo arm that tracks the reference. `fidelity: ideal` is the same without
the checks (quick experiments). The robot profile (`robot: panda|fr3`) sets joint names, limits
and the base frame.

Clocks. Real time: a steady timer steps the 1 ms grid in batches of `step_period_s`; every
command is stamped with its arrival time on the grid, so a late Python loop never changes what
is checked; joint states are published for every millisecond (or decimated to
`publish_rate_hz`), stamped with the time they represent. Lockstep (`publish_clock`): the node
publishes /clock and advances one control period per received command (run the server with
use_sim_time and trigger: state).

Episodes: each starts at rest (profile home, or the goals file's start) with a goal (the goals
file in order, or sampled in the reach region), published on the policy server's goal topic;
after `episode_s` the result goes to `~/episode_result` (JSON: success at 1/2/5 cm and at
`success_threshold`, time to goal, final distance, path length, reflex, rejected messages).
`~/robot_state` (JSON: mode idle|move|reflex, reflex, rejected, ...) and /diagnostics (ERROR on
a reflex) report the arm; `~/recover` (std_srvs/Trigger) is franka_ros2's error recovery;
`~/reset_episode` starts a new episode now.
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
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from rl_control.envs.reach_metrics import EpisodeTrace, load_goals
from rl_control.robots.franka import FrankaArm
from rl_control.robots.kinematics import fk_single
from rl_control.robots.physics import mujoco_physics
from rl_control.robots.profiles import get_profile
from rl_control.ros import conversions as conv
from rl_control.ros import qos
from rl_control.ros.hosting import print_help_if_asked
from rl_control.ros.params import SimParams, declare
from rl_control.ros.signals import spin_until_signal

GOAL_LOW, GOAL_HIGH = np.array([0.45, -0.15, 0.0]), np.array([0.75, 0.15, 0.3])
INIT_NOISE = 0.1  # the reach task's start noise around home (envs/panda_reach.py)
RESET_GRACE_S = 0.02  # real time: forward commands this soon after a reset were sent before it


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
        self.rng = np.random.default_rng(None if p.seed < 0 else p.seed)
        self.goals = load_goals(p.goals_file) if p.goals_file else None
        self.episode, self.done, self._last_cmd_wall = 0, False, -1e9
        self._awaiting = False
        self._wall0 = time.monotonic()
        self._epoch = 0.0 if p.publish_clock else self.get_clock().now().nanoseconds * 1e-9
        self._publish_every = max(1, round(1.0 / (p.publish_rate_hz * self.arm.dt)))
        topic = p.command_topic or (f'{p.robot}_arm_controller/joint_trajectory'
                                    if p.command_type == 'trajectory'
                                    else f'{p.command_type}_controller/commands')
        msg_type = JointTrajectory if p.command_type == 'trajectory' else Float64MultiArray
        self.create_subscription(msg_type, topic, self._on_command, qos.COMMAND)
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
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        if p.publish_clock:
            self.create_timer(p.lockstep_republish_s, self._republish, clock=steady)
        else:
            self.create_timer(p.step_period_s, self._realtime_step, clock=steady)
        self.create_timer(0.5, self._publish_goal, clock=steady)  # late joiners get the goal
        self.create_timer(0.1, self._publish_robot_state, clock=steady)
        self._start_episode()
        self.get_logger().info(
            f'sim_robot: {p.robot} ({p.fidelity} fidelity), {p.command_type} commands on '
            f'{self.resolve_topic_name(topic)}, '
            + ('lockstep on /clock' if p.publish_clock else 'real time'))

    # -- time -------------------------------------------------------------------------------
    def _ros_time(self, t_arm: float) -> float:
        return self._epoch + t_arm

    def _arrival(self) -> float:
        """A command's arrival on the arm's grid: the last batch end + wall time since."""
        if self.p.publish_clock:
            return self.arm.time
        return self.arm.time + max(0.0, time.monotonic() - self._batch_wall)

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
        self._batch_wall = time.monotonic()
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
                  'rejected': st['rejected'] - self._ep_rejected,
                  'start_q': [float(v) for v in self.arm.state()['q']],
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

    # -- commands and stepping --------------------------------------------------------------
    def _on_command(self, msg: Any) -> None:
        t = self._arrival()
        if self.p.command_type == 'trajectory':
            traj = conv.msg_to_trajectory(msg)
            if traj.stamp:  # ROS time -> the arm's grid
                traj = type(traj)(traj.joint_names, traj.points, traj.stamp - self._epoch)
                if traj.stamp < self._reset_time - 1e-9:
                    return  # planned for the previous episode
            self.arm.submit_trajectory(t, traj)
        elif not self.p.publish_clock and t < self._reset_time + RESET_GRACE_S:
            return
        else:
            data = conv.multiarray_values(msg)
            (self.arm.submit_velocity if self.p.command_type == 'velocity'
             else self.arm.submit_effort)(t, data.tolist())
        self._last_cmd_wall = time.monotonic()
        if self.p.publish_clock and self._awaiting:
            self._awaiting = False
            self._advance(round(self.p.control_period_s / self.arm.dt))

    def _realtime_step(self) -> None:
        now = time.monotonic()
        n = int(round((now - self._batch_wall) / self.arm.dt))
        if (self.p.fidelity == 'ideal' and self.p.command_type == 'velocity'
                and self.p.command_timeout_s > 0
                and now - self._last_cmd_wall > self.p.command_timeout_s):
            self.arm.submit_velocity(self.arm.time, [0.0] * 7)  # ideal: a dead server stops
        if n > 0:
            self._advance(n)
            self._batch_wall += n * self.arm.dt

    def _advance(self, n: int) -> None:
        """Step n ms, publishing states and sampling the episode on their schedules."""
        period = self.p.control_period_s
        for _ in range(n):
            self.arm.step(1)
            if not self.p.publish_clock and \
                    round(self.arm.time / self.arm.dt) % self._publish_every == 0:
                self._publish_state()
            if self.arm.time >= self._next_sample - 1e-9:
                self._next_sample += period
                q = self.arm.state()['q']
                self.trace.add(self.arm.time - self._ep_start, np.array(fk_single(q.tolist())))
            if self.arm.time - self._ep_start >= self.p.episode_s - 1e-9:
                self._finish_episode()
                return
        if self.p.publish_clock:
            self._clock_pub.publish(ClockMsg(clock=conv.sec_to_stamp(self.arm.time)))
            self._publish_state()

    def _republish(self) -> None:
        if time.monotonic() - self._last_cmd_wall >= self.p.lockstep_republish_s:
            self._clock_pub.publish(ClockMsg(clock=conv.sec_to_stamp(self.arm.time)))
            self._publish_state()

    # -- output -----------------------------------------------------------------------------
    def _publish_state(self) -> None:
        stamp = conv.sec_to_stamp(self._ros_time(self.arm.time))
        names, q, qd, tau = self.arm.joint_state()
        self._js_pub.publish(conv.make_joint_state(names, q, qd, tau, stamp=stamp))
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
        self._state_pub.publish(conv.json_string(report))
        level = 2 if st['mode'] == 'reflex' else 0
        message = f'reflex: {st["reflex"]}' if level else f'{st["mode"]} ({self.p.fidelity})'
        arr = DiagnosticArray()
        arr.status = [conv.diagnostic_status(f'{self.get_fully_qualified_name()}: robot', level,
                                             message, self.profile.name,
                                             {k: v for k, v in report.items()})]
        self._diag_pub.publish(arr)


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
    finally:
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
