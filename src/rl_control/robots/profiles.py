"""Per-robot constants of the Franka arms (Panda = FER, FR3) and their velocity limits.

Why a profile object: the checker, the controllers and the simulated arm must all agree on one
set of numbers, and each number must be traceable to a source. All arrays are float64, shape (7,),
and NOMINAL: they are the limits the robot itself enforces (Franka's "necessary conditions",
robot_specifications / control_parameters docs). libfranka keeps its own rate limiter
`kLimitEps` inside them (rate_limiting.h: `kMaxJointJerk = 7500.0 - kLimitEps`, ...); that margin
is the numerical headroom between libfranka's limiter and the robot's check, so the checker in
`franka_limits` compares against the nominal values and a stream that libfranka's own
`limitRate` produced always passes.

Sources (git mirrors, tag named):
- Panda: libfranka 0.9.2 `include/franka/rate_limiting.h` (kMaxJointJerk 7500/3750/5000/6250/
  7500/10000/10000, kMaxJointAcceleration 15/7.5/10/12.5/15/20/20, kMaxJointVelocity 2.175 (1-4),
  2.61 (5-7), kMaxTorqueRate 1000); position and torque limits as franka_ros2
  `franka_description/robots/panda_arm.xacro` and Franka's "Limits for Panda" table (87 / 12 Nm).
- FR3: libfranka 0.15.0 `include/franka/rate_limiting.h` (kMaxJointJerk 5000, kMaxJointAcceleration
  10, kMaxTorqueRate 1000, computeUpper/LowerLimitsJointVelocity), libfranka 0.15.0
  `test/fr3.urdf` (position limits, velocity 2.62/2.62/2.62/2.62/5.26/4.18/5.26, effort 87/12).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

K_DELTA_T = 1e-3
"""libfranka `kDeltaT` (rate_limiting.h, 0.9.2 and 0.15.0): the FCI control period [s]."""

K_LIMIT_EPS = 1e-3
"""libfranka `kLimitEps` (rate_limiting.h, 0.9.2 and 0.15.0): libfranka's limiter stays this far
inside every derivative limit; see the module docstring for why the checker does not."""

K_TOL_NUMBER_PACKETS_LOST_PANDA = 3.0
"""libfranka 0.9.2 `kTolNumberPacketsLost`: the Panda's libfranka limiter also keeps
3 * kDeltaT * kMaxJointAcceleration below the velocity limit (0.15.0 sets it to 0 for the FR3)."""

HOME = np.array([0.0, 0.41, 0.0, -1.85, 0.0, 2.26, 0.79])
"""The project's neutral configuration (panda-gym's), inside both arms' position ranges."""

VelocityLimitFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def fr3_libfranka_upper_velocity(q: np.ndarray) -> np.ndarray:
    """FR3 upper velocity bound as libfranka 0.15.0 computeUpperLimitsJointVelocity (verbatim).

    Includes `kJointVelocityLimitsTolerance` = kLimitEps (kTolNumberPacketsLost = 0 for the FR3),
    i.e. this is the bound libfranka's own limiter targets, kLimitEps inside the robot's.
    """
    q = np.asarray(q, dtype=np.float64)
    cap = np.array([2.62, 2.62, 2.62, 2.62, 5.26, 4.18, 5.26])
    off = np.array([-0.30, -0.20, -0.20, -0.30, -0.35, -0.35, -0.35])
    gain = np.array([12.0, 5.17, 7.00, 8.00, 34.0, 11.0, 34.0])
    ref = np.array([2.75010, 1.79180, 2.90650, -0.1458, 2.81010, 4.52050, 3.01960])
    nominal = np.minimum(cap, np.maximum(0.0, off + np.sqrt(np.maximum(0.0, gain * (ref - q)))))
    return nominal - K_LIMIT_EPS


def fr3_libfranka_lower_velocity(q: np.ndarray) -> np.ndarray:
    """FR3 lower velocity bound as libfranka 0.15.0 computeLowerLimitsJointVelocity (verbatim)."""
    q = np.asarray(q, dtype=np.float64)
    cap = np.array([2.62, 2.62, 2.62, 2.62, 5.26, 4.18, 5.26])
    off = np.array([0.30, 0.20, 0.20, 0.30, 0.35, 0.35, 0.35])
    gain = np.array([12.0, 5.17, 7.00, 8.00, 34.0, 11.0, 34.0])
    ref = np.array([2.750100, 1.791800, 2.906500, 3.048100, 2.810100, -0.54092, 3.019600])
    nominal = np.maximum(-cap, np.minimum(0.0, off - np.sqrt(np.maximum(0.0, gain * (ref + q)))))
    return nominal + K_LIMIT_EPS


