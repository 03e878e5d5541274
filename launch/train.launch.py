"""Train a policy with the `trainer` node.

    ros2 launch rl_control train.launch.py                  # Panda joint reach (servable)
    ros2 launch rl_control train.launch.py task:=pendulum_sac out:=runs/pendulum
    ros2 launch rl_control train.launch.py config:=/path/my.yaml set:='total_steps=2000,seed=3'
    ros2 launch rl_control train.launch.py out:=runs/reach resume:=true

Training steps its environments in-process (not over topics), so this file starts one node; the
node publishes progress and writes the policy bundle, checkpoints and curves under `out`.

Why `task` exists next to `config`: `task:=NAME` picks the installed config/NAME.yaml, which is
what a user types most; `config:=PATH` is for a file of one's own and wins when both are given.
Why OpaqueFunction: the parameter types (bool resume, string-array set) are fixed here, instead
of trusting launch_ros's YAML guess on a string such as `set:=seed=3`.
"""
from __future__ import annotations

import os
from pathlib import Path
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
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node, PushRosNamespace
from launch_ros.substitutions import FindPackageShare

from rl_control.ros.launch_args import truthy

PACKAGE = 'rl_control'
DEFAULT_TASK = 'panda_joint_reach_sac'  # trains the bundle serve/demo use


def _overrides(text: str) -> list[str]:
    """`a=1,b.c=2` -> ['a=1', 'b.c=2']; a comma inside [...] (a list value) is kept."""
    items: list[str] = []
    depth, current = 0, ''
    for char in text:
        depth += char == '['
        depth -= char == ']'
        if char == ',' and depth == 0:
            items.append(current)
            current = ''
        else:
            current += char
    items.append(current)
    return [item.strip() for item in items if item.strip()]


def trainer_parameters(context: LaunchContext) -> list[dict[str, Any]]:
    """The trainer's parameters, typed, from the resolved launch arguments."""
    cfg = context.launch_configurations
    params: dict[str, Any] = {
        'config': cfg['config'],
        'resume': truthy(cfg.get('resume', 'false')),
        'use_sim_time': truthy(cfg.get('use_sim_time', 'false')),
    }
    # Same default as `rl-control train`: runs/<config file name>.
    params['out'] = cfg.get('out', '') or os.path.join('runs', Path(cfg['config']).stem)
    overrides = _overrides(cfg.get('set', ''))
    if overrides:
        params['set'] = overrides
    return [params]


def _launch_setup(context: LaunchContext) -> list[Any]:
    """Build the namespaced trainer node from the resolved arguments."""
    node = Node(
        package=PACKAGE,
        executable='trainer',
        name='trainer',
        parameters=trainer_parameters(context),
        output='screen',
        emulate_tty=True,
        # SIGINT lets the trainer save a checkpoint; give it time before launch escalates.
        sigterm_timeout='60',
        sigkill_timeout='60',
    )
    return [GroupAction([
        PushRosNamespace(context.launch_configurations.get('namespace', '')),
        node,
    ]), RegisterEventHandler(OnProcessExit(  # training done: `ros2 launch` returns
        target_action=node, on_exit=[Shutdown(reason='trainer finished')]))]


def generate_launch_description() -> LaunchDescription:
    """Declare the training arguments and start the trainer node."""
    return LaunchDescription([
        DeclareLaunchArgument(
            'task', default_value=DEFAULT_TASK,
            description='Installed config/<task>.yaml to train (ignored when config is set).'),
        DeclareLaunchArgument(
            'config',
            # A concatenation, not a nested PathJoinSubstitution: older distros lack that.
            default_value=[
                FindPackageShare(PACKAGE), '/config/', LaunchConfiguration('task'), '.yaml'],
            description='Training config YAML (task x algorithm hyperparameters).'),
        DeclareLaunchArgument(
            'out', default_value='',
            description="Run folder for bundle, checkpoints and curves, relative to the "
                        "working directory ('' = runs/<config file name>)."),
        DeclareLaunchArgument(
            'resume', default_value='false',
            description='Continue from the last checkpoint in out.'),
        DeclareLaunchArgument(
            'set', default_value='',
            description="Config overrides 'key=value,a.b=value' (as `rl-control train --set`)."),
        DeclareLaunchArgument(
            'namespace', default_value='', description='ROS namespace for the node.'),
        DeclareLaunchArgument(
            'use_sim_time', default_value='false', description='Follow /clock.'),
        OpaqueFunction(function=_launch_setup),
    ])
