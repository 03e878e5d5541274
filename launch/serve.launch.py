"""Serve a trained policy bundle as the `policy_server` lifecycle node.

Against a real FR3 under franka_ros2 (this package's joint_trajectory_controller
`fr3_position_trajectory_controller`; fr3_bringup.launch.py starts both)::

    ros2 launch rl_control serve.launch.py robot:=fr3 bundle:=/path/to/models/panda_reach_sac
    ros2 lifecycle set /policy_server configure && ros2 lifecycle set /policy_server activate

`robot:=fr3` selects config/policy_server_fr3.yaml (the FR3 profile: fr3_joint1..7, its limits,
base frame fr3_link0; trajectory commands on fr3_position_trajectory_controller/joint_trajectory;
joint states on franka/joint_states, the 1 kHz broadcaster) and `robot:=panda`
config/policy_server.yaml. The node comes up UNCONFIGURED (autostart:=false, the default
here): nothing moves until an operator (or a lifecycle manager) configures and activates it.
`autostart:=true` has this launch file walk configure -> activate (what demo.launch.py does
with the simulated robot).

Why the node is built in an OpaqueFunction: every topic / type / joint argument defaults to ''
meaning "keep what params_file says". Only arguments the user actually set are layered on top
of the parameter file, so the YAML stays the single source of defaults (`robot` only picks the
file; each shipped file sets its `robot` parameter) and the launch file never silently
overrides it with a copy that drifts.

Why the launch file (not the node) drives the lifecycle when autostart:=true: launch then
reports each transition, and an operator can still `ros2 lifecycle set` the node by hand. The
node's own `autostart` parameter is forced off so the two never race for the same transition.
The activate step is tied to the configuring -> inactive transition only, so a later
deactivate (operator or e-stop) is never undone by the launch file.
"""
from __future__ import annotations

from typing import Any

from launch.actions import (
    DeclareLaunchArgument,
    EmitEvent,
    GroupAction,
    LogInfo,
    OpaqueFunction,
    RegisterEventHandler,
)
from launch.events import matches_action
from launch.launch_context import LaunchContext
from launch.launch_description import LaunchDescription
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import LifecycleNode, PushRosNamespace
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.substitutions import FindPackageShare
from lifecycle_msgs.msg import Transition

from rl_control.ros.launch_args import robot_choices, set_overrides, truthy

PACKAGE = 'rl_control'

# Launch argument -> (policy_server parameter, converter). '' always means "not set".
_OVERRIDES = {
    'bundle': ('bundle', str),
    'joint_state_topic': ('joint_state_topic', str),
    'goal_topic': ('goal_topic', str),
    'command_topic': ('command_topic', str),
    'command_type': ('command_type', str),
    'command_joints': ('command_joints', 'str_list'),
    'control_rate_hz': ('control_rate_hz', float),
    'trigger': ('trigger', str),
    'lead_s': ('lead_s', float),
    'backstop_s': ('backstop_s', float),
    'clamp_scale': ('clamp_scale', float),
    'record_dir': ('record_dir', str),
    'shadow': ('shadow', truthy),
    'start_speed': ('start_speed', float),
}


def server_parameters(context: LaunchContext) -> list[Any]:
    """Parameter list for policy_server: params_file first, then only the arguments set."""
    cfg = context.launch_configurations
    params: list[Any] = []
    params_file = cfg.get('params_file', '')
    if params_file:
        params.append(params_file)
    overrides: dict[str, Any] = {
        'use_sim_time': truthy(cfg.get('use_sim_time', 'false')),
        # Launch owns the lifecycle (see module docstring); the node must not self-activate.
        'autostart': False,
    }
    overrides.update(set_overrides(cfg, _OVERRIDES))
    params.append(overrides)
    return params


def lifecycle_actions(node: LifecycleNode, autostart: bool) -> list[Any]:
    """Actions that configure `node` and activate it once configured, when autostart."""
    if not autostart:
        return [LogInfo(msg='policy_server left unconfigured (autostart:=false); use '
                            '`ros2 lifecycle set <node> configure` then `activate`.')]
    activate = RegisterEventHandler(OnStateTransition(
        target_lifecycle_node=node, start_state='configuring', goal_state='inactive',
        entities=[
            LogInfo(msg='policy_server configured; activating.'),
            EmitEvent(event=ChangeState(
                lifecycle_node_matcher=matches_action(node),
                transition_id=Transition.TRANSITION_ACTIVATE)),
        ]))
    report = RegisterEventHandler(OnStateTransition(
        target_lifecycle_node=node, goal_state='active',
        entities=[LogInfo(msg='policy_server active: commands are being published.')]))
    failed = RegisterEventHandler(OnStateTransition(
        target_lifecycle_node=node, start_state='configuring', goal_state='unconfigured',
        entities=[LogInfo(msg='policy_server failed to configure (see its log); not '
                              'activating.')]))
    configure = EmitEvent(event=ChangeState(
        lifecycle_node_matcher=matches_action(node),
        transition_id=Transition.TRANSITION_CONFIGURE))
    return [activate, report, failed, configure]


