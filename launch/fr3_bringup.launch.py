"""A real FR3 as franka_ros2 ships it, with the controller and the policy server rl_control needs.

    ros2 launch rl_control fr3_bringup.launch.py robot_ip:=172.16.0.2 bundle:=/path/to/bundle
    ros2 launch rl_control fr3_bringup.launch.py use_fake_hardware:=true     # no robot

What it starts (docs/real_robot.md is the runbook):
1. franka_bringup's `launch/franka.launch.py` (franka_ros2 v2.x on Humble, v3.x on Jazzy) with
   `robot_ip`, `use_fake_hardware`, `namespace`, and the arm type as both `robot_type`
   (franka.launch.py from v2.2.0 / v3.2.0 on) and `arm_id` (v2.0-v2.1, v3.0-v3.1): the
   controller manager at 1 kHz, joint_state_broadcaster on `franka/joint_states`,
   joint_state_publisher's `joint_states` at 30 Hz, franka_robot_state_broadcaster. Skipped
   (with a log line) where franka_bringup is not installed: then point the rest at a
   controller manager of your own.
2. The controller_manager's spawner for `fr3_position_trajectory_controller` with
   `--param-file config/franka_ros2/fr3_position_trajectory_controller.yaml` (the spawner
   reads `type` from that file): loaded, configured and activated.
3. policy_server through serve.launch.py with config/policy_server_fr3.yaml: UNCONFIGURED and
   in SHADOW mode by default (`shadow:=false` only after the shadow run), subscribed to
   `franka/joint_states` (the broadcaster's 1 kHz stream with measurement stamps), watching
   `franka_robot_state_broadcaster/robot_state`. Once it is active, `ros2 service call
   /policy_server/move_to_start std_srvs/srv/Trigger` moves the arm to the bundle's start
   pose at `start_speed` and answers when it is there.
"""
from __future__ import annotations

import os
from typing import Any

from launch.actions import (
    DeclareLaunchArgument,
    GroupAction,
    IncludeLaunchDescription,
    LogInfo,
    OpaqueFunction,
)
from launch.launch_context import LaunchContext
from launch.launch_description import LaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch_ros.actions import Node, PushRosNamespace

from rl_control.ros.launch_args import truthy

PACKAGE = 'rl_control'
CONTROLLER = 'fr3_position_trajectory_controller'
HERE = os.path.dirname(os.path.abspath(__file__))
SHARE = os.path.dirname(HERE)  # share/rl_control (or the source tree)


def franka_bringup_launch() -> str | None:
    """franka_bringup's launch/franka.launch.py, or None where franka_bringup is not installed."""
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    except ImportError:
        return None
    try:
        path = os.path.join(get_package_share_directory('franka_bringup'), 'launch',
                            'franka.launch.py')
    except (PackageNotFoundError, OSError):  # OSError: no AMENT_PREFIX_PATH at all
        return None
    return path if os.path.isfile(path) else None


def franka_arguments(context: LaunchContext) -> dict[str, str]:
    """The arguments franka.launch.py gets (both names of the arm type: see the docstring)."""
    cfg = context.launch_configurations
    arm = cfg.get('arm_id', 'fr3') or 'fr3'
    return {'robot_ip': cfg.get('robot_ip', ''), 'use_fake_hardware':
            'true' if truthy(cfg.get('use_fake_hardware', 'false')) else 'false',
            'namespace': cfg.get('namespace', ''), 'robot_type': arm, 'arm_id': arm}


def spawner_arguments() -> list[str]:
    """The spawner's command line: the controller, its parameter file (activated at once)."""
    return [CONTROLLER, '--param-file',
            os.path.join(SHARE, 'config', 'franka_ros2', f'{CONTROLLER}.yaml')]


def serve_arguments(context: LaunchContext) -> dict[str, str]:
    """serve.launch.py's arguments: FR3 file, shadow unless told, unconfigured."""
    cfg = context.launch_configurations
    return {'robot': 'fr3', 'bundle': cfg.get('bundle', ''), 'namespace': cfg.get('namespace', ''),
            'shadow': 'false' if cfg.get('shadow', 'true') == 'false' else 'true',
            'joint_state_topic': 'franka/joint_states', 'autostart': 'false',
            'start_speed': cfg.get('start_speed', '')}


def _launch_setup(context: LaunchContext) -> list[Any]:
    cfg = context.launch_configurations
    out: list[Any] = []
    franka = franka_bringup_launch()
    if franka is None:
        out.append(LogInfo(msg='franka_bringup is not installed: not starting the robot '
                               '(start franka_ros2 yourself; the spawner waits for it).'))
    else:
        out.append(GroupAction([IncludeLaunchDescription(
            PythonLaunchDescriptionSource(franka),
            launch_arguments=list(franka_arguments(context).items()))]))
    out.append(GroupAction([PushRosNamespace(cfg.get('namespace', '')), Node(
        package='controller_manager', executable='spawner', arguments=spawner_arguments(),
        output='screen')]))
    out.append(GroupAction([IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(HERE, 'serve.launch.py')),
        launch_arguments=list(serve_arguments(context).items()))]))
    return out


def generate_launch_description() -> LaunchDescription:
    """Declare the bring-up arguments."""
    return LaunchDescription([
        DeclareLaunchArgument('robot_ip', default_value='172.16.0.2',
                              description="The FR3's IP address (franka.launch.py robot_ip)."),
        DeclareLaunchArgument('arm_id', default_value='fr3',
                              description='Arm type for franka.launch.py (robot_type / arm_id).'),
        DeclareLaunchArgument('use_fake_hardware', default_value='false',
                              description="franka_ros2's fake hardware (no robot)."),
        DeclareLaunchArgument('namespace', default_value='',
                              description='Namespace of the robot and the server.'),
        DeclareLaunchArgument('bundle', default_value='',
                              description="Policy bundle; '' = the installed default."),
        DeclareLaunchArgument('shadow', default_value='true', choices=['true', 'false'],
                              description='true: commands only on ~/shadow_command (the '
                                          "bring-up's first step)."),
        DeclareLaunchArgument('start_speed', default_value='0.2',
                              description='~/move_to_start plans with this fraction of the '
                                          "limits (x the shaper's fractions)."),
        OpaqueFunction(function=_launch_setup),
    ])
