"""The same Panda interface on PyBullet, with panda-gym's Panda URDF.

Why a second engine: a bundle trained on the MuJoCo Panda should also drive a robot whose
dynamics it never saw. This one is the URDF that ships with pybullet_data (what panda-gym
loads), driven by Bullet's joint velocity motors with Franka's effort limits as maximum forces,
stepped at panda-gym's 2 ms. The task, observation and action mapping are `panda_envs`' own.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import pybullet as pb
import pybullet_data

from rl_control.robots.panda import PANDA

URDF = os.path.join('franka_panda', 'panda.urdf')
ARM_INDICES = list(range(7))
FINGER_INDICES = [9, 10]
EE_LINK = 11                     # panda_grasptarget, panda-gym's end effector
TIMESTEP_S = 1.0 / 500           # panda-gym's physics step
FINGER_FORCE = 20.0              # the URDF's finger effort limit [N]


class BulletPanda:
    """panda-gym's Panda in its own PyBullet DIRECT client, velocity-controlled, base at origin.

    Gravity is on, as in panda-gym; Bullet's velocity motors hold the arm against it within the
    effort limits. Fingers are held at a fixed width by position motors.
    """

    joint_names: tuple[str, ...] = PANDA.all_joint_names
    arm_joint_names: tuple[str, ...] = PANDA.joint_names

    def __init__(self, finger_width: float = 0.04) -> None:
        self.client = pb.connect(pb.DIRECT)
        self._c = {'physicsClientId': self.client}
        pb.setTimeStep(TIMESTEP_S, **self._c)
        pb.setGravity(0, 0, -9.81, **self._c)
        self.body = pb.loadURDF(os.path.join(pybullet_data.getDataPath(), URDF),
                                useFixedBase=True, **self._c)
        self._indices = ARM_INDICES + FINGER_INDICES
        self.finger_width = float(finger_width)
        self.time = 0.0
        self.reset()

    @property
    def timestep(self) -> float:
        """Physics step [s]."""
        return TIMESTEP_S

    def reset(self, q: np.ndarray | None = None, qd: np.ndarray | None = None) -> None:
        """Arm at `q` (default home) with velocity `qd` (default 0); fingers at their width."""
        q = PANDA.home if q is None else np.asarray(q, dtype=np.float64)
        qd = np.zeros(7) if qd is None else np.asarray(qd, dtype=np.float64)
        half = 0.5 * self.finger_width
        for i in ARM_INDICES:
            pb.resetJointState(self.body, i, float(q[i]), float(qd[i]), **self._c)
        for i in FINGER_INDICES:
            pb.resetJointState(self.body, i, half, 0.0, **self._c)
        pb.setJointMotorControlArray(self.body, FINGER_INDICES, pb.POSITION_CONTROL,
                                     targetPositions=[half, half],
                                     forces=[FINGER_FORCE, FINGER_FORCE], **self._c)
        self.set_joint_velocity_command(np.zeros(7))
        self.time = 0.0

    def set_joint_velocity_command(self, qd_cmd: np.ndarray) -> None:
        """Joint velocity command for the 7 arm joints, clamped at the velocity limits."""
        cmd = np.clip(qd_cmd, -PANDA.qd_max, PANDA.qd_max)
        self._cmd = cmd
        pb.setJointMotorControlArray(self.body, ARM_INDICES, pb.VELOCITY_CONTROL,
                                     targetVelocities=cmd.tolist(),
                                     forces=PANDA.tau_max.tolist(), **self._c)

    def step(self, duration: float) -> None:
        """Advance by `duration` seconds, a whole multiple of the 2 ms step (else ValueError)."""
        n = int(round(duration / TIMESTEP_S))
        if n < 1 or abs(n * TIMESTEP_S - duration) > 1e-6 * TIMESTEP_S:
            raise ValueError(f'step duration {duration} s is not a whole multiple of the '
                             f'{TIMESTEP_S} s physics timestep')
        for _ in range(n):
            pb.stepSimulation(**self._c)
        self.time += n * TIMESTEP_S

    step_physics = step

    def joint_state(self) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray]:
        """(names, positions, velocities, applied efforts) of 7 arm + 2 finger joints."""
        states = pb.getJointStates(self.body, self._indices, **self._c)
        q = np.array([s[0] for s in states])
        qd = np.array([s[1] for s in states])
        tau = np.array([s[3] for s in states])
        return self.joint_names, q, qd, tau

    def state_dict(self) -> dict[str, Any]:
        """Joint positions, velocities and the held velocity command (exact resume).

        For a fixed-base arm without contacts that is the whole Bullet state.
        """
        _, q, qd, _ = self.joint_state()
        return {'q': q, 'qd': qd, 'cmd': self._cmd.copy(), 'time': self.time}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of state_dict."""
        for k, i in enumerate(self._indices):
            pb.resetJointState(self.body, i, float(state['q'][k]), float(state['qd'][k]),
                               **self._c)
        self.set_joint_velocity_command(state['cmd'])
        self.time = float(state['time'])

    def ee_position(self) -> np.ndarray:
        """Bullet's own end-effector position (link 11), base frame (the base is at origin)."""
        state = pb.getLinkState(self.body, EE_LINK, computeForwardKinematics=True, **self._c)
        return np.array(state[4])

    def close(self) -> None:
        """Disconnect the Bullet client (idempotent)."""
        if self.client is not None and pb.isConnected(self.client):
            pb.disconnect(self.client)
        self.client = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:   # interpreter shutdown: pybullet may already be gone
            pass