def _launch_setup(context: LaunchContext) -> list[Any]:
    """Build the namespaced policy_server and its lifecycle handling from resolved args."""
    cfg = context.launch_configurations
    node = LifecycleNode(
        package=PACKAGE,
        executable='policy_server',
        name='policy_server',
        namespace='',  # relative: composes with PushRosNamespace and any enclosing namespace
        parameters=server_parameters(context),
        remappings=[('/clock', cfg['clock_topic'])] if cfg.get('clock_topic') else [],
        output='screen',
        emulate_tty=True,
    )
    autostart = truthy(cfg.get('autostart', 'false'))
    return [GroupAction([
        PushRosNamespace(cfg.get('namespace', '')),
        *lifecycle_actions(node, autostart),
        node,
    ])]


def _default_params_file() -> PathJoinSubstitution:
    """config/policy_server.yaml, or config/policy_server_<robot>.yaml when robot != panda."""
    name = PythonExpression([
        "'policy_server.yaml' if '", LaunchConfiguration('robot'),
        "' == 'panda' else 'policy_server_", LaunchConfiguration('robot'), ".yaml'"])
    return PathJoinSubstitution([FindPackageShare(PACKAGE), 'config', name])


def generate_launch_description() -> LaunchDescription:
    """Declare the serve arguments and start policy_server."""
    return LaunchDescription([
        DeclareLaunchArgument(
            'bundle', default_value='',
            description="Policy bundle folder (policy.yaml + actor.safetensors); '' = "
                        'params_file value, else the installed models/panda_reach_sac.'),
        DeclareLaunchArgument(
            'robot', default_value='panda', choices=robot_choices(),
            description='Selects the default params_file, which sets the robot profile: '
                        'policy_server.yaml (panda_joint1..7) or policy_server_fr3.yaml '
                        '(fr3_joint1..7, FR3 limits, fr3_position_trajectory_controller).'),
        DeclareLaunchArgument(
            'params_file', default_value=_default_params_file(),
            description='policy_server parameter YAML; launch arguments below override it.'),
        DeclareLaunchArgument(
            'joint_state_topic', default_value='',
            description="sensor_msgs/JointState input ('' = params_file value)."),
        DeclareLaunchArgument(
            'goal_topic', default_value='',
            description="geometry_msgs/PointStamped goal input ('' = params_file value)."),
        DeclareLaunchArgument(
            'command_topic', default_value='',
            description='Controller command topic, e.g. '
                        "/fr3_position_trajectory_controller/joint_trajectory ('' = params_file "
                        'value).'),
        DeclareLaunchArgument(
            'command_type', default_value='', choices=['', 'trajectory', 'velocity', 'effort'],
            description="trajectory (JointTrajectory, a joint_trajectory_controller) | velocity "
                        "| effort (Float64MultiArray, a forward controller) ('' = params_file "
                        "value)."),
        DeclareLaunchArgument(
            'command_joints', default_value='',
            description="The controller's joints in ITS order, 'a,b,c' or '[a, b, c]' "
                        "('' = params_file value)."),
        DeclareLaunchArgument(
            'control_rate_hz', default_value='',
            description="Control loop rate ('' = params_file value / the bundle's period)."),
        DeclareLaunchArgument(
            'trigger', default_value='', choices=['', 'timer', 'state'],
            description="timer: act at control_rate_hz | state: act on joint states, "
                        "decimated to the control period (lockstep with a /clock simulator) "
                        "('' = params_file value)."),
        DeclareLaunchArgument(
            'lead_s', default_value='',
            description="Trajectory plans start this long after the tick; must exceed the "
                        "worst message latency ('' = params_file value / the bundle's)."),
        DeclareLaunchArgument(
            'backstop_s', default_value='',
            description="Brake when no joint state came for this long on the steady clock "
                        "(a dead /clock); lockstep sims want 30 ('' = params_file value)."),
        DeclareLaunchArgument(
            'clamp_scale', default_value='',
            description="Speed scaling 0.01..1 ('' = params_file value); live: "
                        '`ros2 param set /policy_server clamp_scale 0.5`.'),
        DeclareLaunchArgument(
            'record_dir', default_value='',
            description="Record joint states, goals, commands and /diagnostics here (rosbag2, "
                        "MCAP segments) for `rl-control gap` ('' = params_file value: off)."),
        DeclareLaunchArgument(
            'clock_topic', default_value='',
            description="Follow the clock on this topic instead of /clock (a namespaced "
                        "lockstep sim's, e.g. /ns/clock) ('' = /clock)."),
        DeclareLaunchArgument(
            'start_speed', default_value='',
            description="~/move_to_start plans with this fraction of the limits ('' = "
                        'params_file value, 0.2).'),
        DeclareLaunchArgument(
            'shadow', default_value='', choices=['', 'true', 'false'],
            description="true: publish commands only on ~/shadow_command (nothing reaches the "
                        "controller: the bring-up's first step) ('' = params_file value)."),
        DeclareLaunchArgument(
            'namespace', default_value='', description='ROS namespace for the node.'),
        DeclareLaunchArgument(
            'use_sim_time', default_value='false',
            description='Follow /clock (true with a simulator that publishes it).'),
        DeclareLaunchArgument(
            'autostart', default_value='false',
            description='true: configure and activate the node from launch; false (default): '
                        'it stays unconfigured until `ros2 lifecycle set`.'),
        OpaqueFunction(function=_launch_setup),
    ])
