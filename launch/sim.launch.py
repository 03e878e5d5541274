"""Start `sim_robot`: a simulated Franka on the topics a franka_ros2 robot speaks.

    ros2 launch rl_control sim.launch.py                          # Panda, JTC, real time
    ros2 launch rl_control sim.launch.py robot:=fr3 goals_file:=<share>/config/reach_goals.yaml
    ros2 launch rl_control sim.launch.py command_type:=velocity   # a forward velocity controller
    ros2 launch rl_control sim.launch.py use_sim_time:=true       # lockstep, publishes /clock

The default is the Franka-faithful robot (fidelity franka: the 1 kHz libfranka limit checks and
reflexes, the controller as ros2_controllers runs it) with a joint_trajectory_controller on
`<robot>_position_trajectory_controller/joint_trajectory`; joint states as sim_robot's `topology`
says (config/sim_robot.yaml: the FR3 as franka_bringup wires it).

Why OpaqueFunction: as in serve.launch.py, an argument left at '' keeps the params_file value,
so config/sim_robot.yaml stays the one place defaults live.

Why `use_sim_time` maps to the node's `publish_clock`: the simulator is the clock source. Other
nodes set use_sim_time and follow the /clock it publishes; the simulator itself must run on
wall time, or it would wait for a clock that only it can advance.
"""
from __future__ import annotations

from typing import Any

from launch.actions import (
    DeclareLaunchArgument,
    GroupAction,
    OpaqueFunction,
    RegisterEventHandler,
    Shutdown,
)
from launch.event_handlers import OnProcessExit
from launch.launch_context import LaunchContext
from launch.launch_description import LaunchDescription
from launch.substitutions import PathJoinSubstitution
from launch_ros.actions import Node, PushRosNamespace
from launch_ros.substitutions import FindPackageShare

from rl_control.ros.launch_args import robot_choices, set_overrides, truthy

PACKAGE = 'rl_control'

# Launch argument -> (sim_robot parameter, converter). '' always means "not set".
_OVERRIDES = {
    'robot': ('robot', str),
    'fidelity': ('fidelity', str),
    'command_type': ('command_type', str),
    'rate': ('publish_rate_hz', float),
    'command_topic': ('command_topic', str),
    'joint_state_topic': ('joint_state_topic', str),
    'goal_topic': ('goal_topic', str),
    'goals_file': ('goals_file', str),
    'episodes': ('episodes', int),
    'warmup_s': ('warmup_s', float),
    'seed': ('seed', int),
}


def sim_parameters(context: LaunchContext) -> list[Any]:
    """Parameter list for sim_robot: params_file first, then only the arguments set."""
    cfg = context.launch_configurations
    params: list[Any] = []
    if cfg.get('params_file', ''):
        params.append(cfg['params_file'])
    overrides: dict[str, Any] = {
        'publish_clock': truthy(cfg.get('use_sim_time', 'false')),
        'use_sim_time': False,  # the clock source runs on wall time (module docstring)
    }
    overrides.update(set_overrides(cfg, _OVERRIDES))
    params.append(overrides)
    return params


def _launch_setup(context: LaunchContext) -> list[Any]:
    """Build the namespaced sim_robot node from the resolved arguments."""
    cfg = context.launch_configurations
    clock = cfg.get('clock_topic', '')
    node = Node(
        package=PACKAGE,
        executable='sim_robot',
        name='sim_robot',
        parameters=sim_parameters(context),
        remappings=[('/clock', clock)] if clock else [],
        output='screen',
        emulate_tty=True,
    )
    out: list[Any] = [GroupAction([PushRosNamespace(cfg.get('namespace', '')), node])]
    if truthy(cfg.get('shutdown_on_exit', 'false')):  # `episodes` done: the launch ends
        out.append(RegisterEventHandler(OnProcessExit(
            target_action=node, on_exit=[Shutdown(reason='sim_robot finished')])))
    return out


def generate_launch_description() -> LaunchDescription:
    """Declare the sim arguments and start sim_robot."""
    return LaunchDescription([
        DeclareLaunchArgument(
            'params_file',
            default_value=PathJoinSubstitution(
                [FindPackageShare(PACKAGE), 'config', 'sim_robot.yaml']),
            description='sim_robot parameter YAML; the arguments below override it.'),
        DeclareLaunchArgument(
            'namespace', default_value='', description='ROS namespace for the node.'),
        DeclareLaunchArgument(
            'use_sim_time', default_value='false',
            description='Lockstep: publish /clock and step once per received command (run '
                        'the policy server with use_sim_time:=true).'),
        DeclareLaunchArgument(
            'robot', default_value='', choices=['', *robot_choices()],
            description="Robot profile: joint names, limits, base frame ('' = params_file "
                        'value, panda).'),
        DeclareLaunchArgument(
            'fidelity', default_value='', choices=['', 'franka', 'ideal'],
            description="franka: libfranka's 1 kHz checks and reflexes | ideal: a forgiving "
                        "servo ('' = params_file value, franka)."),
        DeclareLaunchArgument(
            'command_type', default_value='', choices=['', 'trajectory', 'velocity', 'effort'],
            description="The controller: trajectory (joint_trajectory_controller) | velocity | "
                        "effort (forward command controllers) ('' = params_file value)."),
        DeclareLaunchArgument(
            'rate', default_value='',
            description="Joint-state rate in Hz; the 1 kHz loop runs regardless "
                        "('' = params_file value, 1000)."),
        DeclareLaunchArgument(
            'command_topic', default_value='',
            description="The controller's command topic ('' = params_file value: "
                        '<robot>_position_trajectory_controller/joint_trajectory, '
                        'velocity_controller/commands or effort_controller/commands).'),
        DeclareLaunchArgument(
            'joint_state_topic', default_value='',
            description="JointState output ('' = params_file value)."),
        DeclareLaunchArgument(
            'goal_topic', default_value='',
            description="PointStamped goal output ('' = params_file value)."),
        DeclareLaunchArgument(
            'goals_file', default_value='',
            description="YAML goal set used in order, e.g. the installed "
                        "config/reach_goals.yaml ('' = params_file value: sampled goals)."),
        DeclareLaunchArgument(
            'episodes', default_value='',
            description="Stop after this many episodes, 0 = forever ('' = params_file value)."),
        DeclareLaunchArgument(
            'seed', default_value='',
            description="Goal/reset noise seed, -1 = random ('' = params_file value)."),
        DeclareLaunchArgument(
            'clock_topic', default_value='',
            description="Lockstep: publish the clock here instead of /clock (e.g. /ns/clock, "
                        "as `rl-control demo --namespace` does) ('' = /clock)."),
        DeclareLaunchArgument(
            'warmup_s', default_value='',
            description="Episodes count from this long after the first command ('' = "
                        'params_file value; 0 = from the start).'),
        DeclareLaunchArgument(
            'shutdown_on_exit', default_value='false', choices=['true', 'false'],
            description='End the whole launch when sim_robot exits (after `episodes`).'),
        OpaqueFunction(function=_launch_setup),
    ])
