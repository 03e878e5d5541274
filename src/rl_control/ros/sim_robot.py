"""sim_robot: the MuJoCo Panda behind the topics a ros2_control Panda speaks.

Publishes `/joint_states` (7 arm + 2 finger joints, like franka_ros2), consumes a forward
velocity command controller's `Float64MultiArray` (joint order = the `joints` parameter), and
runs the reach task's episodes for evaluation: each episode resets the arm to home + noise,
samples a goal (`sim.panda_envs.ReachTask`, the training distribution), publishes it on the
policy server's goal topic (default `/policy_server/goal`, i.e. the server's `~/goal`), and after
`episode_steps` control periods publishes the result on `~/episode_result` as JSON in a
std_msgs/String (`ros2 topic echo /sim_robot/episode_result`):

    {"episode": 3, "success": true, "final_distance": 0.012, "goal": [x, y, z],
     "start_q": [...7...], "distances": [... one per control period ...], "steps": 50,
     "sim_time": 8.0, "wall_time": ...}

Two clocks:
- real time (default): a wall timer steps the physics by 1/publish_rate_hz and publishes the
  state each tick; the latest command is held between commands (zeroed after
  `command_timeout_s` without one, which a real controller would not do: a dead server should
  not leave the simulated arm drifting forever).
- lockstep (`publish_clock:=true`): the node publishes `/clock` and advances exactly one control
  period per received command (the first command after each published state; further ones
  for the same state are ignored), then publishes the new state; run the policy server with
  `use_sim_time:=true trigger:=state`. This runs as fast as the server answers and makes
  results independent of host load. While no command comes, the current state is re-sent every
  `lockstep_republish_s` of wall time (so a server that starts later still gets going).

Commands of the wrong length or with NaN/Inf are refused with a log line, never partly applied.
"""
from __future__ import annotations

import sys
import time
from typing import Any

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

from rl_control.robots.kinematics import PANDA, fk_single
from rl_control.ros import conversions as conv
from rl_control.ros import qos
from rl_control.ros.params import SimParams, declare
from rl_control.ros.signals import spin_until_signal


