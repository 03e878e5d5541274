"""A raw MuJoCo arm behind a ros2_control-like interface (no gymnasium, no ROS).

Why a separate layer: the training envs and the `sim_robot` ROS node drive the very same
simulator, the first by calling `step` directly, the second from topic callbacks. The interface
is what a real arm under ros2_control offers: a joint state (names, positions, velocities,
efforts, finger joints included) and a joint velocity (or effort) command. The model is the
robot profile's MJCF (`RobotProfile.mjcf`): its first `dof` joints are the arm's, in profile
order, each with a velocity actuator, gravity compensated (robots/assets/panda.xml says how).
"""
from __future__ import annotations

from typing import Any

import mujoco
import numpy as np

from rl_control.robots.robot import RobotProfile


class MujocoArm:
    """A profile's arm in MuJoCo with a joint velocity (default) or joint effort interface.

    Velocity mode: each joint's actuator applies kv * (command - qvel) with gravity compensated,
    much like the Panda's internal velocity controller; the command is clamped at the velocity
    limits, the torque is not (see assets/panda.xml for why), so reported efforts can exceed
    the effort limits during abrupt command changes.
    Effort mode: the command is the joint torque on top of gravity compensation (as
    franka_ros2's effort interface). The fingers are rigid; their joints are reported open
    (`RobotProfile.finger_position`) so `/joint_states` looks like a real arm's.
    """

    def __init__(self, profile: RobotProfile, timestep: float | None = None,
                 model: mujoco.MjModel | None = None) -> None:
        """Load the profile's model, or use `model` (its first joints and actuators the arm's).

        `timestep` [s] overrides the model's physics step.

        Training steps 40 ms at a time, so 10 ms (4 substeps) is plenty; a node that advances
        the physics in smaller ticks (e.g. 1 ms) must pass a timestep that divides its tick.
        """
        if model is None and profile.mjcf is None:
            raise ValueError(f'the {profile.name} profile has no MuJoCo model (mjcf)')
        self.profile, self.n = profile, profile.dof
        self.joint_names = profile.all_joint_names
        self.arm_joint_names = profile.joint_names
        self.model = model if model is not None else mujoco.MjModel.from_xml_path(
            str(profile.mjcf))
        if timestep is not None:
            if not timestep > 0:
                raise ValueError(f'timestep must be positive, got {timestep}')
            self.model.opt.timestep = timestep
        self.data = mujoco.MjData(self.model)
        self._velocity_gain = self.model.actuator_gainprm[:self.n, 0].copy()  # kv per actuator
        self._ee_site = self.model.site('ee').id
        self.mode = 'velocity'
        self.reset()

    @property
    def timestep(self) -> float:
        """Physics step [s]; `step` integrates whole multiples of it."""
        return float(self.model.opt.timestep)

    @property
    def time(self) -> float:
        """Simulated time since the last reset [s]."""
        return float(self.data.time)

    def reset(self, q: np.ndarray | None = None, qd: np.ndarray | None = None) -> None:
        """Put the arm at `q` (default: home) with velocity `qd` (default 0), command zero."""
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[:self.n] = self.profile.home if q is None else q
        if qd is not None:
            self.data.qvel[:self.n] = qd
        mujoco.mj_kinematics(self.model, self.data)

    def set_control_mode(self, mode: str) -> None:
        """Switch between 'velocity' and 'effort' command interfaces (zeroes the command)."""
        m, n = self.model, self.n
        if mode == 'velocity':
            m.actuator_gainprm[:n, 0] = self._velocity_gain
            m.actuator_biasprm[:n, 2] = -self._velocity_gain
            qd_max = self.profile.qd_max
            m.actuator_ctrlrange[:n] = np.stack([-qd_max, qd_max], 1)
        elif mode == 'effort':
            m.actuator_gainprm[:n, 0] = 1.0
            m.actuator_biasprm[:n, 2] = 0.0
            eff = self.profile.tau_max
            m.actuator_ctrlrange[:n] = np.stack([-eff, eff], 1)
        else:
            raise ValueError(f"control mode must be 'velocity' or 'effort', got {mode!r}")
        self.mode = mode
        self.data.ctrl[:n] = 0.0

    def set_joint_velocity_command(self, qd_cmd: np.ndarray) -> None:
        """Joint velocity command of the arm joints [rad/s], clamped at the velocity limits."""
        if self.mode != 'velocity':
            raise RuntimeError('velocity command while in effort mode; call set_control_mode')
        self.data.ctrl[:self.n] = qd_cmd    # MuJoCo clamps ctrl to ctrlrange (the velocity limits)

    def set_joint_effort_command(self, tau: np.ndarray) -> None:
        """Joint torque command of the arm joints [Nm], clamped at the effort limits."""
        if self.mode != 'effort':
            raise RuntimeError('effort command while in velocity mode; call set_control_mode')
        self.data.ctrl[:self.n] = tau

    def step(self, duration: float) -> None:
        """Advance the physics by `duration` seconds, a whole multiple of the timestep.

        Raises instead of rounding: silently stepping 10 ms when 1 ms was asked would make a
        simulated robot run ten times too fast.
        """
        dt = self.model.opt.timestep
        n = int(round(duration / dt))
        if n < 1 or abs(n * dt - duration) > 1e-6 * dt:
            raise ValueError(f'step duration {duration} s is not a whole multiple of the '
                             f'{dt} s physics timestep (see MujocoArm(timestep=...))')
        mujoco.mj_step(self.model, self.data, nstep=n)

    step_physics = step

    _STATE = mujoco.mjtState.mjSTATE_INTEGRATION

    def state_dict(self) -> dict[str, Any]:
        """MuJoCo's full integration state and the control mode (exact resume)."""
        state = np.empty(mujoco.mj_stateSize(self.model, self._STATE))
        mujoco.mj_getState(self.model, self.data, state, self._STATE)
        return {'mode': self.mode, 'state': state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of state_dict (no mj_forward: it would overwrite the solver warm start)."""
        if state['mode'] != self.mode:
            self.set_control_mode(state['mode'])
        mujoco.mj_setState(self.model, self.data, np.asarray(state['state']), self._STATE)

    def arm_state(self) -> tuple[np.ndarray, np.ndarray]:
        """Arm joint positions and velocities (copies), shape (dof,) each: the cheap path."""
        return self.data.qpos[:self.n].copy(), self.data.qvel[:self.n].copy()

    def joint_state(self) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray]:
        """(names, positions, velocities, efforts) of the arm and finger joints, as /joint_states.

        Efforts are the actuator torques (gravity compensation excluded).
        """
        k = len(self.profile.finger_joint_names)
        q = np.concatenate([self.data.qpos[:self.n], np.full(k, self.profile.finger_position)])
        qd = np.concatenate([self.data.qvel[:self.n], np.zeros(k)])
        tau = np.concatenate([self.data.actuator_force[:self.n], np.zeros(k)])
        return self.joint_names, q, qd, tau

    def ee_position(self) -> np.ndarray:
        """End-effector site position in the base frame, from the simulator (for checks)."""
        mujoco.mj_kinematics(self.model, self.data)
        return self.data.site_xpos[self._ee_site].copy()
