"""One robot, described once: what every layer asks about an arm (the robot plug-in seam).

A `RobotProfile` holds the arm's joint names (their count is the robot's degrees of freedom),
the limits the robot enforces, its home pose, the kinematics that place the end effector in
the base frame, its gripper, the simulation models it has per engine, and its own rules: the
velocity band it checks (position dependent on the FR3), the band a motion generator should aim
inside (libfranka's rate limiter keeps a margin), the names its limit reflexes carry, and how
its stack wires joint-state topics. Nothing else in the package hard-codes a joint count or a
robot name: the serving loop, the training envs, the simulated robot and the CLI ask the
profile (`robots.profiles.get_profile`).

Adding a robot is one file that builds a `RobotProfile` (robots/panda.py, robots/fr3.py) and
one registry line in robots/profiles.py (docs/ARCHITECTURE.md, "Add a robot").
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

VelocityLimitFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
"""(lower, upper) joint velocity bounds at joint positions q (vectorized over leading axes)."""
PhysicsFactory = Callable[..., Any]
"""(profile, timestep [s], kp [1/s]) -> a `robots.physics.Physics` tracking a joint reference."""


class Kinematics(Protocol):
    """Where the end effector is, from the arm's joint angles (base frame, metres)."""

    def ee_position(self, q: Sequence[float]) -> tuple[float, float, float]:
        """One configuration (the serving path calls this per joint state)."""

    def ee_positions(self, q: np.ndarray) -> np.ndarray:
        """Vectorized over leading axes: (..., dof) -> (..., 3)."""


@dataclass(frozen=True)
class Gripper:
    """The hand's finger joints, published apart from the arm's (as franka_gripper does)."""

    joint_names: tuple[str, ...]
    open_position: float
    """Per-finger position an open hand reports [m]."""


@dataclass(frozen=True)
class LimitNames:
    """The names the robot gives its limit violations (a reflex carries the first one)."""

    position_limits: str = 'position_limit'
    velocity_limits: str = 'velocity_limit'
    acceleration_limits: str = 'acceleration_limit'
    jerk_limits: str = 'jerk_limit'
    torque_rate_limits: str = 'torque_rate_limit'
    measured_position_limits: str = 'measured_position_limit'
    measured_velocity: str = 'measured_velocity_limit'
    non_finite_command: str = 'non_finite_command'


_LIMIT_ARRAYS = ('q_min', 'q_max', 'qd_max', 'qdd_max', 'qddd_max', 'tau_max', 'dtau_max',
                 'home')


@dataclass(frozen=True, eq=False)
class RobotProfile:
    """Everything the package knows about one arm type; arrays are float64, shape (dof,)."""

    name: str
    joint_names: tuple[str, ...]
    base_frame: str
    q_min: np.ndarray
    q_max: np.ndarray
    qd_max: np.ndarray
    qdd_max: np.ndarray
    qddd_max: np.ndarray
    tau_max: np.ndarray
    dtau_max: np.ndarray
    home: np.ndarray
    kinematics: Kinematics
    gripper: Gripper | None = None
    mjcf: str | None = None
    """A MuJoCo model of the arm: its first `dof` joints in profile order, one velocity actuator
    each, gravity compensated, an `ee` site (robots/assets/panda.xml says why so)."""
    physics: Mapping[str, PhysicsFactory] = field(default_factory=dict)
    """Simulation engine ('mujoco', 'pybullet') -> a factory of the arm tracking a reference
    (robots/physics.py: `mujoco_tracking` runs `mjcf`)."""
    velocity_band: VelocityLimitFn | None = None
    """The velocity bounds the robot checks when they depend on position (None: +-qd_max)."""
    shaping_band: VelocityLimitFn | None = None
    """The bounds a motion generator aims inside (None: the checked ones)."""
    limit_names: LimitNames = LimitNames()
    joint_state_wiring: str = 'broadcaster'
    """How the robot's stack publishes joint states (robots/bringup.py `wiring`)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, 'joint_names', tuple(self.joint_names))
        n = len(self.joint_names)
        if n == 0 or len(set(self.joint_names)) != n:
            raise ValueError(f'{self.name}: joint names must be distinct and not empty')
        for key in _LIMIT_ARRAYS:
            a = np.array(getattr(self, key), dtype=np.float64)
            if a.shape != (n,) or not np.all(np.isfinite(a)):
                raise ValueError(f'{self.name}.{key} must be {n} finite numbers')
            a.setflags(write=False)
            object.__setattr__(self, key, a)
        if not (np.all(self.q_min < self.home) and np.all(self.home < self.q_max)):
            raise ValueError(f'{self.name}: home {self.home} is outside the position range')

    @property
    def dof(self) -> int:
        """Number of arm joints (the gripper's fingers not counted)."""
        return len(self.joint_names)

    def velocity_limits(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) joint velocity bounds the robot enforces at position `q` [rad/s]."""
        if self.velocity_band is None:
            return -self.qd_max.copy(), self.qd_max.copy()
        return self.velocity_band(np.asarray(q, dtype=np.float64))

    def shaping_velocity_limits(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The band a shaper should plan inside at `q` (e.g. libfranka's own limiter's)."""
        if self.shaping_band is None:
            return self.velocity_limits(q)
        return self.shaping_band(np.asarray(q, dtype=np.float64))

    @property
    def finger_joint_names(self) -> tuple[str, ...]:
        """The gripper's joints (none without a gripper)."""
        return self.gripper.joint_names if self.gripper is not None else ()

    @property
    def finger_position(self) -> float:
        """Per-finger position of the open hand [m] (0 without a gripper)."""
        return self.gripper.open_position if self.gripper is not None else 0.0

    @property
    def all_joint_names(self) -> tuple[str, ...]:
        """Arm joints then finger joints: the order the simulators publish."""
        return self.joint_names + self.finger_joint_names

    def ee_position(self, q: Sequence[float]) -> tuple[float, float, float]:
        """End-effector position (base frame) at arm joint angles `q`."""
        return self.kinematics.ee_position(q)

    def ee_frame(self, q: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(end-effector position, hand rotation, 6 x dof Jacobian) at `q`.

        Where the kinematics has them (`kinematics.FrankaKinematics.ee_frame`).
        """
        frame = getattr(self.kinematics, 'ee_frame', None)
        if frame is None:
            raise ValueError(f'the {self.name} kinematics give no end-effector frame and '
                             'Jacobian (ee_frame), which Cartesian actions need')
        return frame(q)