def _fr3_nominal_velocity(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FR3 position-dependent velocity bounds the robot checks.

    libfranka's formula (rate_limiting.h, 0.15.0) without its kLimitEps tolerance, i.e. the docs'
    "Limits for Franka Research 3" formula that libfranka transcribes.
    """
    lower = fr3_libfranka_lower_velocity(q) - K_LIMIT_EPS
    return lower, fr3_libfranka_upper_velocity(q) + K_LIMIT_EPS


def _arr(values: list[float]) -> np.ndarray:
    a = np.array(values, dtype=np.float64)
    a.setflags(write=False)
    return a


@dataclass(frozen=True)
class RobotProfile:
    """Everything the Franka model needs to know about one arm type (see module sources)."""

    name: str
    joint_names: tuple[str, ...]
    finger_joint_names: tuple[str, ...]
    base_frame: str
    q_min: np.ndarray
    q_max: np.ndarray
    qd_max: np.ndarray
    qdd_max: np.ndarray
    qddd_max: np.ndarray
    tau_max: np.ndarray
    dtau_max: np.ndarray
    home: np.ndarray
    finger_position: float = 0.04
    """Per-finger position franka_ros2 publishes for an open hand: franka_gripper
    gripper_action_server.cpp publishGripperState() reports width / 2 for each finger joint
    (max width 0.08 m), on the gripper node's own `~/joint_states`, not the arm broadcaster's."""
    position_dependent_velocity: bool = False
    _velocity_fn: VelocityLimitFn | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        for key in ('q_min', 'q_max', 'qd_max', 'qdd_max', 'qddd_max', 'tau_max', 'dtau_max',
                    'home'):
            if getattr(self, key).shape != (7,):
                raise ValueError(f'{self.name}.{key} must have shape (7,)')
        if len(self.joint_names) != 7 or len(self.finger_joint_names) != 2:
            raise ValueError(f'{self.name}: 7 arm and 2 finger joint names expected')
        if not (np.all(self.q_min < self.home) and np.all(self.home < self.q_max)):
            raise ValueError(f'{self.name}: home {self.home} is outside the position range')

    def velocity_limits(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) joint velocity bounds the robot enforces at position `q` [rad/s].

        Panda: +-qd_max, constant. FR3: position dependent (libfranka 0.15.0
        computeUpper/LowerLimitsJointVelocity with its kLimitEps tolerance removed), so the
        allowed speed shrinks to zero at the position limits.
        """
        if self._velocity_fn is None:
            return -self.qd_max.copy(), self.qd_max.copy()
        return self._velocity_fn(np.asarray(q, dtype=np.float64))

    def libfranka_velocity_limits(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The band libfranka's own limiter targets (what a shaper should aim inside).

        FR3: computeLower/UpperLimitsJointVelocity verbatim (0.15.0). Panda: +-kMaxJointVelocity
        of 0.9.2 = qd_max - kLimitEps - kTolNumberPacketsLost * kDeltaT * kMaxJointAcceleration.
        """
        if self.position_dependent_velocity:
            q = np.asarray(q, dtype=np.float64)
            return fr3_libfranka_lower_velocity(q), fr3_libfranka_upper_velocity(q)
        margin = K_LIMIT_EPS + K_TOL_NUMBER_PACKETS_LOST_PANDA * K_DELTA_T * (
            self.qdd_max - K_LIMIT_EPS)
        return -(self.qd_max - margin), self.qd_max - margin

    @property
    def all_joint_names(self) -> tuple[str, ...]:
        """Arm joints then finger joints."""
        return self.joint_names + self.finger_joint_names


PANDA = RobotProfile(
    name='panda',
    joint_names=tuple(f'panda_joint{i}' for i in range(1, 8)),
    finger_joint_names=('panda_finger_joint1', 'panda_finger_joint2'),
    base_frame='panda_link0',
    q_min=_arr([-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973]),
    q_max=_arr([2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973]),
    qd_max=_arr([2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61]),
    qdd_max=_arr([15.0, 7.5, 10.0, 12.5, 15.0, 20.0, 20.0]),
    qddd_max=_arr([7500.0, 3750.0, 5000.0, 6250.0, 7500.0, 10000.0, 10000.0]),
    tau_max=_arr([87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0]),
    dtau_max=_arr([1000.0] * 7),
    home=_arr(list(HOME)),
)

FR3 = RobotProfile(
    name='fr3',
    joint_names=tuple(f'fr3_joint{i}' for i in range(1, 8)),
    finger_joint_names=('fr3_finger_joint1', 'fr3_finger_joint2'),
    base_frame='fr3_link0',
    q_min=_arr([-2.7437, -1.7837, -2.9007, -3.0421, -2.8065, 0.5445, -3.0159]),
    q_max=_arr([2.7437, 1.7837, 2.9007, -0.1518, 2.8065, 4.5169, 3.0159]),
    qd_max=_arr([2.62, 2.62, 2.62, 2.62, 5.26, 4.18, 5.26]),
    qdd_max=_arr([10.0] * 7),
    qddd_max=_arr([5000.0] * 7),
    tau_max=_arr([87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0]),
    dtau_max=_arr([1000.0] * 7),
    home=_arr(list(HOME)),
    position_dependent_velocity=True,
    _velocity_fn=_fr3_nominal_velocity,
)

PROFILES: dict[str, RobotProfile] = {p.name: p for p in (PANDA, FR3)}


def get_profile(name: str) -> RobotProfile:
    """The profile called `name` ('panda' or 'fr3', case-insensitive)."""
    try:
        return PROFILES[name.lower()]
    except KeyError:
        raise ValueError(f'unknown robot profile {name!r}; valid: {sorted(PROFILES)}') from None