class SimRobot(Node):
    """See the module docstring."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('sim_robot', **kwargs)
        from rl_control.envs.panda_reach import ReachTask
        from rl_control.robots.mujoco_panda import MujocoPanda

        self.p = p = declare(self, SimParams)
        arm = list(PANDA.arm_joint_names)
        self.cmd_joints = list(p.joints) or arm
        unknown = [j for j in self.cmd_joints if j not in arm]
        if unknown or sorted(self.cmd_joints) != sorted(arm):
            raise ValueError(f'joints {self.cmd_joints} must be a permutation of {arm}; '
                             f'unknown: {unknown}')
        # command index k drives arm joint cmd_to_arm[k]
        self.cmd_to_arm = np.array([arm.index(j) for j in self.cmd_joints], dtype=np.intp)
        self.sim = MujocoPanda()
        self.task = ReachTask(distance_threshold=p.success_threshold)
        self.rng = np.random.default_rng(None if p.seed < 0 else p.seed)
        self.init_noise = 0.1  # panda_envs' default: the training start distribution
        self._cmd = np.zeros(7)
        self._cmd_time = -1e9
        self._sim_time = 0.0          # total simulated time (monotonic across resets)
        self.episode = 0
        self._reset_requested = False
        self._awaiting_command = False
        self._ignored = 0             # lockstep: extra commands for an already answered state
        self._results: list[dict[str, Any]] = []
        self.done = False

        self._js_pub = self.create_publisher(JointState, p.joint_state_topic, qos.SENSOR)
        self._goal_pub = self.create_publisher(PointStamped, p.goal_topic, qos.GOAL)
        self._result_pub = self.create_publisher(String, '~/episode_result', qos.RESULTS)
        self._clock_pub = (self.create_publisher(ClockMsg, '/clock', 10)
                           if p.publish_clock else None)
        self.create_subscription(Float64MultiArray, p.command_topic, self._on_command,
                                 qos.COMMAND)
        self.create_service(Trigger, '~/reset_episode', self._on_reset_episode)
        wall = Clock(clock_type=ClockType.STEADY_TIME)
        if p.publish_clock:
            self._last_pub_wall = time.monotonic()
            self.create_timer(p.lockstep_republish_s, self._lockstep_republish, clock=wall)
        else:
            self._dt = 1.0 / p.publish_rate_hz
            self.create_timer(self._dt, self._realtime_tick, clock=wall)
        self.create_timer(0.5, self._publish_goal, clock=wall)  # late joiners get the goal
        self._start_episode()
        mode = 'lockstep on /clock' if p.publish_clock else f'real time at {p.publish_rate_hz} Hz'
        self.get_logger().info(f'sim_robot: {mode}; commands on {p.command_topic} for '
                               f'{self.cmd_joints}; goals on {self._goal_pub.topic_name}')

    # -- episodes --------------------------------------------------------------------------
    def _start_episode(self) -> None:
        q = PANDA.home + self.rng.uniform(-self.init_noise, self.init_noise, 7)
        self._start_q = np.clip(q, PANDA.limits.q_min, PANDA.limits.q_max)
        self.sim.reset(self._start_q)
        self.goal = self.task.sample_goal(self.rng)
        self._ep_start = self._sim_time
        self._ep_steps = 0
        self._distances: list[float] = []
        self._cmd[:] = 0.0
        # goal first, then the state of the new episode
        self._publish_goal()
        self._publish_state()

    def _distance(self) -> float:
        q, _ = self.sim.arm_state()
        return float(np.linalg.norm(np.asarray(fk_single(q.tolist())) - self.goal))

    def _control_period_done(self) -> bool:
        """Book-keeping after each control period; True when a new episode was started."""
        self._ep_steps += 1
        self._distances.append(self._distance())
        if self._ep_steps >= self.p.episode_steps:
            self._finish_episode()
            return True
        return False

    def _finish_episode(self) -> None:
        d = self._distances[-1] if self._distances else self._distance()
        result = {
            'episode': self.episode, 'success': bool(d <= self.p.success_threshold),
            'final_distance': d, 'goal': [float(v) for v in self.goal],
            'start_q': [float(v) for v in self._start_q],
            'distances': [round(x, 5) for x in self._distances], 'steps': self._ep_steps,
            'sim_time': self._sim_time, 'wall_time': time.time(),
            'ignored_commands': self._ignored,
        }
        self._result_pub.publish(conv.json_string(result))
        self.get_logger().info(f"episode {self.episode}: success={result['success']} "
                               f'final_distance={d:.4f} m')
        self.episode += 1
        if self.p.episodes and self.episode >= self.p.episodes:
            self.done = True
        self._start_episode()

    def _on_reset_episode(self, request: Trigger.Request, response: Trigger.Response
                          ) -> Trigger.Response:
        if self.p.publish_clock:
            # Lockstep: publishing a fresh state now would put a second command in flight;
            # the new episode starts in place of the next stepped state instead.
            self._reset_requested = True
            response.message = f'episode {self.episode + 1} starts at the next step'
        else:
            self._start_episode()
            response.message = f'episode {self.episode} started'
        response.success = True
        return response

    # -- commands and stepping -------------------------------------------------------------
    def _on_command(self, msg: Float64MultiArray) -> None:
        data = conv.multiarray_values(msg)
        if data.shape != (len(self.cmd_joints),):
            self.get_logger().error(
                f'command REFUSED: {data.size} values for the {len(self.cmd_joints)} '
                f'controller joints {self.cmd_joints}', throttle_duration_sec=1.0)
            return
        if not np.all(np.isfinite(data)):
            self.get_logger().error('command REFUSED: NaN/Inf', throttle_duration_sec=1.0)
            return
        cmd = np.zeros(7)
        cmd[self.cmd_to_arm] = data
        self._cmd = cmd
        self._cmd_time = time.monotonic()
        if self.p.publish_clock:
            if not self._awaiting_command:
                self._ignored += 1
                return  # a second command for the same state: one step per state, exactly
            self._awaiting_command = False
            self._lockstep_step()

    def _apply(self, cmd: np.ndarray) -> None:
        self.sim.set_joint_velocity_command(cmd)

    def _realtime_tick(self) -> None:
        stale = (self.p.command_timeout_s > 0
                 and time.monotonic() - self._cmd_time > self.p.command_timeout_s)
        self._apply(np.zeros(7) if stale else self._cmd)
        period = self.p.control_period_s
        before = int((self._sim_time - self._ep_start) / period + 1e-9)
        self.sim.step(self._dt)
        self._sim_time += self._dt
        after = int((self._sim_time - self._ep_start) / period + 1e-9)
        self._publish_state()
        for _ in range(after - before):
            if self._control_period_done():
                break

    def _lockstep_step(self) -> None:
        self._apply(self._cmd)
        self.sim.step(self.p.control_period_s)
        self._sim_time += self.p.control_period_s
        self._publish_clock()
        # A new episode publishes its own first state; publishing one more here would put two
        # commands in flight and break the one-command-one-step lockstep.
        if self._control_period_done():
            return
        if self._reset_requested:
            self._reset_requested = False
            self.episode += 1  # the interrupted episode gets no result
            self._start_episode()
            return
        self._publish_state()

    def _lockstep_republish(self) -> None:
        if time.monotonic() - self._last_pub_wall >= self.p.lockstep_republish_s:
            self._publish_clock()
            self._publish_state()

    # -- output ----------------------------------------------------------------------------
    def _stamp(self) -> Any:
        if self.p.publish_clock:
            return conv.sec_to_stamp(self._sim_time)
        return self.get_clock().now().to_msg()

    def _publish_clock(self) -> None:
        if self._clock_pub is not None:
            self._clock_pub.publish(ClockMsg(clock=conv.sec_to_stamp(self._sim_time)))

    def _publish_state(self) -> None:
        names, q, qd, tau = self.sim.joint_state()
        self._js_pub.publish(conv.make_joint_state(names, q, qd, tau, stamp=self._stamp()))
        self._last_pub_wall = time.monotonic()
        self._awaiting_command = True

    def _publish_goal(self) -> None:
        self._goal_pub.publish(conv.point_stamped(self.goal, 'panda_link0', self._stamp()))


def main(argv: list[str] | None = None) -> int:
    """Entry point `sim_robot`; SIGINT/SIGTERM stop it cleanly."""
    args = sys.argv if argv is None else ['sim_robot', *argv]
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
