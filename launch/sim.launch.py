"""Start `sim_robot`: a simulated Panda that speaks the topics a ros2_control Panda speaks.

    ros2 launch rl_control sim.launch.py
    ros2 launch rl_control sim.launch.py namespace:=arm1 rate:=200
    ros2 launch rl_control sim.launch.py use_sim_time:=true     # lockstep, publishes /clock

Why OpaqueFunction: as in serve.launch.py, an argument left at '' keeps the params_file value,
so config/sim_robot.yaml stays the one place defaults live.

Why `use_sim_time` maps to the node's `publish_clock`: the simulator is the clock source. Other
nodes set use_sim_time and follow the /clock it publishes; the simulator itself must run on
wall time, or it would wait for a clock that only it can advance.
"""
from __future__ import annotations

from typing import Any

from launch.actions import DeclareLaunchArgument, GroupAction, OpaqueFunction
from launch.launch_context import LaunchContext
from launch.launch_description import LaunchDescription
from launch.substitutions import PathJoinSubstitution
from launch_ros.actions import Node, PushRosNamespace
from launch_ros.substitutions import FindPackageShare

from rl_control.ros.launch_args import set_overrides, truthy

PACKAGE = 'rl_control'

# Launch argument -> (sim_robot parameter, converter). '' always means "not set".
_OVERRIDES = {
    'rate': ('publish_rate_hz', float),
    'command_topic': ('command_topic', str),
    'joint_state_topic': ('joint_state_topic', str),
    'goal_topic': ('goal_topic', str),
    'episodes': ('episodes', int),
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
    node = Node(
        package=PACKAGE,
        executable='sim_robot',
        name='sim_robot',
        parameters=sim_parameters(context),
        output='screen',
        emulate_tty=True,
    )
    return [GroupAction([
        PushRosNamespace(context.launch_configurations.get('namespace', '')),
        node,
    ])]


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
            'rate', default_value='',
            description="Real-time physics + joint-state rate in Hz ('' = params_file value)."),
        DeclareLaunchArgument(
            'command_topic', default_value='',
            description="Float64MultiArray velocity command input ('' = params_file value)."),
        DeclareLaunchArgument(
            'joint_state_topic', default_value='',
            description="JointState output ('' = params_file value)."),
        DeclareLaunchArgument(
            'goal_topic', default_value='',
            description="PointStamped goal output ('' = params_file value)."),
        DeclareLaunchArgument(
            'episodes', default_value='',
            description="Stop after this many episodes, 0 = forever ('' = params_file value)."),
        DeclareLaunchArgument(
            'seed', default_value='',
            description="Goal/reset noise seed, -1 = random ('' = params_file value)."),
        OpaqueFunction(function=_launch_setup),
    ])
