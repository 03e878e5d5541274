"""sim_robot: a simulated Franka on the topics a ros2_control franka_ros2 robot speaks.

A host of `envs.sim_core.SimCore` (the arm, its clock, task episodes and faults): commands come
in on the interface's topic, the core decides, states, goals and results go out. `fidelity:
franka` (default) is `robots.franka.FrankaArm`: a virtual 1 kHz loop that runs the controller
(joint_trajectory_controller or a forward command controller, as they behave), checks every
commanded sample against libfranka's limits and stops with a reflex at the first violation,
and a MuJoCo arm that tracks the reference. `fidelity: ideal` is the same without the checks
(quick experiments). The robot profile (`robot`) sets joint names, limits and the base frame.

Real time: a steady timer steps the grid up to now in batches of `step_period_s`; every command
is stamped with its middleware receive time (a sim that falls behind publishes its states
late, stamped with the time they represent, as a loaded robot PC would). Lockstep
(`publish_clock`): /clock before every state, one control period per received command (run
the server with use_sim_time and trigger: state). Joint states as `topology` wires them
(robots/bringup.py; the FR3 as franka_bringup: `franka/joint_states` every millisecond, or
decimated to `publish_rate_hz`, + joint_state_publisher's merged `joint_states` at
`joint_state_rate_hz`), the gripper's at `gripper_rate_hz`.

Episodes (the task's, `task`): each starts at rest with a goal published on the policy
server's goal topic; after `episode_s` the result goes to `~/episode_result` (JSON: success at
1/2/5 cm and at `success_threshold`, time to goal, final distance, path length, reflex,
rejected messages; commands still in flight across a reset are not delivered:
`reset_tolerance`, `reset_guard_s`, `reset_ignored`). `~/robot_state` (JSON: mode, reflex,
counters) and /diagnostics (ERROR on a reflex) report the arm at `robot_state_rate_hz`;
`robot_state_topic` its mode and errors as franka_robot_state_broadcaster does
(robots/robot_state.py; at once on a mode change); `~/recover` (std_srvs/Trigger) is
franka_ros2's error recovery; `~/reset_episode` starts a new episode now; fault injection:
`~/mute_joint_states` (std_srvs/SetBool: a dead driver or network), `~/inject_reflex`.

Pick and place (`task: pick_place`, any task with an object; envs/sim_cell.py): the arm takes
the same command path on the MuJoCo cell (hand, table, cube). The hand runs franka_gripper's
Move/Grasp semantics on the JSON hand commands of `gripper_command_topic` (std_msgs/String, the
policy server's `~/gripper_command` by default; docs/pick_place.md), its finger joints go out
as franka_gripper publishes them (width / 2 each, on `gripper_state_topic` and, with the
franka_bringup topology, merged into `joint_states`); the cube's pose goes out on
`object_pose_topic` as a tracker sends it (PoseStamped, base frame, stamped with the capture
time, `tracker_rate_hz`, `tracker_delay_s` late, with `tracker_*_noise`); a contact above
franka_example_controllers' collision thresholds is a reflex; episode results carry the task's
measures (held, grasped, lifted, dropped, contact reflexes) and the hand's command count.
`~/mute_object_pose` (std_srvs/SetBool) stops the tracker (fault injection).
"""
from __future__ import annotations

import sys
import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
import rclpy
from rclpy.clock import Clock, ClockType
import rclpy.executors
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from rosgraph_msgs.msg import Clock as ClockMsg
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from std_srvs.srv import SetBool, Trigger

from rl_control.envs.sim_core import SimCore
from rl_control.robots.bringup import Republisher, wiring
from rl_control.robots.command_interfaces import command_interface
from rl_control.ros import conversions as conv
from rl_control.ros import qos
from rl_control.ros.hosting import flush, print_help_if_asked
from rl_control.ros.params import SimParams, declare
from rl_control.ros.signals import spin_until_signal


