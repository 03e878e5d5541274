"""The robot's own error state, as franka_robot_state_broadcaster publishes it (pure).

franka_ros2's franka_robot_state_broadcaster publishes franka_msgs/msg/FrankaRobotState on
`franka_robot_state_broadcaster/robot_state` (`~/robot_state`, SystemDefaultsQoS: reliable,
volatile; franka_robot_state_broadcaster.cpp, v2.5.0). The fields read here
(franka_msgs/msg/FrankaRobotState.msg, Errors.msg, v2.5.0):
- `uint8 robot_mode`: ROBOT_MODE_OTHER 0, IDLE 1, MOVE 2, GUIDING 3, REFLEX 4, USER_STOPPED 5,
  AUTOMATIC_ERROR_RECOVERY 6 (libfranka's RobotMode);
- `Errors current_errors`, `Errors last_motion_errors`: one bool per libfranka error
  (`joint_motion_generator_acceleration_discontinuity`, `joint_velocity_violation`, ...).
Where franka_msgs is not installed (pip wheels only: it is not on PyPI), sim_robot publishes
the same fields as JSON in a std_msgs/String on the same topic (`robot_mode` as the number,
the error sets as {name: bool}), and the server reads that (`robot_state_type`).

What the server does with it (docs/real_robot.md "Error recovery"): a robot that is not in
IDLE / MOVE / GUIDING (a reflex, the user stop, a recovery in progress) is a reason not to
move: the loop brakes (the robot ignores commands anyway) and waits. When the robot is back
(IDLE or MOVE), the loop re-anchors on the next measured state before it serves again, and
the ramp-in starts over: nothing planned before the error is resumed.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

ROBOT_MODES = ('other', 'idle', 'move', 'guiding', 'reflex', 'user_stopped',
               'automatic_error_recovery')
"""FrankaRobotState ROBOT_MODE_* by value (franka_msgs v2.5.0)."""
SERVING_MODES = {1, 2, 3}
ROBOT_ERROR = 'robot_error'


def mode_name(mode: int) -> str:
    """The FrankaRobotState ROBOT_MODE_ name of `mode` (lower case)."""
    return ROBOT_MODES[mode] if 0 <= mode < len(ROBOT_MODES) else f'unknown({mode})'


def active_errors(errors: Mapping[str, Any] | Iterable[str]) -> list[str]:
    """The names of the errors that are set ({name: bool} or an iterable of names)."""
    if isinstance(errors, Mapping):
        return sorted(k for k, v in errors.items() if v)
    return sorted(errors)


class RobotErrorWatch:
    """Follows the robot's mode: `fault` is why not to move (None: fine)."""

    def __init__(self) -> None:
        self.mode: int | None = None
        self.fault: str | None = None
        self.errors: list[str] = []
        self.faults = 0
        self.recoveries = 0

    def update(self, mode: int, errors: Iterable[str]) -> bool:
        """A robot state arrived; True when it ends a fault (the robot recovered)."""
        self.mode, errors = int(mode), list(errors)
        if mode not in SERVING_MODES and mode != 0:
            if self.fault is None:
                self.faults += 1
            self.errors = errors or self.errors
            self.fault = f'{mode_name(mode)}' + (f': {", ".join(self.errors)}'
                                                 if self.errors else '')
            return False
        if self.fault is not None and mode in (1, 2):
            self.fault, self.errors = None, []
            self.recoveries += 1
            return True
        return False

    def values(self) -> dict[str, Any]:
        """For /diagnostics."""
        return {'robot_mode': 'none received' if self.mode is None else mode_name(self.mode),
                'robot_error': self.fault or '', 'robot_faults': self.faults,
                'robot_recoveries': self.recoveries}
