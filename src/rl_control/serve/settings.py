"""The policy server's settings: one dataclass, the node's ROS parameters are declared from it.

Each field's default is the parameter default; its metadata carries the description, the
allowed range (`ros2 param describe` shows it, the node refuses values outside it) and whether
it is read-only (a change needs a reconfigure) or can change live.
"""
from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from rl_control.bundle.io import BACKENDS
from rl_control.robots.command_interfaces import COMMAND_INTERFACE_NAMES, command_interface
from rl_control.robots.profiles import ROBOT_NAMES

TRIGGERS = ('timer', 'state')


def param(default: Any, help: str, range: tuple[float, float] | None = None,
          choices: Collection[str] | None = None, live: bool = False) -> Any:
    """A settings field: default, description, numeric range or string choices, live or not.

    `choices` may be a live view of a registry (robots, command interfaces): what is
    registered when a value is checked is valid.
    """
    meta = {'help': help, 'range': range, 'choices': choices, 'read_only': not live}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class ServeSettings:
    """Parameters of `policy_server` (config/policy_server*.yaml hold commented sets)."""

    bundle: str = param('', 'policy bundle folder (policy.yaml + actor.safetensors); empty: '
                            'the installed models/panda_reach_sac')
    backend: str = param('numpy', "actor runtime: numpy (the bundle's safetensors weights) | "
                         "onnx (onnxruntime on the bundle's actor.onnx from `rl-control "
                         "export`, checked against the weights)", choices=BACKENDS)
    robot: str = param('panda', 'robot profile whose limits commands are shaped to',
                       choices=ROBOT_NAMES)
    command_type: str = param('trajectory', 'trajectory (JointTrajectory for a '
                              'joint_trajectory_controller; recommended on a Franka) | velocity '
                              '| effort (Float64MultiArray for a forward command controller)',
                              choices=COMMAND_INTERFACE_NAMES)
    command_topic: str = param('', "controller command topic; empty: "
                               "'<robot>_position_trajectory_controller/joint_trajectory' "
                               "(trajectory), "
                               "'velocity_controller/commands' or 'effort_controller/commands'")
    joint_state_topic: str = param('joint_states', 'sensor_msgs/JointState input '
                                   '(sensor-data QoS), mapped by joint name')
    goal_topic: str = param('~/goal', 'geometry_msgs/PointStamped goals in base_frame')
    object_pose_topic: str = param('object_pose', 'geometry_msgs/PoseStamped object pose in '
                                   'base_frame (sensor-data QoS), for bundles that observe '
                                   'object_pose (pick and place); unused otherwise')
    object_stale_s: float = param(0.2, 'brake (the hand keeps its last command) when no valid '
                                  'object pose arrived for this long', range=(0.01, 10.0))
    max_object_age_s: float = param(0.3, 'brake when the object pose stamp (capture time) is '
                                    'older than this; 0: no stamp check', range=(0.0, 60.0))
    gripper_stale_s: float = param(0.2, 'brake when the finger joints (gripper_width) have no '
                                   'valid state for this long', range=(0.01, 10.0))
    gripper_command_topic: str = param('~/gripper_command', 'std_msgs/String JSON gripper '
                                       'commands (franka_gripper Move/Grasp fields), sent on '
                                       'change, for bundles with a gripper action entry')
    base_frame: str = param('', "frame goals must be in; empty: the robot's base "
                            '(panda_link0 / fr3_link0); an empty frame_id is taken as it')
    robot_joints: list[str] = param([], 'names of the policy joints on this robot in the '
                                    "bundle's joint order; empty: the robot profile's arm "
                                    'joints (e.g. panda_joint1..7 / fr3_joint1..7)')
    command_joints: list[str] = param([], 'joint order of the command (a permutation of '
                                      'robot_joints); empty: robot_joints')
    control_rate_hz: float = param(0.0, 'policy tick rate; 0: 1 / the bundle control period',
                                   range=(0.0, 1000.0))
    trigger: str = param('timer', 'timer: tick at control_rate_hz | state: tick on joint '
                         'states, decimated to the control period (lockstep on /clock)',
                         choices=TRIGGERS)
    stream_rate_hz: float = param(1000.0, 'velocity/effort: command stream rate (the '
                                  'controller holds each value until the next)',
                                  range=(1.0, 1000.0))
    stale_periods: float = param(1.5, 'brake when a policy joint has no valid state for this '
                                 'many control periods', range=(0.1, 100.0))
    max_state_age_s: float = param(0.5, 'brake when joint-state stamps are older than this; '
                                   '0: no stamp check (unsynchronized clocks)',
                                   range=(0.0, 60.0))
    backstop_s: float = param(0.5, 'brake when no valid state arrived for this long on the '
                              'steady clock (covers use_sim_time without /clock)',
                              range=(0.01, 60.0))
    ramp_in_s: float = param(0.5, 'velocity targets ramp from 0 to 1 over this time after '
                             'activation or an e-stop reset', range=(0.0, 10.0))
    clamp_scale: float = param(1.0, 'speed scaling: targets clamped to clamp_scale x the '
                               'bundle and robot limits (live)', range=(0.01, 1.0), live=True)
    goal_low: list[float] = param([], 'tighten the goal region (base frame, x y z); empty: '
                                  "the bundle's region")
    goal_high: list[float] = param([], 'tighten the goal region (base frame, x y z)')
    lead_s: float = param(0.0, 'trajectory: plans start this long after the tick (must exceed '
                          "the worst message latency); 0: the bundle's shaper setting",
                          range=(0.0, 0.5))
    reanchor_tolerance: float = param(0.02, 're-plan from the measured state when it is this '
                                      'far [rad] from the plan (a reflex, a controller '
                                      'switch, the arm moved by hand)', range=(0.001, 1.0))
    effort_damping: float = param(5.0, 'effort: the stop torque is -effort_damping x joint '
                                  'velocity [Nm s/rad], ramped in within the torque-rate limit',
                                  range=(0.0, 100.0))
    record_dir: str = param('', 'record joint states, goals, commands and /diagnostics here as '
                            'a rosbag2 (MCAP) in segments (robots/recording.py); empty: off')
    record_segment_s: float = param(1.0, 'recording segment length: a crash loses at most the '
                                    'segment being written', range=(0.1, 3600.0))
    shadow: bool = param(False, 'shadow mode: compute (and record) commands but publish them '
                         'only on ~/shadow_command; nothing reaches the controller')
    min_state_rate_hz: float = param(100.0, 'WARN on /diagnostics when joint states arrive '
                                     'slower than this (a republisher such as '
                                     'joint_state_publisher); 0: off; not checked with '
                                     'trigger state (a lockstep sim sends one per period)',
                                     range=(0.0, 100000.0))
    start_speed: float = param(0.2, '~/move_to_start: fraction of the limits (times the '
                               "shaper's fractions) the move to the start pose plans with",
                               range=(0.01, 1.0))
    robot_state_topic: str = param('', "the robot's mode and errors "
                                   '(franka_robot_state_broadcaster/robot_state); a reflex '
                                   'brakes and waits, recovery re-anchors; empty: not watched')
    robot_state_type: str = param('auto', 'franka_msgs: franka_msgs/msg/FrankaRobotState | '
                                  'json: its fields as JSON in std_msgs/String (sim_robot '
                                  'without franka_msgs) | auto: franka_msgs when importable',
                                  choices=('auto', 'franka_msgs', 'json'))
    autostart: bool = param(False, 'configure and activate on start (no lifecycle manager '
                            'needed)')
    diagnostics_period_s: float = param(1.0, '/diagnostics period (steady clock)',
                                        range=(0.05, 60.0))

    def default_command_topic(self) -> str:
        """The controller topic a ros2_control Franka uses for this command type."""
        return self.command_topic or command_interface(self.command_type).default_topic(
            self.robot)
