"""Node parameters declared from dataclasses: one place lists each node's parameters.

Each node's parameters are a dataclass whose field defaults are the ROS parameter defaults and
whose metadata (`serve.settings.param`) holds the description, the numeric range or the allowed
strings, and whether the value can change live. `declare` turns the dataclass into declared ROS
parameters with descriptors (`ros2 param describe` shows the range), `read` reads them back as a
filled-in dataclass, and `guard` installs an on-set-parameters callback that refuses a bad value
with a reason instead of storing it, and refuses changing a configure-time value while the node
is configured.

Float parameters accept integers (`-p control_rate_hz:=25`), which plain ROS typing refuses, and
list parameters may default to empty (their type comes from the annotation, not the value).
"""
from __future__ import annotations

from collections.abc import Callable
import dataclasses
from dataclasses import dataclass
import typing
from typing import Any, TypeVar

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
    SetParametersResult,
)
from rclpy.node import Node
from rclpy.parameter import Parameter

from rl_control.envs.tasks import TASK_NAMES
from rl_control.robots.command_interfaces import COMMAND_INTERFACE_NAMES
from rl_control.robots.profiles import ROBOT_NAMES
from rl_control.serve.settings import param

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


def _descriptor(f: dataclasses.Field, ann: Any) -> ParameterDescriptor:
    meta = f.metadata
    text = meta.get('help', '')
    if meta.get('read_only', True) is False:
        text += ' [live]'
    desc = ParameterDescriptor(description=text, type=_TYPES[ann],
                               dynamic_typing=ann is float)
    lo_hi = meta.get('range')
    if lo_hi is not None and ann is float:
        desc.floating_point_range = [FloatingPointRange(from_value=float(lo_hi[0]),
                                                        to_value=float(lo_hi[1]))]
    elif lo_hi is not None and ann is int:
        desc.integer_range = [IntegerRange(from_value=int(lo_hi[0]), to_value=int(lo_hi[1]))]
    if meta.get('choices'):
        desc.additional_constraints = 'one of: ' + ', '.join(meta['choices'])
    return desc


