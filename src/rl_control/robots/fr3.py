"""The Franka Research 3: one robot description (robots/robot.py).

Limits: libfranka 0.15.0 `include/franka/rate_limiting.h` (kMaxJointJerk 5000,
kMaxJointAcceleration 10, kMaxTorqueRate 1000, computeUpper/LowerLimitsJointVelocity) and
libfranka 0.15.0 `test/fr3.urdf` (position limits, velocity 2.62/2.62/2.62/2.62/5.26/4.18/5.26,
effort 87/12). The FR3's velocity bound depends on the joint position and shrinks to zero at
the position limits: the robot checks the docs' "Limits for Franka Research 3" formula, which
libfranka transcribes with its kLimitEps tolerance (its limiter's target, and this profile's
shaping band). The kinematics, the home pose and the simulation models are the Panda's
(franka_description's fr3 and panda_arm chains share Franka's DH table); franka_bringup wires
its joint states (robots/bringup.py).
"""
from __future__ import annotations

import numpy as np

from rl_control.robots.franka_limits import K_LIMIT_EPS, LIBFRANKA
from rl_control.robots.kinematics import FRANKA
from rl_control.robots.panda import HOME, PANDA
from rl_control.robots.robot import Gripper, RobotProfile

_CAP = np.array([2.62, 2.62, 2.62, 2.62, 5.26, 4.18, 5.26])
_GAIN = np.array([12.0, 5.17, 7.00, 8.00, 34.0, 11.0, 34.0])


def libfranka_upper_velocity(q: np.ndarray) -> np.ndarray:
    """Upper velocity bound as libfranka 0.15.0 computeUpperLimitsJointVelocity (verbatim).

    Includes `kJointVelocityLimitsTolerance` = kLimitEps (kTolNumberPacketsLost = 0 for the FR3),
    i.e. this is the bound libfranka's own limiter targets, kLimitEps inside the robot's.
    """
    q = np.asarray(q, dtype=np.float64)
    off = np.array([-0.30, -0.20, -0.20, -0.30, -0.35, -0.35, -0.35])
    ref = np.array([2.75010, 1.79180, 2.90650, -0.1458, 2.81010, 4.52050, 3.01960])
    nominal = np.minimum(_CAP, np.maximum(0.0, off + np.sqrt(np.maximum(0.0, _GAIN * (ref - q)))))
    return nominal - K_LIMIT_EPS


def libfranka_lower_velocity(q: np.ndarray) -> np.ndarray:
    """Lower velocity bound as libfranka 0.15.0 computeLowerLimitsJointVelocity (verbatim)."""
    q = np.asarray(q, dtype=np.float64)
    off = np.array([0.30, 0.20, 0.20, 0.30, 0.35, 0.35, 0.35])
    ref = np.array([2.750100, 1.791800, 2.906500, 3.048100, 2.810100, -0.54092, 3.019600])
    nominal = np.maximum(-_CAP, np.minimum(0.0, off - np.sqrt(np.maximum(0.0, _GAIN * (ref + q)))))
    return nominal + K_LIMIT_EPS


def libfranka_band(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The band libfranka's limiter targets: both functions above."""
    return libfranka_lower_velocity(q), libfranka_upper_velocity(q)


def checked_band(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The bounds the robot checks: libfranka's formula without its kLimitEps tolerance."""
    return libfranka_lower_velocity(q) - K_LIMIT_EPS, libfranka_upper_velocity(q) + K_LIMIT_EPS


FR3 = RobotProfile(
    name='fr3',
    joint_names=tuple(f'fr3_joint{i}' for i in range(1, 8)),
    base_frame='fr3_link0',
    q_min=np.array([-2.7437, -1.7837, -2.9007, -3.0421, -2.8065, 0.5445, -3.0159]),
    q_max=np.array([2.7437, 1.7837, 2.9007, -0.1518, 2.8065, 4.5169, 3.0159]),
    qd_max=_CAP.copy(),
    qdd_max=np.full(7, 10.0),
    qddd_max=np.full(7, 5000.0),
    tau_max=np.array([87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0]),
    dtau_max=np.full(7, 1000.0),
    home=np.array(HOME),
    kinematics=FRANKA,
    gripper=Gripper(('fr3_finger_joint1', 'fr3_finger_joint2'), 0.04),
    mjcf=PANDA.mjcf,
    physics=PANDA.physics,
    velocity_band=checked_band,
    shaping_band=libfranka_band,
    limit_names=LIBFRANKA,
    joint_state_wiring='franka_bringup',
)
