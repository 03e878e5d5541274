"""`rl-control`: train, evaluate, and bring up the ROS node graph without `ros2 launch`.

Errors a person can fix (a bad config, a broken bundle, ROS not installed) are printed as one
line on stderr with exit status 2 (usage/config) or 1 (runtime), never as a traceback.
"""
from __future__ import annotations

import importlib
import inspect
import sys

from rl_control.cli import bundles, train
from rl_control.cli.common import fail
from rl_control.cli.parser import ROS_COMMANDS, build_parser

__all__ = ['ROS_COMMANDS', 'build_parser', 'main']

_COMMANDS = {'train': train.cmd_train, 'sweep': train.cmd_sweep, 'eval': train.cmd_eval,
             'bench-reach': bundles.cmd_bench_reach, 'bench-pick': bundles.cmd_bench_pick,
             'gap': bundles.cmd_gap,
             'export': bundles.cmd_export, 'import-sb3': bundles.cmd_import_sb3}
_WITH_ARGV = ('train', 'sweep', 'import-sb3')  # they record the command line


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `rl-control` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ROS_COMMANDS:
        # Everything after the command belongs to the node (including --ros-args and --help);
        # argparse's REMAINDER cannot pass leading options through a subparser.
        return _ros(argv[0], argv[1:])
    args = build_parser().parse_args(argv)
    if args.command in _COMMANDS:
        run = _COMMANDS[args.command]
        return run(args, argv) if args.command in _WITH_ARGV else run(args)
    return _ros(args.command, args.args)


def _ros(command: str, node_args: list[str]) -> int:
    module_name = ROS_COMMANDS[command][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return fail(f'`{command}` is not available in this installation ({module_name} '
                         'is missing)', 1)
        if exc.name and (exc.name.startswith('rclpy') or exc.name.endswith('_msgs')
                         or exc.name.startswith('rmw')):
            return fail(f'`{command}` needs ROS 2 Python packages ({exc.name} not found): '
                         "source a ROS 2 distro or `pip install -e '.[ros]'`", 1)
        raise
    fn = module.main
    if inspect.signature(fn).parameters:
        status = fn(node_args)
    else:  # a ros2-style main() that reads sys.argv itself
        sys.argv = [f'rl-control {command}', *node_args]
        status = fn()
    return int(status or 0)

