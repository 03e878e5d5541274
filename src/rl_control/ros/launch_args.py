"""Launch-argument parsing shared by the launch files in `launch/` (no ROS, no launch imports).

Launch arguments are strings; these turn them into typed node parameters the same way in every
launch file, and refuse a typo instead of guessing (a mistyped `autostart:=ture` must not start
an arm). The launch files import this from the installed package, as ROS 2 launch files do
with their package's helpers.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import yaml

from rl_control.robots.profiles import ROBOT_NAMES

# Converter name or callable for each override: 'str_list' accepts `a,b` or `[a, b]`.
Converter = Callable[[str], Any] | str


def robot_choices() -> list[str]:
    """The `robot` launch argument's choices: every registered robot profile."""
    return list(ROBOT_NAMES)


def truthy(text: str) -> bool:
    """Parse a launch argument as a boolean, rejecting typos instead of guessing."""
    value = text.strip().lower()
    if value in ('true', '1', 'yes', 'on'):
        return True
    if value in ('false', '0', 'no', 'off', ''):
        return False
    raise ValueError(f'expected true/false, got {text!r}')


def str_list(text: str) -> list[str]:
    """Accept `a,b,c` or a YAML list `[a, b, c]`: shells make the first easier to type."""
    text = text.strip()
    items = (yaml.safe_load(text) or []) if text.startswith('[') else text.split(',')
    return [str(item).strip() for item in items if str(item).strip()]


def set_overrides(cfg: Mapping[str, str],
                  table: Mapping[str, tuple[str, Converter]]) -> dict[str, Any]:
    """Typed parameters for the launch arguments in `table` that were set ('' = not set).

    `table` maps launch argument -> (node parameter, converter), so a params file stays the
    base layer and only what the user typed on the command line is layered on top.
    """
    out: dict[str, Any] = {}
    for arg, (param, kind) in table.items():
        text = cfg.get(arg, '')
        if text == '':
            continue
        out[param] = str_list(text) if kind == 'str_list' else kind(text)
    return out
