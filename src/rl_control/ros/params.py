"""Node parameters declared from dataclasses: one place lists each node's parameters.

Each node's parameters are a dataclass whose field defaults are the ROS parameter defaults and
whose `metadata['help']` is the parameter description (`ros2 param describe`). `declare` turns
the dataclass into declared ROS parameters and reads them back as a filled-in dataclass, so the
node code works with typed attributes instead of parameter lookups.

Float parameters accept integers (`-p control_rate_hz:=25`), which plain ROS typing refuses, and
list parameters may default to empty (their type comes from the annotation, not the value).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
import typing
from typing import Any, TypeVar

from rcl_interfaces.msg import ParameterDescriptor, ParameterType
from rclpy.node import Node
from rclpy.parameter import Parameter

T = TypeVar('T')

_TYPES: dict[Any, int] = {
    bool: ParameterType.PARAMETER_BOOL,
    int: ParameterType.PARAMETER_INTEGER,
    float: ParameterType.PARAMETER_DOUBLE,
    str: ParameterType.PARAMETER_STRING,
    list[float]: ParameterType.PARAMETER_DOUBLE_ARRAY,
    list[str]: ParameterType.PARAMETER_STRING_ARRAY,
    list[int]: ParameterType.PARAMETER_INTEGER_ARRAY,
    list[bool]: ParameterType.PARAMETER_BOOL_ARRAY,
}


def _help(text: str, default: Any) -> Any:
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={'help': text})
    return field(default=default, metadata={'help': text})


def declare(node: Node, cls: type[T], prefix: str = '') -> T:
    """Declare one ROS parameter per field of dataclass `cls` on `node`; return the values."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        ann = hints[f.name]
        ptype = _TYPES[ann]
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        desc = ParameterDescriptor(description=f.metadata.get('help', ''), type=ptype,
                                   dynamic_typing=ann is float)
        name = prefix + f.name
        if ann is float:
            default = float(default)
        if isinstance(default, list) and not default:
            # An empty list has no element type: rclpy would type it BYTE_ARRAY and refuse a
            # string list from a YAML file. Declare by type instead (unset until overridden).
            desc.type = 0
            value = node.declare_parameter(name, Parameter.Type(ptype), desc).value
        else:
            value = node.declare_parameter(name, default, desc).value
        values[f.name] = _coerce(ann, value, name)
    return cls(**values)


def read(node: Node, cls: type[T], prefix: str = '') -> T:
    """Read back parameters declared by `declare` (e.g. again at configure time)."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        name = prefix + f.name
        values[f.name] = _coerce(hints[f.name], node.get_parameter_or(name).value, name)
    return cls(**values)


def _coerce(ann: Any, value: Any, name: str) -> Any:
    if ann is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f'parameter {name} must be a number, got {value!r}')
        return float(value)
    if ann == list[float]:
        return [float(v) for v in (value or [])]
    if isinstance(ann, type) and issubclass(ann, list) or typing.get_origin(ann) is list:
        return list(value or [])
    return value


# --------------------------------------------------------------------------------------------
# policy_server
# --------------------------------------------------------------------------------------------
@dataclass
class ServerParams:
    """Parameters of `policy_server` (see config/policy_server.yaml for a commented set)."""

    bundle: str = _help('policy bundle folder (policy.yaml + actor.safetensors); '
                        'empty: the installed models/panda_reach_sac', '')
    joint_state_topic: str = _help('sensor_msgs/JointState input (sensor-data QoS)',
                                   '/joint_states')
    goal_topic: str = _help('geometry_msgs/PointStamped goal in base_frame', '~/goal')
    base_frame: str = _help('frame goals must be in (an empty frame_id is accepted as this)',
                            'panda_link0')
    command_topic: str = _help('controller command topic', '/velocity_controller/commands')
    command_type: str = _help('velocity | effort (std_msgs/Float64MultiArray for a '
                              'forward command controller) | trajectory '
                              '(trajectory_msgs/JointTrajectory)', 'velocity')
    robot_joints: list[str] = _help(
        'names of the policy joints on this robot, in the bundle joint_names order '
        '(e.g. fr3_joint1..7); empty: the bundle joint_names', [])
    command_joints: list[str] = _help(
        'joint order of the controller command; a permutation of robot_joints; '
        'empty: robot_joints', [])
    control_rate_hz: float = _help('control tick rate; 0: 1 / bundle control_period_s', 0.0)
    trigger: str = _help('timer: compute at control_rate_hz | state: compute on every joint '
                         'state (lowest latency; a watchdog timer still runs)', 'timer')
    max_state_age_s: float = _help('max joint-state header-stamp age; 0 disables (unsynced '
                                   'robot clocks)', 0.5)
    stale_periods: float = _help('zero the command when no valid joint state for this many '
                                 'control periods', 1.5)
    rate_limit: list[float] = _help('max command change per second, per joint in robot_joints '
                                    '(bundle) order, or one value for all (rad/s^2 for '
                                    'velocity); [0] disables', [10.0])
    ramp_in_s: float = _help('command scaled from 0 to 1 over this time after activation',
                             0.5)
    clamp_scale: float = _help('commands clamped to clamp_scale * the bundle action limits '
                               '(and max_command)', 1.0)
    max_command: list[float] = _help('optional per-joint |command| limits in command_joints '
                                     'order (robot limits); empty: bundle limits only', [])
    trajectory_horizon_s: float = _help('trajectory mode: time_from_start of the point; '
                                        '0: one control period', 0.0)
    autostart: bool = _help('configure and activate on start (no lifecycle manager needed)',
                            False)
    diagnostics_period_s: float = _help('/diagnostics period (wall clock)', 1.0)


# --------------------------------------------------------------------------------------------
# sim_robot
# --------------------------------------------------------------------------------------------
@dataclass
class SimParams:
    """Parameters of `sim_robot`."""

    command_topic: str = _help('controller command topic (Float64MultiArray velocities)',
                               '/velocity_controller/commands')
    joints: list[str] = _help('joint order of the command controller; empty: panda_joint1..7',
                              [])
    joint_state_topic: str = _help('JointState output (all arm + finger joints)',
                                   '/joint_states')
    goal_topic: str = _help('goal output (PointStamped in panda_link0); the default is the '
                            "policy server's default ~/goal", '/policy_server/goal')
    publish_rate_hz: float = _help('real-time mode: physics step + joint-state rate', 100.0)
    control_period_s: float = _help('the task control period (episode length unit, lockstep '
                                    'step)', 0.04)
    episode_steps: int = _help('episode length in control periods', 50)
    success_threshold: float = _help('success: final end-effector distance to the goal below '
                                     'this [m]', 0.05)
    publish_clock: bool = _help('lockstep: publish /clock and advance one control period per '
                                'received command (run the server with use_sim_time and '
                                'trigger: state)', False)
    lockstep_republish_s: float = _help('lockstep: re-send the state after this wall time '
                                        'without a command (startup; keep it well above '
                                        "the server's response time)", 1.0)
    command_timeout_s: float = _help('real-time mode: command older than this is treated as '
                                     'zero (a robot controller holds last; set 0 for that)',
                                     0.5)
    seed: int = _help('goal/reset noise seed; -1: random', 0)
    episodes: int = _help('stop after this many episodes (0: run forever)', 0)