class SimRobot(Node):
    """See the module docstring; the node moves messages, `self.core` decides."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('sim_robot', **kwargs)
        self.p = p = declare(self, SimParams)
        iface = command_interface(p.command_type)
        self.command_msg = conv.COMMAND_MESSAGES[iface.message]
        self.core = core = SimCore(p, self)
        self.profile, self._diag_wall, self._diag_mode = core.profile, 0.0, ''
        topic = p.command_topic or iface.default_topic(p.robot)
        self._cmd_sub = self.create_subscription(self.command_msg.type, topic, self._on_command,
                                                 qos.COMMAND_READER)
        w = wiring(p.topology, p.robot, p.joint_state_topic, p.gripper_state_topic,
                   p.joint_state_rate_hz)
        self._js_pub = self.create_publisher(JointState, w.arm_topic, qos.SENSOR)
        self._grip_pub = self.create_publisher(JointState, w.gripper_topic, qos.SENSOR)
        self._rep = Republisher(w.merged_rate_hz, core.arm.dt) if w.merged_topic else None
        self._rep_pub = (self.create_publisher(JointState, w.merged_topic, qos.SENSOR)
                         if w.merged_topic else None)
        self._fr_type = conv.robot_state_type('auto')
        self._fr_pub = self.create_publisher(self._fr_type, p.robot_state_topic, 10)
        self.goal_msg = conv.GOAL_MESSAGES[core.task.goal_message]
        self._goal_pub = self.create_publisher(self.goal_msg.type, p.goal_topic, qos.GOAL)
        self._result_pub = self.create_publisher(String, '~/episode_result', qos.RESULTS)
        self._state_pub = self.create_publisher(String, '~/robot_state', qos.RESULTS)
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', qos.DIAGNOSTICS)
        self._clock_pub = self.create_publisher(ClockMsg, '/clock', 10) if p.publish_clock \
            else None
        self.create_service(Trigger, '~/reset_episode', self._on_reset_episode)
        self.create_service(Trigger, '~/recover', self._on_recover)
        self.create_service(SetBool, '~/mute_joint_states', self._on_mute)
        self.create_service(Trigger, '~/inject_reflex', self._on_inject_reflex)
        if core.cell is not None:  # pick and place: the hand in, the tracker out
            self._pose_pub = self.create_publisher(PoseStamped, p.object_pose_topic,
                                                   qos.SENSOR)
            self.create_subscription(String, p.gripper_command_topic, self._on_hand_command,
                                     qos.GRIPPER)
            self.create_service(SetBool, '~/mute_object_pose', self._on_mute_object)
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        if p.publish_clock:
            self.create_timer(p.lockstep_republish_s, lambda: core.republish(time.monotonic()),
                              clock=steady)
        else:
            self.create_timer(p.step_period_s, lambda: core.realtime_step(
                time.monotonic(), self._take_commands), clock=steady)
        self.create_timer(0.5, self.goal, clock=steady)  # late joiners get the goal
        self.create_timer(1.0 / p.robot_state_rate_hz, self._publish_robot_state,
                          clock=steady)
        # grid time 0 = ROS time epoch, measured on the steady clock from here on
        core.start(0.0 if p.publish_clock else self.get_clock().now().nanoseconds * 1e-9,
                   time.monotonic())
        self.get_logger().info(
            f'sim_robot: {p.robot} ({p.fidelity} fidelity), {p.command_type} commands on '
            f'{self.resolve_topic_name(topic)}, '
            + ('lockstep on /clock' if p.publish_clock else 'real time'))

    @property
    def done(self) -> bool:
        """All `episodes` ran."""
        return self.core.done

    # -- services ---------------------------------------------------------------------------
    def _on_reset_episode(self, req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        res.success, res.message = True, f'episode {self.core.reset_episode()} started'
        return res

    def _on_recover(self, req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        was, now = self.core.recover()
        res.success = True
        res.message = (('recovered from ' if now else 'recovering (when the arm is at rest) from ')
                       + was if was else 'no reflex')
        self._publish_robot_state()
        return res

    def _on_inject_reflex(self, req: Trigger.Request, res: Trigger.Response
                          ) -> Trigger.Response:
        """Fault injection: the robot raises a reflex now (as on a collision)."""
        self.core.inject_reflex()
        self._publish_robot_state()
        res.success, res.message = True, f'reflex at {self.core.arm.time:.3f}'
        return res

    def _on_mute(self, req: SetBool.Request, res: SetBool.Response) -> SetBool.Response:
        """Fault injection: stop (true) or resume (false) publishing joint states."""
        self.core.mute(req.data)
        res.success, res.message = True, f'joint states muted at {self.core.arm.time:.3f}' \
            if req.data else 'joint states resumed'
        return res

    def _on_mute_object(self, req: SetBool.Request, res: SetBool.Response) -> SetBool.Response:
        """Fault injection: the tracker stops (true) or resumes (false) publishing."""
        self.core.mute_object(req.data)
        res.success, res.message = True, f'object pose muted at {self.core.arm.time:.3f}' \
            if req.data else 'object pose resumed'
        return res

    # -- commands ---------------------------------------------------------------------------
    def _on_hand_command(self, msg: String, info: Any = None) -> None:
        """A hand command (JSON); a refused one is logged and counted, the hand ignores it."""
        refused = self.core.hand_command(msg.data, self.core.arrival(time.monotonic()))
        if refused:
            self.get_logger().warning(f'hand command refused: {refused}',
                                      throttle_duration_sec=1.0)

    def _on_command(self, msg: Any, info: Any) -> None:
        info, wall = info or {}, time.monotonic()
        t = self.core.arrival(wall, int(info.get('received_timestamp') or 0),
                              int(info.get('source_timestamp') or 0))
        self.core.command(self.command_msg.decode(msg), t, wall)

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

    # -- outputs (envs.sim_core.SimOutputs) -------------------------------------------------
    def state(self, gripper: bool = True) -> None:
        """The arm's (and the gripper's) joint state; lockstep: /clock first."""
        core, arm = self.core, self.core.arm
        stamp = conv.sec_to_stamp(core.ros_time(arm.time))
        if self._clock_pub is not None:
            self._clock_pub.publish(ClockMsg(clock=stamp))
        if core.muted_at is not None:
            return
        names, q, qd, tau = arm.joint_state()
        self._js_pub.publish(conv.make_joint_state(names, q, qd, tau, stamp=stamp))
        rep = self._rep
        if rep is not None:
            rep.offer_arm(names, q, qd, tau)
        if gripper:
            names, q, qd, eff = core.gripper_state()
            self._grip_pub.publish(conv.make_joint_state(names, q, qd, eff, stamp=stamp))
            if rep is not None:
                rep.offer_gripper(names, q, qd, eff)
        if rep is not None and rep.due(arm.time):  # joint_state_publisher: stamped now
            now = conv.sec_to_stamp(core.ros_time(arm.time) if self.p.publish_clock
                                    else self.get_clock().now().nanoseconds * 1e-9)
            self._rep_pub.publish(conv.make_joint_state(*rep.merged(), stamp=now))

    def goal(self) -> None:
        """The episode's goal in the base frame."""
        core = self.core
        self._goal_pub.publish(self.goal_msg.encode(
            core.goal, self.profile.base_frame, conv.sec_to_stamp(core.ros_time(core.arm.time))))

    def object_pose(self, stamp: float, pose: Any) -> None:
        """A tracker frame: the object's pose in the base frame, stamped at its capture."""
        self._pose_pub.publish(conv.pose_stamped(pose, self.profile.base_frame,
                                                 conv.sec_to_stamp(stamp)))

    def result(self, result: dict[str, Any]) -> None:
        """One episode's result on ~/episode_result."""
        self._result_pub.publish(conv.json_string(result))
        d = result.get('min_distance', float('nan'))  # (none without samples)
        self.get_logger().info(f"episode {result['episode']}: success={result['success']} "
                               f"min_distance={d:.4f} m reflex={result['reflex']}")

    def robot_mode(self) -> None:
        """Mode and errors as franka_robot_state_broadcaster publishes them."""
        self._fr_pub.publish(conv.robot_state_msg(self._fr_type, self.core.franka_state()))

    def _publish_robot_state(self) -> None:
        report, level, message = self.core.report()
        self._state_pub.publish(conv.json_string(report))
        self.robot_mode()
        now = time.monotonic()
        if now - self._diag_wall < 0.1 and report['mode'] == self._diag_mode:
            return  # /diagnostics at most 10 Hz, at once on a mode change
        self._diag_wall, self._diag_mode = now, report['mode']
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
