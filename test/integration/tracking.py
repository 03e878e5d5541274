"""A robot played by the test process: joint states that follow the server's own commands.

Kept beside conftest.py (which re-exports it) so that file stays small.
"""
from __future__ import annotations

from collections.abc import Callable
import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from conftest import Probe

# --------------------------------------------------------------------------------------------
# a robot played by the test process
# --------------------------------------------------------------------------------------------
PANDA_ARM = [f'panda_joint{i}' for i in range(1, 8)]
PANDA_HOME = np.array([0.0, 0.41, 0.0, -1.85, 0.0, 2.26, 0.79])


def sample_trajectory(msg: Any, t: float) -> tuple[np.ndarray, np.ndarray]:
    """(positions, velocities) of a trajectory_msgs/JointTrajectory at ROS time `t`, in the
    message's joint order: linear between waypoints (they are 4 ms apart), held after."""
    t0 = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
    times = np.array([t0 + p.time_from_start.sec + p.time_from_start.nanosec * 1e-9
                      for p in msg.points])
    pos = np.array([list(p.positions) for p in msg.points])
    vel = np.array([list(p.velocities) or [0.0] * pos.shape[1] for p in msg.points])
    if t <= times[0]:
        return pos[0], np.zeros(pos.shape[1])
    if t >= times[-1]:
        return pos[-1], np.zeros(pos.shape[1])
    k = int(np.searchsorted(times, t)) - 1
    w = (t - times[k]) / (times[k + 1] - times[k])
    return pos[k] + w * (pos[k + 1] - pos[k]), vel[k] + w * (vel[k + 1] - vel[k])


class TrackingRobot:
    """Joint states that follow the server's own commands, published from a thread.

    Trajectory mode: the positions of the newest JointTrajectory at now (what a JTC on an arm
    that tracks perfectly reports); velocity mode: the newest velocity command, integrated.
    `names` is the published order (extra names get `extras` values), `rate_hz` the rate.
    """

    def __init__(self, probe: Probe, q0: np.ndarray = PANDA_HOME,
                 arm: list[str] | None = None, names: list[str] | None = None,
                 extras: dict[str, float] | None = None, rate_hz: float = 250.0,
                 command_type: str = 'trajectory', topic: str = '/test/joint_states',
                 command_topic: str = '/test/commands',
                 command_joints: list[str] | None = None,
                 groups: list[list[str]] | None = None) -> None:
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray
        from trajectory_msgs.msg import JointTrajectory

        from rl_control.ros import qos

        self.probe, self.arm = probe, list(arm or PANDA_ARM)
        self.names = list(names or self.arm)
        self.cmd_order = list(command_joints or self.arm)
        self.groups = groups  # publish these name groups as separate messages (None: one)
        self.extras = dict(extras or {})
        self.q, self.qd = np.array(q0, float), np.zeros(len(self.arm))
        self.period = 1.0 / rate_hz
        self.command_type = command_type
        self.traj: Any = None
        self.vel_cmd = np.zeros(len(self.arm))
        self.stamp_offset_s = 0.0
        self.corrupt_since = 0.0  # steady time of the first corrupted message
        self.corrupt: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None \
            = None
        self.pub = probe.publisher(JointState, topic, qos.SENSOR)
        msg_type = JointTrajectory if command_type == 'trajectory' else Float64MultiArray
        self.commands = probe.record(msg_type, command_topic, qos.COMMAND)
        probe.node.create_subscription(msg_type, command_topic, self._on_command, qos.COMMAND)
        self.last_publish = 0.0
        self._last_t: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def _on_command(self, msg: Any) -> None:
        with self.lock:
            if self.command_type == 'trajectory':
                self.traj = msg
            else:
                data = np.array(msg.data)
                self.vel_cmd = data[[self.cmd_order.index(n) for n in self.arm]]

    def now(self) -> float:
        return self.probe.node.get_clock().now().nanoseconds * 1e-9

    def state_at(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        with self.lock:
            if self.command_type == 'trajectory' and self.traj is not None:
                pos, vel = sample_trajectory(self.traj, t)
                where = list(self.traj.joint_names)
                idx = [where.index(n) for n in self.arm]
                self.q, self.qd = pos[idx], vel[idx]
            elif self.command_type == 'velocity':
                if self._last_t is not None:
                    self.q = self.q + self.vel_cmd * (t - self._last_t)
                self.qd = self.vel_cmd.copy()
            self._last_t = t
            return self.q.copy(), self.qd.copy()

    def publish_once(self) -> None:
        from rl_control.ros.conversions import make_joint_state, sec_to_stamp

        t = self.now()
        q, qd = self.state_at(t)
        by_name = dict(zip(self.arm, zip(q, qd, strict=True), strict=True))
        pos = np.array([by_name[n][0] if n in by_name else self.extras.get(n, 0.0)
                        for n in self.names])
        vel = np.array([by_name[n][1] if n in by_name else 0.0 for n in self.names])
        corrupt = self.corrupt  # read once: a test may clear it meanwhile
        if corrupt is not None:
            pos, vel = corrupt(pos, vel)
            self.corrupt_since = self.corrupt_since or time.monotonic()
        stamp = sec_to_stamp(t + self.stamp_offset_s)
        for group in self.groups or [self.names]:
            idx = [self.names.index(n) for n in group]
            self.pub.publish(make_joint_state(group, pos[idx], vel[idx], stamp=stamp))
        self.last_publish = time.monotonic()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.publish_once()
            time.sleep(self.period)

    def start(self) -> TrackingRobot:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> float:
        """Stop publishing; returns when the last state went out (steady clock)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self.last_publish
