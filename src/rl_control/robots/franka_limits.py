"""The robot's 1 kHz reference check: finite differences on the 1 ms grid, libfranka error names.

Why finite differences: FCI never sees a spline, only one commanded sample per millisecond. It
derives what the motion generator asks for from the difference to the previous desired state,
exactly as libfranka's limiter models it (libfranka 0.15.0 src/rate_limiting.cpp limitRate:
`commanded_jerk = ((v - last_v) / kDeltaT - last_a) / kDeltaT`, with last_v / last_a the robot's
`dq_d` / `ddq_d`). A reference that is smooth in continuous time but jumps on the grid (a
re-planned spline that starts half a millisecond off) is judged on the grid.

Necessary conditions (Franka robot_specifications / control_parameters docs, "Joint trajectory
requirements" and "Torque control requirements"): q_min < q_c < q_max, |dq_c| < dq_max,
|ddq_c| < ddq_max, |dddq_c| < dddq_max; for torque control only |dtau_d| < dtau_max. Torque range
|tau_d| < tau_max is a RECOMMENDED condition: the robot adjusts the command, it does not abort, so
it is clipped here (counted), not raised. errors.h (0.9.2 and 0.15.0) has no commanded-torque-range
error; `tau_j_range_violation` is about the MEASURED torque signal and is not modelled.

Error names (libfranka 0.15.0 include/franka/errors.h, the same 41 flags as 0.9.2):
- joint_motion_generator_position_limits_violation: "would move into a joint limit"
- joint_motion_generator_velocity_limits_violation: "exceeded velocity limits"
- joint_motion_generator_velocity_discontinuity: "commanded velocity ... discontinuous", i.e. the
  acceleration limit
- joint_motion_generator_acceleration_discontinuity: the jerk limit
- controller_torque_discontinuity: "torque set by the external controller is discontinuous"
- joint_position_limits_violation / joint_velocity_violation: the MEASURED arm moved past the
  joint limits / exceeded joint velocity limits.
The robot reports a bitset; `check` returns the first in the order position, velocity,
acceleration, jerk (lowest joint index first) and keeps all of them in `last_violations`.

Thresholds: the nominal limits of the profile, violated when not strictly inside (the docs'
strict inequalities). libfranka's `kLimitEps` is the margin its own limiter keeps inside them
(`K_LIMIT_EPS`), so libfranka-limited streams pass despite floating-point round-off.

The check itself is finite differences against a profile's limits, so a non-Franka robot gets
it too, under the names its profile gives (`RobotProfile.limit_names`); the Franka arms name
their violations as libfranka does (`LIBFRANKA`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from rl_control.robots.robot import LimitNames, RobotProfile

Interface = Literal['position', 'velocity', 'effort']

K_DELTA_T = 1e-3
"""libfranka `kDeltaT` (rate_limiting.h, 0.9.2 and 0.15.0): the FCI control period [s]."""
K_LIMIT_EPS = 1e-3
"""libfranka `kLimitEps` (rate_limiting.h, 0.9.2 and 0.15.0): libfranka's limiter stays this far
inside every derivative limit. The robot's check is against the nominal limits, so a stream
that libfranka's own `limitRate` produced always passes."""

POSITION_LIMITS = 'joint_motion_generator_position_limits_violation'
VELOCITY_LIMITS = 'joint_motion_generator_velocity_limits_violation'
VELOCITY_DISCONTINUITY = 'joint_motion_generator_velocity_discontinuity'
ACCELERATION_DISCONTINUITY = 'joint_motion_generator_acceleration_discontinuity'
TORQUE_DISCONTINUITY = 'controller_torque_discontinuity'
MEASURED_POSITION_LIMITS = 'joint_position_limits_violation'
MEASURED_VELOCITY = 'joint_velocity_violation'
NON_FINITE_COMMAND = 'non_finite_command'
"""Not a robot flag: franka_hardware's write() returns ERROR for a non-finite command
(franka_ros2 franka_hardware_interface.cpp hasInfinite) and libfranka's checkFinite throws
"Commanding value is infinite or NaN."; either way the motion ends, so it stops the arm too."""
LIBFRANKA = LimitNames(POSITION_LIMITS, VELOCITY_LIMITS, VELOCITY_DISCONTINUITY,
                       ACCELERATION_DISCONTINUITY, TORQUE_DISCONTINUITY,
                       MEASURED_POSITION_LIMITS, MEASURED_VELOCITY, NON_FINITE_COMMAND)
