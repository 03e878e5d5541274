"""ROS message <-> numpy conversions (the only message handling the nodes share).

Arrays in rclpy messages are `array.array('d')`; `np.frombuffer` views them without a copy,
which matters at 1 kHz. Every function is a plain function of its inputs so it can be tested
with hand-built messages.
"""
from __future__ import annotations

import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
import json
from typing import Any

from builtin_interfaces.msg import Duration, Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PointStamped, PoseStamped
import numpy as np
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, String
from trajectory_msgs.msg import JointTrajectory as JointTrajectoryMsg
from trajectory_msgs.msg import JointTrajectoryPoint

from rl_control.robots.franka_hand import GripperCommand
from rl_control.robots.trajectory import JointTrajectory
from rl_control.robots.trajectory import JointTrajectoryPoint as PlainPoint


def _as_array(values: Any) -> np.ndarray:
    if len(values) == 0:
        return np.zeros(0)
    try:
        return np.frombuffer(values, dtype=np.float64)
    except (TypeError, ValueError):
        return np.asarray(values, dtype=np.float64)


def stamp_to_sec(stamp: Time) -> float:
    """A header stamp in seconds (0.0 for an empty header)."""
    return stamp.sec + stamp.nanosec * 1e-9


def sec_to_stamp(t: float) -> Time:
    """Seconds to a builtin_interfaces/Time (rounded to the nanosecond).

    Rounded as a whole number of nanoseconds first: 8.9999999999 must become 9 s, not 8 s plus
    a nanosecond field that wrapped to 0.
    """
    sec, nsec = divmod(int(round(t * 1e9)), 1_000_000_000)
    return Time(sec=sec, nanosec=nsec)


def sec_to_duration(t: float) -> Duration:
    """Seconds to a builtin_interfaces/Duration (rounded to the nanosecond)."""
    sec, nsec = divmod(int(round(t * 1e9)), 1_000_000_000)
    return Duration(sec=sec, nanosec=nsec)


def joint_state_arrays(msg: JointState) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, float]:
    """(names, positions, velocities, stamp seconds) of a JointState.

    An empty velocity field (allowed by the message) becomes an empty array; the contract then
    reports it, rather than this function inventing zero velocities.
    """
    return (tuple(msg.name), _as_array(msg.position), _as_array(msg.velocity),
            stamp_to_sec(msg.header.stamp))


def make_joint_state(names: Sequence[str], positions: Sequence[float],
                     velocities: Sequence[float], efforts: Sequence[float] | None = None,
                     stamp: Time | None = None, frame_id: str = '') -> JointState:
    """A JointState from arrays (lists of float, as the message wants)."""
    msg = JointState()
    if stamp is not None:
        msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.name = list(names)
    msg.position = [float(v) for v in positions]
    msg.velocity = [float(v) for v in velocities]
    if efforts is not None:
        msg.effort = [float(v) for v in efforts]
    return msg


def float64_multiarray(values: np.ndarray | Sequence[float],
                       msg: Float64MultiArray | None = None) -> Float64MultiArray:
    """The ros2_control forward command controller message (no layout: a flat vector).

    The data goes in as an `array('d')`, which the message setter takes without checking each
    element in Python; passing `msg` reuses one message (publish serializes synchronously).
    """
    msg = Float64MultiArray() if msg is None else msg
    msg.data = array.array('d', np.ascontiguousarray(values, dtype=np.float64).tobytes())
    return msg


def multiarray_values(msg: Float64MultiArray) -> np.ndarray:
    """The flat data of a Float64MultiArray as float64."""
    return _as_array(msg.data)


def trajectory_to_msg(traj: JointTrajectory) -> JointTrajectoryMsg:
    """robots.trajectory.JointTrajectory (plain Python) -> trajectory_msgs/JointTrajectory.

    A stamp of 0.0 means "start now" to joint_trajectory_controller; any other stamp is the
    absolute start time on the controller's clock.
    """
    msg = JointTrajectoryMsg()
    if traj.stamp:
        msg.header.stamp = sec_to_stamp(traj.stamp)
    msg.joint_names = list(traj.joint_names)
    points = []
    for p in traj.points:
        pt = JointTrajectoryPoint()
        pt.positions = [float(v) for v in p.positions]
        pt.velocities = [float(v) for v in p.velocities]
        pt.accelerations = [float(v) for v in p.accelerations]
        pt.time_from_start = sec_to_duration(p.time_from_start)
        points.append(pt)
    msg.points = points
    return msg


def msg_to_trajectory(msg: JointTrajectoryMsg) -> JointTrajectory:
    """trajectory_msgs/JointTrajectory -> robots.trajectory.JointTrajectory (for sim_robot)."""
    points = [PlainPoint(p.time_from_start.sec + p.time_from_start.nanosec * 1e-9,
                         list(p.positions), list(p.velocities), list(p.accelerations),
                         list(p.effort)) for p in msg.points]
    return JointTrajectory(list(msg.joint_names), points, stamp_to_sec(msg.header.stamp))


@dataclass(frozen=True)
class CommandMessage:
    """The ros part of a command interface (robots/command_interfaces.py `message`)."""

    type: Any
    encode: Callable[[Any], Any]
    """What the server computed (robots.trajectory.JointTrajectory, or values) -> message."""
    decode: Callable[[Any], Any]
    """Message -> what the simulated controller takes (robots/franka.py `FrankaArm.submit`)."""


COMMAND_MESSAGES = {
    'JointTrajectory': CommandMessage(JointTrajectoryMsg, trajectory_to_msg, msg_to_trajectory),
    'Float64MultiArray': CommandMessage(Float64MultiArray, float64_multiarray,
                                        multiarray_values),
}
"""Message kind (`CommandInterface.message`) -> its type and conversions."""


