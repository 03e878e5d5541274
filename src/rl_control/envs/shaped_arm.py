"""The arm a policy trains on: it moves as the policy server and a Franka will make it move.

A policy's velocity target goes through the same `contract.shaper.Shaper` the policy server
uses (jerk-limited, from the previous plan's state, starting `lead_s` after the tick, braking
tails, soft position limits, the robot profile's limits); the simulated arm (MuJoCo or
PyBullet) tracks that reference at its physics rate, as a Franka's joint controllers track the
JTC's. The reference is also judged by libfranka's 1 kHz check (`robots.franka_limits`), so
training reports the reflexes a real arm would raise. Effort control: the torque target goes
through `contract.torque.TorqueShaper` every millisecond, on top of gravity compensation.
Which of the two is the action type's shaping (contract/actions.py).

Domain randomization (all drawn from the env's seeded RNG, so an episode is reproducible from
its seed) enters here as the timing of each plan (`now` = tick + action latency + jitter) and
as the physics' joint damping and friction; observation noise is the env's.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from rl_control.contract.actions import action_type_for_control
from rl_control.contract.shaper import GRID_S, Limits, Shaper, ShaperConfig
from rl_control.contract.torque import TorqueConfig, TorqueShaper
from rl_control.robots.franka_limits import FrankaLimitChecker
from rl_control.robots.physics import make_physics
from rl_control.robots.robot import RobotProfile

_CHECKED = {'motion': 'position', 'torque': 'effort'}
"""Shaping -> the command interface whose 1 kHz check judges its samples."""


class ShapedArm:
    """A profile's arm: shaper (or torque shaper) -> physics, with the 1 kHz reference check."""

    def __init__(self, profile: RobotProfile, shaper_cfg: ShaperConfig, engine: str = 'mujoco',
                 control: str = 'velocity', physics_dt: float = 0.002,
                 torque_cfg: TorqueConfig | None = None, physics: Any = None,
                 collision: Any = None) -> None:
        """The profile's arm on `engine`, shaped and checked as the real arm's commands are.

        `physics`: a built physics (e.g. robots/hand_cell.py's cell) instead of the engine's
        arm; `collision`: a robots/contact.py `CollisionBehavior` judging its external wrench
        every physics step (a physics that measures one).
        """
        shaping = action_type_for_control(control).shaping
        self.profile, self.control, self.engine = profile, control, engine
        self.joint_names = profile.all_joint_names
        self.physics = physics if physics is not None else make_physics(profile, engine,
                                                                        physics_dt)
        self.collision = collision
        self.contact_peak = 0.0  # the largest external load / its reflex threshold since reset
        self.physics_dt = self.physics.dt
        self.shaper = Shaper(Limits.from_profile(profile), shaper_cfg,
                             velocity_limits=profile.shaping_velocity_limits)
        self.torque = TorqueShaper(profile.tau_max, profile.dtau_max,
                                   torque_cfg or TorqueConfig(), qd_max=profile.qd_max,
                                   q_range=(profile.q_min, profile.q_max))
        self.checker = FrankaLimitChecker(profile, _CHECKED[shaping])
        self._samples = {'motion': self._motion_samples, 'torque': self._torque_samples}[shaping]
        self.plans = shaping == 'motion'
        """Commands are velocity targets the shaper plans toward (else torque targets)."""
        self.tau_target = np.zeros(profile.dof)
        self.t = 0.0
        self.reflexes = 0
        self.first_reflex: str | None = None
        # Optional: called with (q_ref, qd_ref) every millisecond (the gap report's twin).
        self.on_reference: Any = None

    # -- episodes -----------------------------------------------------------------------------
    def reset(self, q: np.ndarray | None = None, qd: np.ndarray | None = None) -> None:
        """At rest at `q` (default: home) at time 0; the reference is anchored there."""
        q = self.profile.home.copy() if q is None else np.asarray(q, np.float64)
        self.physics.reset(q)
        self.t = 0.0
        self.shaper.anchor(0.0, q)
        self.torque.reset()
        self.tau_target = np.zeros(self.profile.dof)
        self.checker.reset(q)
        self.reflexes, self.first_reflex = 0, None
        self.contact_peak = 0.0

    def set_dynamics(self, damping_scale: np.ndarray, frictionloss: np.ndarray) -> None:
        """Randomize joint damping (a factor) and dry friction [Nm] for this episode."""
        self.physics.set_dynamics(damping_scale, frictionloss)

    # -- commands -----------------------------------------------------------------------------
    def command(self, cmd: np.ndarray, delay: float = 0.0) -> None:
        """A policy command: a velocity target, or a torque target.

        A velocity target is planned toward as a server ticking at now + `delay` would; a
        torque target (on top of gravity compensation) is applied at once, rate-limited every
        millisecond.
        """
        if self.plans:
            self.shaper.step(self.t + delay, cmd)
        else:
            self.tau_target = np.asarray(cmd, np.float64)

    def step(self, duration: float) -> None:
        """Advance `duration` seconds: the reference every 1 ms, the physics at its rate."""
        n = int(round(duration / GRID_S))
        per = int(round(self.physics_dt / GRID_S))
        samples = self._samples(n, per)
        found = self.checker.check_batch(samples)  # the 1 kHz check, in one numpy pass
        self._count(None if found is None else found[1])
        self.t = round(self.t + n * GRID_S, 9)

    def _motion_samples(self, n: int, per: int) -> np.ndarray:
        """N ms of the shaper's reference, tracked by the physics; the commanded positions."""
        samples = np.empty((n, self.profile.dof))
        for k in range(1, n + 1):
            ref = self.shaper.reference(round(self.t + k * GRID_S, 9))
            samples[k - 1] = ref.q
            if self.on_reference is not None:
                self.on_reference((ref.q, ref.qd))
            if k % per == 0:
                self.physics.set_reference(ref.q, ref.qd, ref.qdd)
                self.physics.step(self.physics_dt)
                if self.collision is not None:
                    self._judge_contact()
        return samples

    def _judge_contact(self) -> None:
        """The robot's collision reflex on the physics' external torques and force."""
        tau, force = self.physics.external_wrench()
        c = self.collision
        self.contact_peak = max(self.contact_peak, float(np.max(np.abs(tau) / c.upper_torque)),
                                float(np.max(np.abs(force) / c.upper_force)))
        name = c.reflex(tau, force)
        if name is not None:
            self.reflexes += 1
            self.first_reflex = self.first_reflex or name

    def _torque_samples(self, n: int, per: int) -> np.ndarray:
        """N ms of rate-limited torques on the physics; the commanded torques."""
        samples = np.empty((n, self.profile.dof))
        for k in range(1, n + 1):
            q_now, qd_now, _ = self.physics.state()
            samples[k - 1] = tau = self.torque.step(GRID_S, self.tau_target, qd_now, q_now)
            self.physics.apply_torque(tau)
            if k % per == 0:
                self.physics.step(self.physics_dt)
                q, qd, _ = self.physics.state()  # a torque policy can overspeed the arm
                self._count(self.checker.check_measured(q, qd))
        return samples

    def _count(self, violation: Any) -> None:
        if violation is not None:
            self.reflexes += 1
            self.first_reflex = self.first_reflex or violation.name

    # -- state --------------------------------------------------------------------------------
    def joint_state(self) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray]:
        """(names, q, qd, tau) of the arm and the (fixed, open) fingers."""
        q, qd, tau = self.physics.state()
        k = len(self.profile.finger_joint_names)
        fingers = getattr(self.physics, 'finger_state', None)
        fq, fqd = fingers() if fingers is not None else (np.full(k, self.profile.finger_position),
                                                         np.zeros(k))
        return (self.joint_names, np.concatenate([q, fq]), np.concatenate([qd, fqd]),
                np.concatenate([tau, np.zeros(k)]))

    def state_dict(self) -> dict[str, Any]:
        """Physics, plans, torque command, checker and clock (exact resume mid-episode)."""
        c = self.checker
        return {'physics': self.physics.state_dict(), 'shaper': self.shaper.state_dict(),
                'tau': self.torque.tau.copy(), 'tau_target': self.tau_target.copy(),
                't': self.t, 'reflexes': self.reflexes, 'first_reflex': self.first_reflex,
                'checker': [c.q_d.copy(), c.dq_d.copy(), c.ddq_d.copy(), c.tau_d.copy()]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of state_dict."""
        self.physics.load_state_dict(state['physics'])
        self.shaper.load_state_dict(state['shaper'])
        self.torque.tau = np.array(state['tau'])
        self.tau_target = np.array(state['tau_target'])
        self.t, self.reflexes = float(state['t']), int(state['reflexes'])
        self.first_reflex = state['first_reflex']
        c = self.checker
        c.q_d, c.dq_d, c.ddq_d, c.tau_d = (np.array(a) for a in state['checker'])

    def close(self) -> None:
        """Release the simulator (PyBullet holds a client)."""
        self.physics.close()

