"""A scripted (not learned) pick-and-place controller: proof the task is solvable, a test tool.

It reads the same observation a policy does (the contract's terms: end effector, hand width and
command, tracked cube pose, goal) and answers the same action (an end-effector velocity, or the
joint velocities the contract's Cartesian law gives for it, and the gripper entry). It keeps no
memory: every decision is a function of the observation, so it can be served like a bundle's
actor. Above the cube, down to it, close, wait for the grasp, carry the cube to the goal, stop.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from rl_control.contract.cartesian import joint_velocity

CUBE = 0.04
APPROACH_Z = 0.06  # m above the cube while aligning over it
ALIGNED_XY = 0.008  # m: descend only when this well aligned
GRASP_Z = 0.006  # m: close when the end effector is this close to the cube's centre
GAIN = 5.0  # 1/s: end-effector velocity per metre of error (capped by the action)
HELD_OFFSET = 0.004  # m: a grasped cube's centre below the end effector
STILL = 0.008  # m/s: slower commands are zero (within 2 mm of a target)


class ScriptedPickPlace:
    """`act(obs)` for an observation of `spec` (contract ObservationSpec incl. the goal)."""

    def __init__(self, spec: Any, act_spec: Any, profile: Any) -> None:
        self.spec, self.act_spec, self.profile = spec, act_spec, profile
        self.sl = {t: spec.term_slice(t) for t in spec.terms}

    def target(self, obs: np.ndarray) -> tuple[np.ndarray, float]:
        """(end-effector velocity [m/s], gripper entry) for this observation."""
        ee, cube = obs[self.sl['ee_pos']], obs[self.sl['object_pose']][:3]
        goal, width = obs[self.sl['goal']], float(obs[self.sl['gripper_width']][0])
        closed = float(obs[self.sl['gripper_command']][0]) > 0
        rel = cube - ee
        near = np.linalg.norm(rel[:2]) < 0.02 and abs(rel[2]) < 0.03
        if closed and CUBE - 0.01 < width < CUBE + 0.006:
            # holding it (the tracked pose lags a moving cube: carry by the hand's own offset)
            lift = max(goal[2], CUBE / 2 + 0.003) - goal[2]  # never press it into the table
            return GAIN * (goal + [0.0, 0.0, HELD_OFFSET + lift] - ee), 1.0
        if closed and near and width >= CUBE + 0.006:
            return np.zeros(3), 1.0  # closing on it: keep still
        if closed:
            return np.zeros(3), -1.0  # missed (closed on nothing, or it slipped): open
        above = np.linalg.norm(rel[:2]) > ALIGNED_XY
        high = cube + [0.0, 0.0, APPROACH_Z]
        if above:
            target = high if ee[2] >= cube[2] + 0.02 else np.r_[ee[:2], high[2]]
            if ee[2] < cube[2] + 0.02 and np.linalg.norm(rel[:2]) < 0.03:
                target = high
            return GAIN * (target - ee), -1.0
        if abs(rel[2]) > GRASP_Z:
            return GAIN * (cube - ee), -1.0  # straight down onto it
        return np.zeros(3), 1.0

    def act(self, obs: np.ndarray) -> np.ndarray:
        """The action in [-1, 1] (arm entries, then the gripper's)."""
        obs = np.asarray(obs, np.float64)
        v, grip = self.target(obs)
        if np.linalg.norm(v) < STILL:
            v = np.zeros(3)  # close enough: stay (sensor noise must not move the arm)
        spec = self.act_spec
        if spec.cartesian is not None:
            arm = np.clip(v / spec.cartesian.ee_speed, -1.0, 1.0)
        else:
            q = obs[self.sl['joint_pos']]
            from rl_control.contract.cartesian import CartesianConfig
            qd = joint_velocity(self.profile, q, v, CartesianConfig())
            arm = np.clip(qd / spec.scale, -1.0, 1.0)
        if spec.deadband or spec.exponent != 1.0:  # invert the contract's band
            mag = np.abs(arm) ** (1.0 / spec.exponent) * (1.0 - spec.deadband)
            arm = np.sign(arm) * np.where(mag > 0, mag + spec.deadband, 0.0)
        return np.r_[arm, grip].astype(np.float32)
