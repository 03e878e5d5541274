"""What the simulated arm's measured state comes from: exact tracking, MuJoCo or PyBullet.

The arm model (franka.FrankaArm) feeds the physics either a joint reference (position /
velocity interface, and always while braking) or a joint torque (effort interface), once per
1 ms tick, then reads the measured state. Torques are on top of the robot's own gravity
compensation (libfranka 0.15.0 control_types.h: Torques are "joint-level torque commands without
gravity and friction"), so zero torque lets the arm float and coast, which both backends model
(MuJoCo via the model's gravcomp bodies).

A robot profile names the engines it has models for (`RobotProfile.physics`); `make_physics`
builds one.
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
        """Measured (q, qd, tau), copies, shape (dof,) each."""


def make_physics(profile: Any, engine: str, timestep: float = 1e-3, kp: float = 50.0
                 ) -> Any:
    """The profile's arm on `engine`, tracking a reference with gain `kp` [1/s]."""
    factory = profile.physics.get(engine)
    if factory is None:
        raise ValueError(f'the {profile.name} profile has no {engine!r} model; it has '
                         f'{sorted(profile.physics)}')
    return factory(profile, timestep, kp)


def mujoco_physics(profile: Any, kp: float = 50.0) -> MujocoTracking:
    """MuJoCo tracking on the 1 ms grid of the simulated robot (robots/franka.py)."""
    return make_physics(profile, 'mujoco', 1e-3, kp)


def mujoco_tracking(profile: Any, timestep: float, kp: float) -> MujocoTracking:
    """`RobotProfile.physics` factory: the profile's MJCF (`mjcf`) in MuJoCo."""
    return MujocoTracking(profile, kp, timestep)


def bullet_tracking(profile: Any, timestep: float, kp: float) -> BulletTracking:
    """`RobotProfile.physics` factory: panda-gym's PyBullet Panda with the profile's limits."""
    return BulletTracking(profile, kp, timestep)


class ExactTracking:
    """Measured = reference, instantly (fast tests); torques drive decoupled unit inertias.

    Why a toy torque model: with exact tracking there is no dynamics to speak of, yet effort mode
    needs a measured state; q'' = tau / inertia per joint (gravity compensated) is the simplest
    model in which zero torque coasts, as the real arm does.
    """

    def __init__(self, inertia: np.ndarray | float = 1.0) -> None:
        self._inertia = np.asarray(inertia, dtype=np.float64)
        self.reset(np.zeros(self._inertia.size))

    def reset(self, q: np.ndarray) -> None:
        """Rest at `q` (its length is the arm's joint count)."""
        self.q = np.array(q, dtype=np.float64)
        n = self.q.size
        self.inertia = np.broadcast_to(self._inertia, (n,)).copy()
        self.qd = np.zeros(n)
        self.tau = np.zeros(n)
        self._ref: tuple[np.ndarray, np.ndarray] | None = None

    def set_reference(self, q: np.ndarray, qd: np.ndarray, qdd: np.ndarray) -> None:
        """The next step lands exactly on (q, qd)."""
        self._ref = (np.array(q, dtype=np.float64), np.array(qd, dtype=np.float64))
        self.tau = np.zeros_like(self.q)

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


