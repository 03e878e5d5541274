"""The Franka Emika Panda (FER): one robot description (robots/robot.py).

Limits, nominal (the robot's own "necessary conditions": Franka's robot_specifications /
control_parameters docs): libfranka 0.9.2 `include/franka/rate_limiting.h` (kMaxJointJerk
7500/3750/5000/6250/7500/10000/10000, kMaxJointAcceleration 15/7.5/10/12.5/15/20/20,
kMaxJointVelocity 2.175 (joints 1-4), 2.61 (5-7), kMaxTorqueRate 1000); position and torque
limits as franka_ros2 `franka_description/robots/panda_arm.xacro` and Franka's "Limits for
Panda" table (87 / 12 Nm).

The band a shaper aims inside is the one libfranka 0.9.2's own limiter targets: kMaxJointVelocity
= qd_max - kLimitEps - kTolNumberPacketsLost * kDeltaT * kMaxJointAcceleration (rate_limiting.h).
"""
from __future__ import annotations

from importlib import resources

import numpy as np

from rl_control.robots.franka_limits import K_DELTA_T, K_LIMIT_EPS, LIBFRANKA
from rl_control.robots.kinematics import FRANKA
from rl_control.robots.physics import bullet_tracking, mujoco_tracking
from rl_control.robots.robot import Gripper, RobotProfile

K_TOL_NUMBER_PACKETS_LOST = 3.0
"""libfranka 0.9.2 `kTolNumberPacketsLost` (0.15.0 sets it to 0 for the FR3)."""

HOME = (0.0, 0.41, 0.0, -1.85, 0.0, 2.26, 0.79)
"""The project's neutral configuration (panda-gym's), inside both Franka arms' ranges."""

QD_MAX = np.array([2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61])
QDD_MAX = np.array([15.0, 7.5, 10.0, 12.5, 15.0, 20.0, 20.0])


def model_path() -> str:
    """The packaged MJCF (assets/panda.xml: velocity actuators, gravity compensated)."""
    return str(resources.files('rl_control.robots') / 'assets' / 'panda.xml')


def libfranka_band(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """+-kMaxJointVelocity of libfranka 0.9.2 (see the module docstring), any `q`."""
    margin = K_LIMIT_EPS + K_TOL_NUMBER_PACKETS_LOST * K_DELTA_T * (QDD_MAX - K_LIMIT_EPS)
    return -(QD_MAX - margin), QD_MAX - margin


PANDA = RobotProfile(
    name='panda',
    joint_names=tuple(f'panda_joint{i}' for i in range(1, 8)),
    base_frame='panda_link0',
    q_min=np.array([-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973]),
    q_max=np.array([2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973]),
    qd_max=QD_MAX,
    qdd_max=QDD_MAX,
    qddd_max=np.array([7500.0, 3750.0, 5000.0, 6250.0, 7500.0, 10000.0, 10000.0]),
    tau_max=np.array([87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0]),
    dtau_max=np.full(7, 1000.0),
    home=np.array(HOME),
    kinematics=FRANKA,
    # franka_gripper gripper_action_server.cpp publishGripperState() reports width / 2 for each
    # finger joint (max width 0.08 m), on the gripper node's own `~/joint_states`.
    gripper=Gripper(('panda_finger_joint1', 'panda_finger_joint2'), 0.04),
    mjcf=model_path(),
    physics={'mujoco': mujoco_tracking, 'pybullet': bullet_tracking},
    shaping_band=libfranka_band,
    limit_names=LIBFRANKA,
)
