"""Demo: the simulated Franka driven by the shipped policy, in one command.

    ros2 launch rl_control demo.launch.py
    ros2 launch rl_control demo.launch.py robot:=fr3
    ros2 launch rl_control demo.launch.py namespace:=demo bundle:=/path/to/bundle
    ros2 launch rl_control demo.launch.py use_sim_time:=true    # lockstep on /clock

What `rl-control demo` runs, as launch files: sim.launch.py (the Franka-faithful robot with a
joint_trajectory_controller, goals from the installed config/reach_goals.yaml in order) and
serve.launch.py (the robot's parameter file: trajectory commands), wired together; the
policy_server is configured and activated by launch lifecycle events (ChangeState on start,
activate on reaching inactive). Episode results go to `sim_robot/episode_result`.

Why the demo passes no topic names: both nodes' defaults are RELATIVE and already agree
(<robot>_position_trajectory_controller/joint_trajectory, the joint-state topics, and the sim's
policy_server/goal is the server's ~/goal), so `namespace:=demo` puts the whole loop under
/demo and two demos can run side by side without hearing each other; with no namespace the
names are the usual ones.

Why use_sim_time:=true also sets trigger:=state: in lockstep the simulator advances one control
period per command it receives, so the server must answer joint states rather than a timer.
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

from rl_control.ros.launch_args import robot_choices, truthy

# The server's ramp-in (config/policy_server*.yaml ramp_in_s: 0.5 s) and a margin for its
# first commands to come.
DEMO_WARMUP_S = 1.0


def demo_arguments(context: LaunchContext) -> tuple[dict[str, str], dict[str, str]]:
    """Launch arguments for (sim.launch.py, serve.launch.py), consistently wired."""
    cfg = context.launch_configurations
    sim_time = truthy(cfg.get('use_sim_time', 'false'))
    robot = cfg.get('robot', 'panda') or 'panda'
    here = os.path.dirname(os.path.abspath(__file__))
    ns = cfg.get('namespace', '').strip('/')
    common = {
        'namespace': cfg.get('namespace', ''),
        'use_sim_time': 'true' if sim_time else 'false',
        # the clock under the namespace, as `rl-control demo` remaps it: two lockstep demos
        # must not share one /clock
        'clock_topic': f'/{ns}/clock' if ns and sim_time else '',
    }
    sim = {
        **common,
        'robot': robot,
        'fidelity': 'franka',
        'command_type': 'trajectory',
        # the installed config/ next to this launch/ (share/rl_control, or the source tree)
        'goals_file': os.path.join(os.path.dirname(here), 'config', 'reach_goals.yaml'),
        'episodes': cfg.get('episodes', ''),
        'shutdown_on_exit': 'true',  # sim_robot exits after `episodes`: the demo is over
        # the server activates on its own: the episode its ramp-in overlaps restarts without a
        # result, as `rl-control demo` does (its ~/reset_episode once the ramp-in is over)
        'warmup_s': str(DEMO_WARMUP_S),
    }
    serve = {
        **common,
        'robot': robot,  # picks config/policy_server[_fr3].yaml
        'bundle': cfg.get('bundle', ''),
        'command_type': 'trajectory',
        'trigger': 'state' if sim_time else '',
        'backstop_s': '30.0' if sim_time else '',  # a computing lockstep sim is no dead clock
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
            'robot', default_value='panda', choices=robot_choices(),
            description='The simulated robot and the server profile: panda or fr3.'),
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