@dataclass(frozen=True)
class GoalMessage:
    """The ros part of a task's goal (envs/tasks.py `goal_message`)."""

    type: Any
    decode: Callable[[Any], tuple[str, np.ndarray]]
    """Message -> (frame_id, goal values)."""
    encode: Callable[[Sequence[float], str, Time | None], Any]
    """(goal values, frame_id, stamp) -> message."""


def point_stamped(xyz: Sequence[float], frame_id: str, stamp: Time | None = None) -> PointStamped:
    """A PointStamped in `frame_id`."""
    msg = PointStamped()
    msg.header.frame_id = frame_id
    if stamp is not None:
        msg.header.stamp = stamp
    msg.point.x, msg.point.y, msg.point.z = (float(v) for v in xyz)
    return msg


def point_array(msg: PointStamped) -> tuple[str, np.ndarray]:
    """(frame_id, xyz) of a PointStamped."""
    return msg.header.frame_id, np.array([msg.point.x, msg.point.y, msg.point.z])


GOAL_MESSAGES = {'point': GoalMessage(PointStamped, point_array, point_stamped)}
"""Goal kind (a task's `goal_message`) -> its message type and conversions."""


def pose_stamped(pose: Sequence[float], frame_id: str, stamp: Time | None = None
                 ) -> PoseStamped:
    """A PoseStamped of (x, y, z, qx, qy, qz, qw) in `frame_id` (an object tracker's message)."""
    msg = PoseStamped()
    msg.header.frame_id = frame_id
    if stamp is not None:
        msg.header.stamp = stamp
    p, o = msg.pose.position, msg.pose.orientation
    p.x, p.y, p.z, o.x, o.y, o.z, o.w = (float(v) for v in pose)
    return msg


def pose_array(msg: PoseStamped) -> tuple[str, np.ndarray, float]:
    """(frame_id, (x, y, z, qx, qy, qz, qw), stamp seconds) of a PoseStamped."""
    p, o = msg.pose.position, msg.pose.orientation
    return (msg.header.frame_id, np.array([p.x, p.y, p.z, o.x, o.y, o.z, o.w]),
            stamp_to_sec(msg.header.stamp))


def gripper_string(cmd: GripperCommand) -> String:
    """A gripper command as the server publishes it: std_msgs/String, one JSON object.

    Its fields are franka_msgs' Move/Grasp goal fields (ros/policy_server.py: the interface).
    """
    return String(data=cmd.to_json())


def json_string(obj: Any) -> String:
    """A std_msgs/String carrying compact JSON (readable with `ros2 topic echo`)."""
    return String(data=json.dumps(obj, separators=(',', ':')))


def diagnostic_status(name: str, level: bytes | int, message: str, hardware_id: str,
                      values: dict[str, Any]) -> DiagnosticStatus:
    """A DiagnosticStatus whose KeyValues are `values` rendered as strings."""
    st = DiagnosticStatus()
    st.level = level if isinstance(level, bytes) else bytes([level])
    st.name = name
    st.message = message
    st.hardware_id = hardware_id
    st.values = [KeyValue(key=k, value=_fmt(v)) for k, v in values.items()]
    return st


def diagnostic_array(name: str, level: int, message: str, hardware_id: str,
                     values: dict[str, Any], stamp: Time | None = None) -> DiagnosticArray:
    """A /diagnostics message with one status (see `diagnostic_status`)."""
    arr = DiagnosticArray()
    if stamp is not None:
        arr.header.stamp = stamp
    arr.status = [diagnostic_status(name, level, message, hardware_id, values)]
    return arr


def diagnostic_values(st: DiagnosticStatus) -> dict[str, str]:
    """The KeyValues of a DiagnosticStatus as a dict."""
    return {kv.key: kv.value for kv in st.values}


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f'{v:.6g}'
    if isinstance(v, bool):
        return 'true' if v else 'false'
    return str(v)


# -- the robot's own state (serve/robot_errors.py) ---------------------------------------------
def franka_msgs_state_type() -> Any:
    """franka_msgs/msg/FrankaRobotState where franka_msgs is installed, else None."""
    try:
        from franka_msgs.msg import FrankaRobotState
    except ImportError:
        return None
    return FrankaRobotState


def robot_state_type(kind: str) -> Any:
    """The message type for `robot_state_type` (auto | franka_msgs | json)."""
    real = franka_msgs_state_type() if kind != 'json' else None
    if kind == 'franka_msgs' and real is None:
        raise ValueError('robot_state_type franka_msgs: franka_msgs is not installed')
    return real or String


def robot_state_msg(msg_type: Any, fields: dict[str, Any]) -> Any:
    """A FrankaRobotState (mode and errors set, the rest default) or its fields as JSON."""
    if msg_type is String:
        return json_string(fields)
    msg = msg_type(robot_mode=fields['robot_mode'], time=fields['time'])
    for key in ('current_errors', 'last_motion_errors'):
        errors = getattr(msg, key)
        for name, value in fields[key].items():
            setattr(errors, name, bool(value))
    return msg


def robot_state_fields(msg: Any) -> tuple[int, list[str]]:
    """(robot_mode, the current errors set) of a FrankaRobotState or its JSON emulation."""
    if isinstance(msg, String):
        d = json.loads(msg.data)
        return int(d['robot_mode']), sorted(k for k, v in d['current_errors'].items() if v)
    errors = msg.current_errors
    return int(msg.robot_mode), sorted(
        name for name in errors.get_fields_and_field_types() if getattr(errors, name))