"""The Franka arms' names for the violations (the `Errors` flags above)."""


@dataclass(frozen=True)
class Violation:
    """One violated condition: its name (libfranka's on a Franka), joint (0-based), numbers."""

    name: str
    joint: int
    quantity: str
    value: float
    limit: float


def _first_outside(values: np.ndarray, lower: np.ndarray, upper: np.ndarray, name: str,
                   quantity: str, out: list[Violation]) -> None:
    """Append a Violation for every joint with value not strictly inside (lower, upper)."""
    bad = np.flatnonzero(~((values > lower) & (values < upper)))
    for j in bad:
        limit = upper[j] if values[j] >= upper[j] else lower[j]
        out.append(Violation(name, int(j), quantity, float(values[j]), float(limit)))


class FrankaLimitChecker:
    """Stateful per-tick checker for one command interface; feed one sample per 1 ms tick.

    Its state is the robot's desired state (libfranka RobotState q_d, dq_d, ddq_d, tau_J_d).
    `reset(q)` models a motion start after idle / recovery: the previous samples are the held
    state of an arm at rest, so a first command that jumps (a velocity step from rest, a torque
    step from zero) is caught at its first tick.
    """

    def __init__(self, profile: RobotProfile, interface: Interface, dt: float = 1e-3) -> None:
        if interface not in ('position', 'velocity', 'effort'):
            raise ValueError(f"interface must be position, velocity or effort, got {interface!r}")
        self.profile, self.names = profile, profile.limit_names
        self.interface: Interface = interface
        self.dt = float(dt)
        self.last_violations: tuple[Violation, ...] = ()
        self.reset(profile.home)

    def reset(self, q: np.ndarray) -> None:
        """Restart from rest at `q`: q_d = q, dq_d = ddq_d = 0, tau_J_d = 0."""
        self.q_d = np.array(q, dtype=np.float64)
        n = self.profile.dof
        self.dq_d = np.zeros(n)
        self.ddq_d = np.zeros(n)
        self.tau_d = np.zeros(n)
        self.last_violations = ()

    def check(self, command: np.ndarray, enforce: bool = True) -> Violation | None:
        """Judge one commanded sample; on success it becomes the new desired state.

        position: command = q_c; velocity: command = dq_c (q_d integrates it); effort: command =
        tau_J_d. A violating sample is not taken over (the robot rejects it and stops), unless
        `enforce` is False (an ideal robot: the sample is taken, the violation still returned).
        """
        c = np.asarray(command, dtype=np.float64)
        found: list[Violation] = []
        if c.shape != self.q_d.shape:
            raise ValueError(f'command must have shape {self.q_d.shape}, got {c.shape}')
        if not np.all(np.isfinite(c)):
            j = int(np.flatnonzero(~np.isfinite(c))[0])
            found.append(Violation(self.names.non_finite_command, j, 'command', float(c[j]),
                                   np.inf))
        elif self.interface == 'effort':
            rate = (c - self.tau_d) / self.dt
            lim = self.profile.dtau_max
            _first_outside(rate, -lim, lim, self.names.torque_rate_limits, 'torque_rate',
                           found)
            if not found or not enforce:
                self.tau_d = c
        else:
            if self.interface == 'position':
                q, dq = c, (c - self.q_d) / self.dt
            else:
                q, dq = self.q_d + c * self.dt, c
            ddq = (dq - self.dq_d) / self.dt
            dddq = (ddq - self.ddq_d) / self.dt
            p = self.profile
            vlo, vhi = p.velocity_limits(self.q_d)    # at q_d, as libfranka's limiter does
            _first_outside(q, p.q_min, p.q_max, self.names.position_limits, 'position', found)
            _first_outside(dq, vlo, vhi, self.names.velocity_limits, 'velocity', found)
            _first_outside(ddq, -p.qdd_max, p.qdd_max, self.names.acceleration_limits,
                           'acceleration', found)
            _first_outside(dddq, -p.qddd_max, p.qddd_max, self.names.jerk_limits, 'jerk',
                           found)
            if not found or not enforce:
                self.q_d, self.dq_d, self.ddq_d = q, dq, ddq
        self.last_violations = tuple(found)
        return found[0] if found else None

    def check_batch(self, commands: np.ndarray) -> tuple[int, Violation] | None:
        """Judge n consecutive samples (n, dof) as n calls of `check(c, enforce=False)` would.

        One numpy pass instead of n Python calls (a training env checks 40 samples per
        step): returns (index, first violation) of the earliest violating sample, or None;
        the state ends at the last sample either way.
        """
        c = np.asarray(commands, dtype=np.float64)
        if self.interface == 'velocity' or not np.all(np.isfinite(c)):
            for i, row in enumerate(c):
                v = self.check(row, enforce=False)
                if v is not None:
                    for rest in c[i + 1:]:
                        self.check(rest, enforce=False)
                    return i, v
            return None
        p, dt = self.profile, self.dt
        if self.interface == 'effort':
            taus = np.vstack([self.tau_d, c])
            rate = np.diff(taus, axis=0) / dt
            bad = ~np.all((rate > -p.dtau_max) & (rate < p.dtau_max), axis=1)
            first = int(np.argmax(bad)) if bad.any() else None
            v = None
            if first is not None:  # the exact record, from the sample before it
                self.tau_d = taus[first].copy()
                v = self.check(c[first], enforce=False)
            self.tau_d = c[-1].copy()
            return None if first is None else (first, v)
        else:
            qs = np.vstack([self.q_d, c])
            dq = np.diff(qs, axis=0) / dt
            ddq = np.diff(np.vstack([self.dq_d, dq]), axis=0) / dt
            dddq = np.diff(np.vstack([self.ddq_d, ddq]), axis=0) / dt
            vlo, vhi = p.velocity_limits(qs[:-1])  # at q_d, as `check`
            bad = ~(np.all((c > p.q_min) & (c < p.q_max), axis=1)
                    & np.all((dq > vlo) & (dq < vhi), axis=1)
                    & np.all((ddq > -p.qdd_max) & (ddq < p.qdd_max), axis=1)
                    & np.all((dddq > -p.qddd_max) & (dddq < p.qddd_max), axis=1))
            first = int(np.argmax(bad)) if bad.any() else None
            if first is not None:  # replay from the sample before it for the exact record
                self.q_d, self.dq_d = qs[first].copy(), (dq[first - 1] if first else self.dq_d)
                self.ddq_d = ddq[first - 1] if first else self.ddq_d
                v = self.check(c[first], enforce=False)
                self.q_d, self.dq_d, self.ddq_d = c[-1].copy(), dq[-1].copy(), ddq[-1].copy()
                return first, v
            self.q_d, self.dq_d, self.ddq_d = c[-1].copy(), dq[-1].copy(), ddq[-1].copy()
            return None

    def check_measured(self, q: np.ndarray, qd: np.ndarray) -> Violation | None:
        """Judge the measured state: joint_position_limits_violation, joint_velocity_violation.

        The measured velocity is held to the constant nominal qd_max (the robot's safety bound is
        not published as position dependent; the motion-generator check above is).
        """
        p = self.profile
        found: list[Violation] = []
        _first_outside(np.asarray(q, dtype=np.float64), p.q_min, p.q_max,
                       self.names.measured_position_limits, 'measured_position', found)
        _first_outside(np.asarray(qd, dtype=np.float64), -p.qd_max, p.qd_max,
                       self.names.measured_velocity, 'measured_velocity', found)
        if found:
            self.last_violations = tuple(found)
        return found[0] if found else None
