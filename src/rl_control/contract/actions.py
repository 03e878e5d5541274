"""Action types: what a policy's action in [-1, 1] means, and how it is shaped into motion.

Each type is the contract part of a command interface (robots/command_interfaces.py names it):
- `joint_velocity`: a velocity target per joint, scaled to the robot's velocity limit, reached
  by the Ruckig shaper (`motion` shaping, contract/shaper.py) as a jerk-limited position
  reference; trajectory and velocity interfaces serve it;
- `joint_effort`: a joint torque on top of the robot's gravity compensation, scaled to its
  torque limit and limited in torque and torque rate (`torque` shaping, contract/torque.py);
- `ee_velocity`: an end-effector velocity (3 entries, base frame) that contract/cartesian.py
  turns into a joint velocity target on the measured state; from there on `joint_velocity`'s
  path (scaled limits, the Ruckig shaper), so every interface that serves `joint_velocity`
  serves it (robots/command_interfaces.py `action_types`).
An action may carry one more entry, the gripper's (contract/gripper.py): policy.yaml
`action.gripper`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ActionType:
    """One action type of the contract (policy.yaml `action.type`)."""

    name: str
    control: str
    """The reach env's `control` option that trains it (envs/franka_reach.py)."""
    limit: str
    """The robot profile's limit it is scaled to and clamped at (a `RobotProfile` field)."""
    scale: float
    """|a| = 1 commands this fraction of the limit (the training default)."""
    shaping: str
    """'motion' (the Ruckig shaper plans a position reference) or 'torque' (the torque shaper)."""
    cartesian: bool = False
    """The action is an end-effector velocity (3 entries), not one entry per joint."""
    joint_type: str = ''
    """The joint action type its commands are ('' : itself); the command interfaces that
    serve that one serve this one."""

    @property
    def command_type(self) -> str:
        """The joint action type a command interface must serve for it."""
        return self.joint_type or self.name

    def arm_size(self, joints: int) -> int:
        """Action entries for the arm (the gripper's entry, if any, comes after them)."""
        return 3 if self.cartesian else joints

    def limits(self, profile: Any) -> np.ndarray:
        """The profile's limit of this quantity per joint."""
        return np.asarray(getattr(profile, self.limit), np.float64)


ACTION_TYPES: dict[str, ActionType] = {a.name: a for a in (
    ActionType('joint_velocity', 'velocity', 'qd_max', 0.5, 'motion'),
    ActionType('joint_effort', 'effort', 'tau_max', 0.1, 'torque'),
    ActionType('ee_velocity', 'cartesian', 'qd_max', 0.5, 'motion', cartesian=True,
               joint_type='joint_velocity'),
)}


def action_type(name: str) -> ActionType:
    """The action type called `name`."""
    try:
        return ACTION_TYPES[name]
    except KeyError:
        raise ValueError(f'action.type {name!r} is not one of {list(ACTION_TYPES)}') from None


def action_type_for_control(control: str) -> ActionType:
    """The action type a reach env with `control` trains."""
    for a in ACTION_TYPES.values():
        if a.control == control:
            return a
    raise ValueError(f'control must be one of {[a.control for a in ACTION_TYPES.values()]}, '
                     f'got {control!r}')
