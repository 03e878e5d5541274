"""A Franka's collision reflex: external torques and forces above their thresholds stop the arm.

libfranka's `Robot::setCollisionBehavior(lower_torque_thresholds, upper_torque_thresholds,
lower_force_thresholds, upper_force_thresholds)` (include/franka/robot.h): "If a torque or force
exceeds the upper threshold, a collision is detected and the robot stops"; above the lower one
the state only flags a contact (`joint_contact`, `cartesian_contact`). The reflex is the
`joint_reflex` or `cartesian_reflex` error (franka::Errors), handled like any other reflex
(robots/franka.py: the arm stops, commands are ignored until error recovery).

Thresholds (`DEFAULT`): franka_ros2's franka_example_controllers
`default_robot_behavior_utils.hpp`, the collision behaviour its example controllers set (the
nominal and acceleration phases alike): lower torques 25, 25, 22, 20, 19, 17, 14 Nm, upper
35, 35, 32, 30, 29, 27, 24 Nm; lower forces 30, 30, 30 N (x, y, z; then 25 Nm about each axis),
upper 40, 40, 40 N (then 35 Nm). Forces here are the translational part only.

What is measured is the caller's: the simulated cell reports the contact forces the simulator
applies (robots/hand_cell.py `external_wrench`), as libfranka reports its estimates
`tau_ext_hat_filtered` and `O_F_ext_hat_K`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

JOINT_REFLEX = 'joint_reflex'
CARTESIAN_REFLEX = 'cartesian_reflex'


@dataclass(frozen=True)
class CollisionBehavior:
    """setCollisionBehavior's thresholds (module docstring for the defaults' source)."""

    lower_torque: np.ndarray = field(default_factory=lambda: np.array(
        [25.0, 25.0, 22.0, 20.0, 19.0, 17.0, 14.0]))
    upper_torque: np.ndarray = field(default_factory=lambda: np.array(
        [35.0, 35.0, 32.0, 30.0, 29.0, 27.0, 24.0]))
    lower_force: np.ndarray = field(default_factory=lambda: np.array([30.0, 30.0, 30.0]))
    upper_force: np.ndarray = field(default_factory=lambda: np.array([40.0, 40.0, 40.0]))

    def reflex(self, tau_ext: np.ndarray, f_ext: np.ndarray) -> str | None:
        """The reflex these external torques [Nm] and force [N] raise (None: none)."""
        if np.any(np.abs(tau_ext) > self.upper_torque):
            return JOINT_REFLEX
        if np.any(np.abs(f_ext) > self.upper_force):
            return CARTESIAN_REFLEX
        return None

    def contact(self, tau_ext: np.ndarray, f_ext: np.ndarray) -> bool:
        """Above a lower threshold: a contact, flagged in the robot state (no reflex)."""
        return bool(np.any(np.abs(tau_ext) > self.lower_torque)
                    or np.any(np.abs(f_ext) > self.lower_force))


DEFAULT = CollisionBehavior()