class MujocoTracking:
    """A profile's MuJoCo arm (`MujocoArm`) tracking the reference with its velocity actuators.

    Tracking law ctrl = qd_ref + kp * (q_ref - q) on the actuators' kv * (ctrl - qd); torque
    commands use the arm's effort mode. After a reflex the arm settles on the stopped brake
    reference through its coupled joint dynamics (ExactTracking stops with the reference). The
    joint ranges are the profile's (an FR3 profile on the Panda model: only the limits differ;
    the checker uses the profile's too).
    """

    def __init__(self, profile: Any, kp: float = 50.0, timestep: float = 1e-3,
                 model: Any = None) -> None:
        from rl_control.robots.mujoco_arm import MujocoArm
        self.sim = MujocoArm(profile, timestep=timestep, model=model)
        self.n = n = profile.dof
        self.dt = float(timestep)
        self._damping = self.sim.model.dof_damping[:n].copy()
        self._friction = self.sim.model.dof_frictionloss[:n].copy()
        self.sim.model.jnt_range[:n] = np.stack([profile.q_min, profile.q_max], 1)
        self.kp = float(kp)
        self._ctrl_max = 2.0 * profile.qd_max  # braking may exceed the limits, as real brakes do
        self._mode = ''
        self._use('velocity')

    def _use(self, mode: str) -> None:
        if mode != self._mode:
            self.sim.set_control_mode(mode)
            if mode == 'velocity':
                self.sim.model.actuator_ctrlrange[:self.n] = np.stack([-self._ctrl_max,
                                                                       self._ctrl_max], 1)
            self._mode = mode

    def reset(self, q: np.ndarray) -> None:
        """Rest at `q`."""
        self.sim.reset(np.asarray(q, dtype=np.float64))

    def set_reference(self, q: np.ndarray, qd: np.ndarray, qdd: np.ndarray) -> None:
        """Velocity actuators track (q, qd)."""
        self._use('velocity')
        q_meas = self.sim.data.qpos[:self.n]
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
        return q, qd, self.sim.data.actuator_force[:self.n].copy()

    def set_dynamics(self, damping_scale: np.ndarray, frictionloss: np.ndarray) -> None:
        """Joint damping = the model's x `damping_scale`; dry friction `frictionloss` [Nm]."""
        m = self.sim.model
        m.dof_damping[:self.n] = self._damping * np.asarray(damping_scale)
        m.dof_frictionloss[:self.n] = self._friction + np.asarray(frictionloss)

    def state_dict(self) -> dict[str, Any]:
        """MuJoCo state, control mode and the randomized dynamics (exact resume)."""
        m = self.sim.model
        return {'sim': self.sim.state_dict(), 'mode': self._mode,
                'damping': m.dof_damping[:self.n].copy(),
                'friction': m.dof_frictionloss[:self.n].copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of state_dict."""
        self._use(state['mode'])
        self.sim.load_state_dict(state['sim'])
        self.sim.model.dof_damping[:self.n] = state['damping']
        self.sim.model.dof_frictionloss[:self.n] = state['friction']

    def close(self) -> None:
        """Nothing to release (MuJoCo frees with the object)."""


class BulletTracking:
    """panda-gym's PyBullet Panda tracking the reference with Bullet's velocity motors.

    The same tracking law as MujocoTracking, at `timestep` (PyBullet's own step; panda-gym uses
    2 ms), with the profile's joint ranges and velocity limits. A second engine with different
    dynamics, for sim-to-sim checks; joint dry friction is not modelled (Bullet has no joint
    friction loss), damping is.
    """

    def __init__(self, profile: Any, kp: float = 50.0, timestep: float = 2e-3) -> None:
        import pybullet as pb

        from rl_control.robots.bullet_panda import ARM_INDICES, BulletPanda

        self.pb, self.idx = pb, ARM_INDICES
        self.sim = BulletPanda()
        self.c = {'physicsClientId': self.sim.client}
        pb.setTimeStep(timestep, **self.c)
        self.dt, self.kp = float(timestep), float(kp)
        self.qd_max = 2.0 * np.asarray(profile.qd_max)  # braking may exceed, as real brakes do
        self.tau_max = np.asarray(profile.tau_max)
        for i, lo, hi in zip(ARM_INDICES, profile.q_min, profile.q_max, strict=True):
            pb.changeDynamics(self.sim.body, i, jointLowerLimit=float(lo),
                              jointUpperLimit=float(hi), **self.c)

    def reset(self, q: np.ndarray) -> None:
        """Rest at `q`."""
        self.sim.reset(np.asarray(q, np.float64))

    def set_reference(self, q: np.ndarray, qd: np.ndarray, qdd: np.ndarray) -> None:
        """Velocity motors track (q, qd)."""
        _, q_meas, _, _ = self.sim.joint_state()
        n = len(self.idx)
        cmd = np.clip(np.asarray(qd) + self.kp * (np.asarray(q) - q_meas[:n]), -self.qd_max,
                      self.qd_max)
        self.pb.setJointMotorControlArray(self.sim.body, self.idx, self.pb.VELOCITY_CONTROL,
                                          targetVelocities=cmd.tolist(),
                                          forces=self.tau_max.tolist(), **self.c)

    def apply_torque(self, tau: np.ndarray) -> None:
        """Not supported on this engine (the effort task runs on MuJoCo)."""
        raise NotImplementedError('effort control runs on the MuJoCo engine only')

    def step(self, dt: float) -> None:
        """Advance by `dt` (whole steps)."""
        for _ in range(int(round(dt / self.dt))):
            self.pb.stepSimulation(**self.c)

    def state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(q, qd, applied torque) of the arm joints."""
        _, q, qd, tau = self.sim.joint_state()
        n = len(self.idx)
        return q[:n].copy(), qd[:n].copy(), tau[:n].copy()

    def set_dynamics(self, damping_scale: np.ndarray, frictionloss: np.ndarray) -> None:
        """Joint damping (0.5 Nm s/rad nominal, as the MuJoCo model) x scale; no friction."""
        for i, s in zip(self.idx, np.asarray(damping_scale), strict=True):
            self.pb.changeDynamics(self.sim.body, i, jointDamping=0.5 * float(s), **self.c)

    def state_dict(self) -> dict[str, Any]:
        """Joint states (a fixed-base arm without contacts: the whole Bullet state)."""
        return self.sim.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of state_dict."""
        self.sim.load_state_dict(state)

    def close(self) -> None:
        """Disconnect the Bullet client."""
        self.sim.close()