def problem(cls: type, name: str, value: Any) -> str | None:
    """Why `value` is not acceptable for field `name` of `cls` (None: it is)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    f = fields.get(name)
    if f is None:
        return None
    ann = typing.get_type_hints(cls)[name]
    try:
        value = _coerce(ann, value, name)
    except ValueError as exc:
        return str(exc)
    lo_hi, choices = f.metadata.get('range'), f.metadata.get('choices')
    if lo_hi is not None and not lo_hi[0] <= value <= lo_hi[1]:
        return f'{name} must be in [{lo_hi[0]}, {lo_hi[1]}], got {value}'
    if choices and value not in choices:
        return f'{name} must be one of {list(choices)}, got {value!r}'
    return None


def declare(node: Node, cls: type[T], prefix: str = '') -> T:
    """Declare one ROS parameter per field of dataclass `cls` on `node`; return the values.

    A value out of range or not among the choices raises ValueError naming the parameter.
    """
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        ann = hints[f.name]
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        desc = _descriptor(f, ann)
        name = prefix + f.name
        if ann is float:
            default = float(default)
        try:
            if isinstance(default, list) and not default:
                # An empty list has no element type: rclpy would type it BYTE_ARRAY and refuse
                # a string list from a YAML file. Declare by type instead (unset until given).
                desc.type = 0
                value = node.declare_parameter(name, Parameter.Type(_TYPES[ann]), desc).value
            else:
                value = node.declare_parameter(name, default, desc).value
        except Exception as exc:  # noqa: BLE001 - rclpy's range/type errors, reworded
            raise ValueError(f'parameter {name}: {exc}') from None
        why = problem(cls, f.name, value)
        if why is not None:
            raise ValueError(f'parameter {why}')
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


def guard(node: Node, cls: type, configured: Callable[[], bool],
          apply_live: Callable[[str, Any], None]) -> None:
    """Validate every parameter change; live ones are applied, configure-time ones wait.

    A configure-time parameter may change only while the node is unconfigured (it is read by
    the next configure); a live one (`param(..., live=True)`) is applied at once.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]

    def callback(params: list[Parameter]) -> SetParametersResult:
        for p in params:
            f = fields.get(p.name)
            if f is None:
                continue
            why = problem(cls, p.name, p.value)
            if why is None and f.metadata.get('read_only', True) and configured():
                why = (f'{p.name} is read at configure: change it while unconfigured '
                       '(deactivate, cleanup, set, configure)')
            if why is not None:
                return SetParametersResult(successful=False, reason=why)
        for p in params:
            if p.name in fields and not fields[p.name].metadata.get('read_only', True):
                apply_live(p.name, _coerce(typing.get_type_hints(cls)[p.name], p.value,
                                           p.name))
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(callback)


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
# sim_robot
# --------------------------------------------------------------------------------------------
@dataclass
class SimParams:
    """Parameters of `sim_robot` (config/sim_robot.yaml holds a commented set)."""

    robot: str = param('panda', 'robot profile: names, limits, base frame',
                       choices=ROBOT_NAMES)
    fidelity: str = param('franka', 'franka: 1 kHz libfranka limit checks, reflexes and the '
                          'ros2_control controllers as they behave | ideal: a velocity servo '
                          'that forgives everything (quick experiments)',
                          choices=('franka', 'ideal'))
    command_type: str = param('trajectory', 'trajectory (joint_trajectory_controller) | '
                              'velocity | effort (forward command controllers)',
                              choices=COMMAND_INTERFACE_NAMES)
    command_topic: str = param('', "empty: '<robot>_position_trajectory_controller/"
                               "joint_trajectory', "
                               "'velocity_controller/commands' or 'effort_controller/commands'")
    topology: str = param('auto', "joint-state wiring (robots/bringup.py): franka_bringup: "
                          "the broadcaster on franka/joint_states + joint_state_publisher's "
                          'merged copy on joint_states at joint_state_rate_hz | broadcaster: '
                          'joint_states only | auto: franka_bringup for the fr3, broadcaster '
                          'for the panda', choices=('auto', 'franka_bringup', 'broadcaster'))
    joint_state_topic: str = param('', 'JointState of the arm joints at publish_rate_hz '
                                   "(joint_state_broadcaster); empty: the topology's")
    joint_state_rate_hz: float = param(30.0, "franka_bringup topology: joint_state_publisher's "
                                       'rate (franka.launch.py joint_state_rate)',
                                       range=(1.0, 1000.0))
    robot_state_topic: str = param('franka_robot_state_broadcaster/robot_state', 'robot mode '
                                   'and errors as franka_robot_state_broadcaster publishes them '
                                   '(FrankaRobotState, or its fields as JSON without '
                                   'franka_msgs: serve/robot_errors.py)')
    gripper_state_topic: str = param('franka_gripper/joint_states', 'JointState of the two '
                                     'finger joints (franka_gripper publishes them apart)')
    goal_topic: str = param('policy_server/goal', 'goal output (PointStamped, base frame): '
                            "the policy server's default ~/goal")
    publish_rate_hz: float = param(1000.0, 'joint-state rate (franka_ros2: 1 kHz); the 1 kHz '
                                   'loop runs regardless', range=(1.0, 1000.0))
    robot_state_rate_hz: float = param(10.0, '~/robot_state and /diagnostics rate (steady '
                                       'clock)', range=(0.1, 1000.0))
    gripper_rate_hz: float = param(50.0, 'gripper joint-state rate (franka_gripper '
                                   'state_publish_rate: 50 Hz)', range=(1.0, 1000.0))
    step_period_s: float = param(0.004, 'real time: the 1 ms grid is stepped in batches of '
                                 'this much wall time (commands keep their arrival time)',
                                 range=(0.001, 0.1))
    control_period_s: float = param(0.04, 'the task control period (episode length unit, '
                                    'lockstep step)', range=(0.001, 1.0))
    episode_s: float = param(4.0, 'episode length [s]', range=(0.1, 600.0))
    task: str = param('reach', 'the task of the episodes (envs/tasks.py): start pose, goals, '
                      'measures', choices=TASK_NAMES)
    success_threshold: float = param(0.0, 'success: the end effector (the object) within this '
                                     'distance [m] and at rest over the last second of the '
                                     "episode; 0 = the task's own (reach 0.02, pick_place 0.05)",
                                     range=(0.0, 1.0))
    jtc_interpolate_from_desired_state: bool = param(False, 'JTC parameter '
                                                     'interpolate_from_desired_state')
    jtc_allow_nonzero_velocity_at_trajectory_end: bool = param(
        False, 'JTC parameter allow_nonzero_velocity_at_trajectory_end')
    jtc_allow_trajectory_replacement: bool = param(False, 'JTC parameter '
                                                   'allow_trajectory_replacement (HEAD only: '
                                                   'blending; false = Kilted behaviour)')
    torque_rate_limiter: bool = param(True, 'effort: franka_hardware rate-limits torques to '
                                      '1000 Nm/s (its default)')
    publish_clock: bool = param(False, 'lockstep: publish /clock and advance one control '
                                'period per command (server: use_sim_time, trigger state)')
    lockstep_republish_s: float = param(1.0, 'lockstep: advance one control period anyway '
                                        'after this wall time without a command (the '
                                        'controller holds)', range=(0.01, 60.0))
    lockstep_stall_s: float = param(10.0, 'lockstep: a server that answered the previous '
                                    'state is waited for this long before time passes '
                                    'without its command (on a loaded host it can stall for '
                                    'a second; advancing would make its message late)',
                                    range=(0.01, 600.0))
    reset_tolerance: float = param(1e-5, 'after an episode reset, commands are delivered from '
                                   'the first one that starts within this of the reset pose '
                                   '[rad] (older ones were meant for the previous episode; a '
                                   'server re-anchors on the measured pose exactly)',
                                   range=(1e-9, 10.0))
    reset_guard_s: float = param(1.0, 'after a reset, deliver every command again after this '
                                 'long even if none started at the reset pose',
                                 range=(0.0, 60.0))
    command_timeout_s: float = param(0.5, 'ideal fidelity only: a command older than this is '
                                     'zeroed (a real controller holds the last forever)',
                                     range=(0.0, 60.0))
    seed: int = param(0, 'goal and start-noise seed; -1: random', range=(-1, 2**31 - 1))
    goals_file: str = param('', 'YAML list of goals (base frame) used in order (e.g. '
                            'config/reach_goals.yaml), or of pick-and-place episodes (cube and '
                            'goal, config/pick_episodes.yaml); empty: sampled')
    episodes: int = param(0, 'stop after this many episodes (0: run forever)',
                          range=(0, 1_000_000))
    warmup_s: float = param(0.0, 'episodes count from this long after the first command '
                            '(e.g. the server\'s ramp-in): until then an episode restarts '
                            'without a result; 0: from the start', range=(0.0, 60.0))
    # a task with an object (pick_place): the cell's hand, tracker (envs/sim_cell.py)
    gripper_command_topic: str = param('policy_server/gripper_command', 'task with an object: '
                                       'hand commands in (std_msgs/String, JSON of '
                                       "franka_gripper's Move/Grasp fields): the policy "
                                       "server's default ~/gripper_command")
    object_pose_topic: str = param('object_pose', "task with an object: the tracker's object "
                                   'pose out (geometry_msgs/PoseStamped, base frame, stamped '
                                   'with the capture time)')
    tracker_rate_hz: float = param(30.0, "the tracker's frame rate (robots/tracker.py)",
                                   range=(1.0, 1000.0))
    tracker_delay_s: float = param(0.05, 'a frame is published this long after its capture',
                                   range=(0.0, 1.0))
    tracker_position_noise: float = param(0.001, "the tracker's position error (std) [m]",
                                          range=(0.0, 0.1))
    tracker_orientation_noise: float = param(0.01, "the tracker's orientation error (std) "
                                             '[rad]', range=(0.0, 1.0))
    hand_latency_s: float = param(0.05, 'a hand command starts this long after it arrives '
                                  '(robots/franka_hand.py)', range=(0.0, 1.0))
