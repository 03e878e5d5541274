"""What the simulated arm's measured state comes from: exact tracking, or MuJoCo.

The arm model (franka.FrankaArm) feeds the physics either a joint reference (position /
velocity interface, and always while braking) or a joint torque (effort interface), once per
1 ms tick, then reads the measured state. Torques are on top of the robot's own gravity
compensation (libfranka 0.15.0 control_types.h: Torques are "joint-level torque commands without
gravity and friction"), so zero torque lets the arm float and coast, which both backends model
(MuJoCo via the model's gravcomp bodies).
"""
from __future__ import annotations

from typing import Any, Protocol

import numpy as np


class Physics(Protocol):
    """The minimal physics interface the arm drives."""

    def reset(self, q: np.ndarray) -> None:
        """Put the arm at rest at `q`."""

    def set_reference(self, q: np.ndarray, qd: np.ndarray, qdd: np.ndarray) -> None:
        """Track this joint reference during the next step (position-controlled arm)."""

    def apply_torque(self, tau: np.ndarray) -> None:
        """Apply this joint torque during the next step (torque-controlled arm)."""

    def step(self, dt: float) -> None:
        """Advance by `dt` seconds."""

    def state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Measured (q, qd, tau), copies, shape (7,) each."""


class ExactTracking:
    """Measured = reference, instantly (fast tests); torques drive decoupled unit inertias.

    Why a toy torque model: with exact tracking there is no dynamics to speak of, yet effort mode
    needs a measured state; q'' = tau / inertia per joint (gravity compensated) is the simplest
    model in which zero torque coasts, as the real arm does.
    """

    def __init__(self, inertia: np.ndarray | float = 1.0) -> None:
        self.inertia = np.broadcast_to(np.asarray(inertia, dtype=np.float64), (7,)).copy()
        self.reset(np.zeros(7))

    def reset(self, q: np.ndarray) -> None:
        """Rest at `q`."""
        self.q = np.array(q, dtype=np.float64)
        self.qd = np.zeros(7)
        self.tau = np.zeros(7)
        self._ref: tuple[np.ndarray, np.ndarray] | None = None

    def set_reference(self, q: np.ndarray, qd: np.ndarray, qdd: np.ndarray) -> None:
        """The next step lands exactly on (q, qd)."""
        self._ref = (np.array(q, dtype=np.float64), np.array(qd, dtype=np.float64))
        self.tau = np.zeros(7)

    def apply_torque(self, tau: np.ndarray) -> None:
        """The next step integrates q'' = tau / inertia (semi-implicit Euler)."""
        self._ref = None
        self.tau = np.array(tau, dtype=np.float64)

    def step(self, dt: float) -> None:
        """Advance by `dt`."""
        if self._ref is not None:
            self.q, self.qd = self._ref[0].copy(), self._ref[1].copy()
        else:
            self.qd = self.qd + self.tau / self.inertia * dt
            self.q = self.q + self.qd * dt

    def state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(q, qd, tau)."""
        return self.q.copy(), self.qd.copy(), self.tau.copy()


def mujoco_physics(profile: Any, kp: float = 50.0) -> MujocoTracking:
    """MuJoCo tracking with the profile's joint ranges and velocity limits."""
    return MujocoTracking(kp, qd_max=profile.qd_max, q_range=(profile.q_min, profile.q_max))


class MujocoTracking:
    """The packaged MuJoCo Panda (1 ms step) tracking the reference with its velocity actuators.

    Tracking law ctrl = qd_ref + kp * (q_ref - q) on the actuators' kv * (ctrl - qd); torque
    commands use MujocoPanda's effort mode. With kp = 50 1/s a 0.3 rad/s ramp is tracked within
    3e-4 rad, and after a reflex the arm settles on the stopped brake reference within ~100 ms
    (coupled joint dynamics; ExactTracking stops with the reference). The model's kinematics are
    the Panda's; for an FR3 profile only the limits differ (the checker uses the profile's).
    """

    def __init__(self, kp: float = 50.0, qd_max: np.ndarray | None = None,
                 q_range: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """`q_range` (q_min, q_max) replaces the model's Panda joint ranges (an FR3's)."""
        from rl_control.robots.mujoco_panda import MujocoPanda
        self.sim = MujocoPanda(timestep=1e-3)
        if q_range is not None:
            self.sim.model.jnt_range[:7] = np.stack([np.asarray(q_range[0]),
                                                     np.asarray(q_range[1])], 1)
        self.kp = float(kp)
        base = np.array([2.175] * 4 + [2.61] * 3) if qd_max is None else np.asarray(qd_max)
        self._ctrl_max = 2.0 * base     # braking may exceed the limits, as real brakes do
        self._mode = ''
        self._use('velocity')

    def _use(self, mode: str) -> None:
        if mode != self._mode:
            self.sim.set_control_mode(mode)
            if mode == 'velocity':
                self.sim.model.actuator_ctrlrange[:] = np.stack([-self._ctrl_max,
                                                                 self._ctrl_max], 1)
            self._mode = mode

    def reset(self, q: np.ndarray) -> None:
        """Rest at `q`."""
        self.sim.reset(np.asarray(q, dtype=np.float64))

    def set_reference(self, q: np.ndarray, qd: np.ndarray, qdd: np.ndarray) -> None:
        """Velocity actuators track (q, qd)."""
        self._use('velocity')
        q_meas = self.sim.data.qpos
        self.sim.set_joint_velocity_command(np.asarray(qd) + self.kp * (np.asarray(q) - q_meas))

    def apply_torque(self, tau: np.ndarray) -> None:
        """Joint torques on top of gravity compensation."""
        self._use('effort')
        self.sim.set_joint_effort_command(np.asarray(tau, dtype=np.float64))

    def step(self, dt: float) -> None:
        """Advance by `dt` (whole 1 ms steps)."""
        self.sim.step(dt)

    def state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(q, qd, actuator torque)."""
        q, qd = self.sim.arm_state()
        return q, qd, self.sim.data.actuator_force.copy()
