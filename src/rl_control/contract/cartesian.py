"""Cartesian actions: an end-effector velocity, turned into a joint velocity target.

The shaper then plans toward that target: the same command path as a joint action from there on.

Why: a pick-and-place policy that must coordinate seven joints to move the hand in a straight
line with its fingers pointing down spends most of its training learning the arm's kinematics;
panda-gym's arm is driven by an end-effector displacement for that reason (its
`ee_displacement_to_target_arm_angles`, by inverse kinematics). Here the map is a resolved-rate
law on the robot's own kinematics, evaluated on the measured joint state at each policy tick,
in training and in serving alike:

    xdot = [v, k_o * e_R],  qd = J^+ xdot + (I - J^+ J) k_p (q_posture - q)

with v the commanded end-effector velocity (base frame), e_R the orientation error of the hand
(outside a small dead band) from `HAND_DOWN` (pointing down, fingers opening along the base y
axis, as at the Panda's home pose), J the 6 x 7 geometric Jacobian, J^+ its damped
least-squares inverse J^T (J J^T + lambda^2 I)^-1 (Nakamura & Hanafusa 1986; Wampler 1986),
and an optional null-space pull toward the posture (the home pose). A zero command with the
hand inside the orientation band is exactly zero joint velocity: "stay" is a point of the
action box. The result is clamped at the action's joint limits like any joint velocity target.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from rl_control.contract import sections

HAND_DOWN = np.diag([1.0, -1.0, -1.0])
"""The hand's rotation (columns: its axes in the base frame) the law holds: z down, y along -y."""


@dataclass(frozen=True)
class CartesianConfig:
    """The resolved-rate law's settings (policy.yaml `action.cartesian`)."""

    ee_speed: float = 0.3
    """End-effector speed at |a| = 1 per axis [m/s]."""
    orientation_gain: float = 4.0
    """k_o [1/s]: how fast an orientation error is corrected."""
    orientation_band: float = 0.03
    """Orientation errors below this [rad] are left alone (and larger ones shrunk by it), so a
    zero velocity command is a zero joint command: the arm can come to rest."""
    posture_gain: float = 0.0
    """k_p [1/s]: the null-space pull toward the posture (0: off; it moves a resting arm)."""
    damping: float = 0.05
    """lambda of the damped least squares (m, rad)."""

    def __post_init__(self) -> None:
        for key, value in asdict(self).items():
            if not isinstance(value, int | float) or not np.isfinite(value) or value < 0:
                raise ValueError(f'action.cartesian.{key} must be a finite number >= 0, got '
                                 f'{value!r}')
        if self.ee_speed <= 0:
            raise ValueError(f'action.cartesian.ee_speed must be > 0, got {self.ee_speed}')

    @classmethod
    def from_yaml(cls, d: Mapping[str, Any] | None) -> CartesianConfig:
        """Defaults overridden by `d`; unknown keys are an error naming them."""
        return cls(**sections.floats_from_dict(cls, d, 'action.cartesian'))

    def to_yaml(self) -> dict[str, float]:
        """Plain floats for policy.yaml."""
        return {k: float(v) for k, v in asdict(self).items()}


def orientation_error(rot: np.ndarray, target: np.ndarray = HAND_DOWN) -> np.ndarray:
    """The rotation vector (small-angle, base frame) that turns `rot` toward `target`."""
    return 0.5 * (np.cross(rot[:, 0], target[:, 0]) + np.cross(rot[:, 1], target[:, 1])
                  + np.cross(rot[:, 2], target[:, 2]))


def joint_velocity(profile: Any, q: np.ndarray, v: np.ndarray, cfg: CartesianConfig,
                   posture: np.ndarray | None = None) -> np.ndarray:
    """The joint velocity [rad/s] (profile joint order) that moves the end effector at `v`."""
    q = np.asarray(q, np.float64)
    _, rot, jac = profile.ee_frame(q)
    err = orientation_error(rot)
    size = float(np.linalg.norm(err))
    err = err * max(0.0, 1.0 - cfg.orientation_band / size) if size > 0 else err
    xdot = np.r_[np.asarray(v, np.float64), cfg.orientation_gain * err]
    jjt = jac @ jac.T + cfg.damping ** 2 * np.eye(6)
    qd = jac.T @ np.linalg.solve(jjt, xdot)
    if cfg.posture_gain:
        pull = cfg.posture_gain * ((profile.home if posture is None else posture) - q)
        qd += pull - jac.T @ np.linalg.solve(jjt, jac @ pull)
    return qd
