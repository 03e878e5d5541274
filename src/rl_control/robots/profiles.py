"""The robot registry: every robot the package knows, by name (robots/robot.py describes one).

Everything that takes a robot name (a node's `robot` parameter, `--robot` on the command line,
a bundle's `robot`) resolves it here, and every list of valid names is `ROBOT_NAMES`, a live
view of the registry: a robot registered at run time is valid everywhere at once.
"""
from __future__ import annotations

from collections.abc import Iterable

from rl_control.robots.fr3 import FR3
from rl_control.robots.panda import PANDA
from rl_control.robots.robot import RobotProfile

PROFILES: dict[str, RobotProfile] = {}
ROBOT_NAMES = PROFILES.keys()


def register_robot(profile: RobotProfile) -> RobotProfile:
    """Make `profile` known by its name (a second robot of the same name is refused)."""
    if profile.name in PROFILES and PROFILES[profile.name] is not profile:
        raise ValueError(f'a robot called {profile.name!r} is registered already')
    PROFILES[profile.name] = profile
    return profile


def robot_with_joints(names: Iterable[str]) -> RobotProfile | None:
    """The first registered robot whose arm joints are all among `names` (None: none is)."""
    have = set(names)
    return next((p for p in PROFILES.values() if set(p.joint_names) <= have), None)


def get_profile(name: str) -> RobotProfile:
    """The profile called `name` (case-insensitive)."""
    try:
        return PROFILES[name.lower()]
    except KeyError:
        raise ValueError(f'unknown robot profile {name!r}; valid: {sorted(PROFILES)}') from None


register_robot(PANDA)
register_robot(FR3)
