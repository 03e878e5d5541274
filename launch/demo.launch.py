"""Demo: the simulated Panda driven by the shipped policy, in one command.

    ros2 launch rl_control demo.launch.py
    ros2 launch rl_control demo.launch.py namespace:=demo bundle:=/path/to/bundle
    ros2 launch rl_control demo.launch.py use_sim_time:=true    # lockstep on /clock

It includes sim.launch.py and serve.launch.py (so the demo exercises exactly the launch files a
user runs against hardware) and wires them together: the policy_server is configured and
activated by launch lifecycle events (ChangeState on start, activate on reaching inactive).

Why the demo passes RELATIVE topic names to both nodes: the node defaults are absolute
(/joint_states, /velocity_controller/commands), which a namespace does not move. With relative
names, `namespace:=demo` puts the whole loop under /demo, so two demos can run side by side
without hearing each other; with no namespace the names are the usual absolute ones.

Why use_sim_time:=true also sets trigger:=state: in lockstep the simulator advances one control
period per command it receives, so the server must answer each joint state rather than a timer.
"""
from __future__ import annotations

import os
from typing import Any

from launch.actions import (
    DeclareLaunchArgument,
    GroupAction,
    IncludeLaunchDescription,
    OpaqueFunction,
)
from launch.launch_context import LaunchContext
from launch.launch_description import LaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource

from rl_control.ros.launch_args import truthy

JOINT_STATES = 'joint_states'
COMMANDS = 'velocity_controller/commands'
GOAL = 'policy_server/goal'  # the server's ~/goal, relative to the shared namespace


def demo_arguments(context: LaunchContext) -> tuple[dict[str, str], dict[str, str]]:
    """Launch arguments for (sim.launch.py, serve.launch.py), consistently wired."""
    cfg = context.launch_configurations
    sim_time = truthy(cfg.get('use_sim_time', 'false'))
    common = {
        'namespace': cfg.get('namespace', ''),
        'use_sim_time': 'true' if sim_time else 'false',
    }
    sim = {
        **common,
        'joint_state_topic': JOINT_STATES,
        'command_topic': COMMANDS,
        'goal_topic': GOAL,
        'episodes': cfg.get('episodes', ''),
    }
    serve = {
        **common,
        'bundle': cfg.get('bundle', ''),
        'joint_state_topic': JOINT_STATES,
        'command_topic': COMMANDS,
        'command_type': 'velocity',  # sim_robot consumes a forward velocity controller
        'goal_topic': '~/goal',
        'trigger': 'state' if sim_time else '',
        'autostart': 'true',
    }
    return sim, serve


def _launch_setup(context: LaunchContext) -> list[Any]:
    """Include sim and serve, each in its own scope so their arguments never leak."""
    sim_args, serve_args = demo_arguments(context)
    # The sibling files, wherever this one lives (source tree or share/rl_control/launch).
    here = os.path.dirname(os.path.abspath(__file__))

    def include(name: str, args: dict[str, str]) -> GroupAction:
        return GroupAction([IncludeLaunchDescription(
            PythonLaunchDescriptionSource(os.path.join(here, name)),
            launch_arguments=list(args.items()),
        )])

    return [include('sim.launch.py', sim_args), include('serve.launch.py', serve_args)]


def generate_launch_description() -> LaunchDescription:
    """Declare the demo arguments and bring up sim_robot + policy_server."""
    return LaunchDescription([
        DeclareLaunchArgument(
            'bundle', default_value='',
            description="Policy bundle folder; '' = the installed models/panda_reach_sac."),
        DeclareLaunchArgument(
            'namespace', default_value='',
            description='Namespace for both nodes and all their topics.'),
        DeclareLaunchArgument(
            'use_sim_time', default_value='false',
            description='Lockstep on /clock published by the simulator.'),
        DeclareLaunchArgument(
            'episodes', default_value='',
            description="sim_robot stops after this many episodes ('' = sim_robot.yaml)."),
        OpaqueFunction(function=_launch_setup),
    ])
