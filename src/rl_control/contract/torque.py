"""Torque shaping for effort commands: within the torque and torque-rate limits, a damping stop.

A Franka checks the commanded torque's rate at 1 kHz (libfranka kMaxTorqueRate = 1000 Nm/s,
i.e. 1 Nm per millisecond); a torque held for 40 ms and then stepped is a discontinuity to it.
franka_ros2 rate-limits effort commands by default (franka_hardware robot.hpp
`torque_command_rate_limiter_active_`), without it a 25 Hz torque stream is a reflex. This
shaper moves the command toward the policy's torque at `rate_fraction` of the limit per second,
so that a stream that skips one of its messages (the robot then sees two steps in one) still
stays under the limit, and clamps it to `torque_fraction` of the torque limits.

The stop: zero torque on a Franka is a floating arm (its own gravity compensation holds the
weight, nothing damps the motion), so a stop commands tau = -damping * qdot, ramped in within
the same rate limit, until the arm is at rest.

The hold damping (`hold_damping` [Nm s/rad] for the joint with the largest torque limit, the
others in proportion to theirs; 0 = off; a bundle's `torque.hold_damping`): a viscous torque
-D qdot added to every command, as a joint impedance controller with zero stiffness adds it
(franka_example_controllers' joint_impedance_example_controller: tau = K (q_d - q) - D qdot).
With it a policy's zero torque brings the arm to rest instead of letting it float, so a policy
can stay where it is without damping the motion itself.

The speed guard: a torque policy can accelerate a joint past its velocity limit (a
`joint_velocity_violation` reflex on a Franka). Above `velocity_fraction` of a joint's limit,
the guard adds a torque opposing the motion, growing with the excess (`guard_gain` x the
torque limit per unit of the limit exceeded); within `position_margin` of a position limit, a
virtual wall pushes back, damped (the full torque limit at the limit itself). Both act before
the rate limit, the same rule in training and serving, so the policy learns with them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TorqueConfig:
    """Fractions of the robot's limits the effort stream stays within; the stop's damping."""

    rate_fraction: float = 0.45
    torque_fraction: float = 0.9
    damping: float = 5.0
    velocity_fraction: float = 0.5
    guard_gain: float = 4.0
    position_margin: float = 0.15
    hold_damping: float = 0.0

    def __post_init__(self) -> None:
        for name in ('rate_fraction', 'torque_fraction'):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f'{name} must be in (0, 1], got {getattr(self, name)!r}')
        for name in ('damping', 'hold_damping'):
            if getattr(self, name) < 0:
                raise ValueError(f'{name} must be >= 0, got {getattr(self, name)!r}')


class TorqueShaper:
    """Rate- and range-limited torque commands (on top of the robot's gravity compensation)."""

    def __init__(self, tau_max: np.ndarray, dtau_max: np.ndarray, cfg: TorqueConfig,
                 qd_max: np.ndarray | None = None,
                 q_range: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self.cfg = cfg
        self.v_soft = None if qd_max is None else np.asarray(qd_max) * cfg.velocity_fraction
        self.q_range = q_range
        self.tau_max = np.asarray(tau_max, np.float64) * cfg.torque_fraction
        self.rate = np.asarray(dtau_max, np.float64) * cfg.rate_fraction
        self.tau = np.zeros_like(self.tau_max)
        self.hold_damping = cfg.hold_damping * self.tau_max / self.tau_max.max()

    def reset(self, tau: np.ndarray | None = None) -> None:
        """Restart from `tau` (default zero: the torque a just-activated controller holds)."""
        self.tau = np.zeros_like(self.tau_max) if tau is None else np.asarray(tau, float).copy()

    def step(self, dt: float, target: np.ndarray, qd: np.ndarray | None = None,
             q: np.ndarray | None = None) -> np.ndarray:
        """The command `dt` seconds after the previous one, moving toward `target` [Nm].

        `qd` and `q` (the measured joint state) engage the speed guard and the position wall.
        """
        goal = np.asarray(target, np.float64)
        if qd is not None and self.cfg.hold_damping:
            goal = goal - self.hold_damping * np.asarray(qd, np.float64)
        if qd is not None and self.v_soft is not None:
            qd = np.asarray(qd, np.float64)
            excess = np.maximum(np.abs(qd) - self.v_soft, 0.0) / self.v_soft
            goal = goal - np.sign(qd) * self.cfg.guard_gain * self.tau_max * excess
        if q is not None and self.q_range is not None:
            m = self.cfg.position_margin
            lo, hi = self.q_range
            into_hi = np.clip((np.asarray(q) - (hi - m)) / m, 0.0, 1.0)
            into_lo = np.clip(((lo + m) - np.asarray(q)) / m, 0.0, 1.0)
            goal = goal + self.tau_max * (into_lo - into_hi)
            if qd is not None and self.v_soft is not None:  # a damped wall: no rebound
                goal = goal - (into_lo + into_hi) * self.tau_max * np.asarray(qd) / self.v_soft
        goal = np.clip(goal, -self.tau_max, self.tau_max)
        limit = self.rate * max(dt, 0.0)
        self.tau = self.tau + np.clip(goal - self.tau, -limit, limit)
        return self.tau.copy()

    def brake(self, dt: float, qd: np.ndarray, q: np.ndarray | None = None) -> np.ndarray:
        """One step of the damping stop for joint velocities `qd` [rad/s]."""
        return self.step(dt, -self.cfg.damping * np.asarray(qd, np.float64), qd, q)
