"""Where the installed package's data is: the shipped bundle and the parameter files."""
from __future__ import annotations

import os
from pathlib import Path
import sys

_SOURCE = Path(__file__).resolve().parents[3]  # the source tree's root (src/rl_control/ros)


def share_dirs() -> list[Path]:
    """share/rl_control candidates: the ament index (a colcon install), the venv, the source."""
    out = []
    try:  # a colcon install: share/ found through the ament index
        from ament_index_python.packages import get_package_share_directory
        out.append(Path(get_package_share_directory('rl_control')))
    except Exception:  # noqa: BLE001 - no ament index without a ROS distro
        pass
    out += [Path(sys.prefix) / 'share' / 'rl_control', _SOURCE]
    return out


def default_bundle(name: str = 'panda_reach_sac') -> str:
    """The shipped bundle `models/<name>` of the first share directory that has it."""
    for share in share_dirs():
        path = share / 'models' / name
        if (path / 'policy.yaml').is_file():
            return str(path)
    return str(_SOURCE / 'models' / name)


def config_file(name: str) -> str | None:
    """An installed (share/rl_control/config) or source-tree (config/) parameter file."""
    for share in share_dirs():
        path = share / 'config' / name
        if path.is_file():
            return os.fspath(path)
    return None


def server_params_file(robot: str) -> str | None:
    """The policy_server parameter file of a robot profile (config/policy_server[_ROBOT].yaml).

    The Panda's is the package default `policy_server.yaml`; any other profile has its own.
    """
    return config_file('policy_server.yaml' if robot == 'panda'
                       else f'policy_server_{robot}.yaml')
