"""Forward kinematics: the Franka arms' closed-form chain, and any MJCF model's by MuJoCo.

Why plain functions of the joint angles: the policy server derives the end-effector position
from a real robot's `/joint_states` exactly as the training env does, so the kinematics cannot
depend on a running simulator.

`FRANKA`: Franka's published modified-DH table (Craig convention), shared by the Panda and the
FR3 (franka_description's panda_arm and fr3 xacros differ in limits, not in this chain). The
end-effector point is the one panda-gym calls its end effector (link `panda_grasptarget` of its
URDF: flange + 0.107 m + hand offset 0.105 m along the flange z axis), so goals and distances
mean the same thing in every engine. Frame: the robot base (`panda_link0` / `fr3_link0`).

`MujocoKinematics`: a site of an MJCF model placed by MuJoCo's own kinematics, for a robot
described only by its model file.
"""
from __future__ import annotations

from collections.abc import Sequence
import math

import numpy as np

EE_OFFSET = 0.107 + 0.105
"""Flange (0.107) + hand-to-grasp point (0.105) along the flange z axis [m]."""

# Modified DH (Craig): T_i = RotX(alpha_{i-1}) TransX(a_{i-1}) RotZ(q_i) TransZ(d_i).
DH_A = (0.0, 0.0, 0.0, 0.0825, -0.0825, 0.0, 0.088)
DH_D = (0.333, 0.0, 0.316, 0.0, 0.384, 0.0, 0.0)
# alpha_{i-1} in units of +-pi/2 (0, -1 or +1): exact permutations, no cos(pi/2) round-off.
DH_ALPHA_SIGN = (0, -1, 1, 1, -1, 1, 1)
_DH_A, _DH_D = DH_A, DH_D
_cos, _sin = math.cos, math.sin


def fk(q: np.ndarray) -> np.ndarray:
    """End-effector position(s) in the base frame for joint angles `q` of shape (..., 7).

    Vectorized over leading axes: (7,) -> (3,), (N, 7) -> (N, 3). Only positions are needed, so
    the chain is carried as three axis vectors and an origin instead of 4x4 matrices; the
    +-pi/2 twists become column swaps, which keeps a single call cheap (the server runs it at
    the control rate).
    """
    q = np.asarray(q, dtype=np.float64)
    if q.shape[-1] != 7:
        raise ValueError(f'fk expects joint angles of shape (..., 7), got {q.shape}')
    if q.ndim == 1:
        return np.array(fk_single(q.tolist()))
    shape = q.shape[:-1] + (3,)
    x = np.broadcast_to(np.array([1.0, 0.0, 0.0]), shape)
    y = np.broadcast_to(np.array([0.0, 1.0, 0.0]), shape)
    z = np.broadcast_to(np.array([0.0, 0.0, 1.0]), shape)
    p = np.zeros(shape)
    c_all, s_all = np.cos(q), np.sin(q)
    for i in range(7):
        a, d, sign = DH_A[i], DH_D[i], DH_ALPHA_SIGN[i]
        if a:
            p = p + a * x
        if sign < 0:        # RotX(-pi/2): y' = -z, z' = y
            y, z = -z, y
        elif sign > 0:      # RotX(+pi/2): y' = z, z' = -y
            y, z = z, -y
        if d:
            p = p + d * z
        c, s = c_all[..., i:i + 1], s_all[..., i:i + 1]
        x, y = c * x + s * y, c * y - s * x
    return p + EE_OFFSET * z


def fk_single(q: Sequence[float]) -> tuple[float, float, float]:
    """The same chain as `fk` on Python floats, unrolled (the serving path's one call).

    Why unrolled: the server calls this once per joint state (up to 1 kHz), and for one
    configuration the interpreter overhead of a loop over the DH table (tuple packing, branches
    on a, d and the twist) cost more than the arithmetic. The DH constants are folded in; terms
    that are exactly zero are dropped (0 * c adds nothing), so the result equals the generic
    chain of `fk`. Joint 7 turns about the flange z axis, on which the end-effector point lies,
    so its angle does not enter (as in `fk`, where its rotation only moves x and y).
    """
    q0, q1, q2, q3, q4, q5, _q6 = q
    c0, s0 = _cos(q0), _sin(q0)
    c1, s1 = _cos(q1), _sin(q1)
    # Joints 1-2 (no offsets but d1): frame 2 axes in closed form.
    x0, x1, x2 = c1 * c0, c1 * s0, -s1
    y0, y1, y2 = -s1 * c0, -s1 * s0, -c1
    # Joint 3: RotX(+pi/2) (y' = z, z' = -y), then d3 along z'.
    z0, z1, z2 = s1 * c0, s1 * s0, c1
    d = _DH_D[2]
    p0, p1, p2 = d * z0, d * z1, _DH_D[0] + d * z2
    c, s = _cos(q2), _sin(q2)
    x0, x1, x2, y0, y1, y2 = (c * x0 - s * s0, c * x1 + s * c0, c * x2,
                              -c * s0 - s * x0, c * c0 - s * x1, -s * x2)
    # Joint 4: a3 along x, RotX(+pi/2).
    a = _DH_A[3]
    p0, p1, p2 = p0 + a * x0, p1 + a * x1, p2 + a * x2
    y0, y1, y2, z0, z1, z2 = z0, z1, z2, -y0, -y1, -y2
    c, s = _cos(q3), _sin(q3)
    x0, x1, x2, y0, y1, y2 = (c * x0 + s * y0, c * x1 + s * y1, c * x2 + s * y2,
                              c * y0 - s * x0, c * y1 - s * x1, c * y2 - s * x2)
    # Joint 5: a4 along x, RotX(-pi/2) (y' = -z, z' = y), d5 along z'.
    a, d = _DH_A[4], _DH_D[4]
    p0, p1, p2 = p0 + a * x0, p1 + a * x1, p2 + a * x2
    y0, y1, y2, z0, z1, z2 = -z0, -z1, -z2, y0, y1, y2
    p0, p1, p2 = p0 + d * z0, p1 + d * z1, p2 + d * z2
    c, s = _cos(q4), _sin(q4)
    x0, x1, x2, y0, y1, y2 = (c * x0 + s * y0, c * x1 + s * y1, c * x2 + s * y2,
                              c * y0 - s * x0, c * y1 - s * x1, c * y2 - s * x2)
    # Joint 6: RotX(+pi/2).
    y0, y1, y2 = z0, z1, z2
    c, s = _cos(q5), _sin(q5)
    x0, x1, x2, y0, y1, y2 = (c * x0 + s * y0, c * x1 + s * y1, c * x2 + s * y2,
                              c * y0 - s * x0, c * y1 - s * x1, c * y2 - s * x2)
    # Joint 7: a6 along x, RotX(+pi/2): the final z axis is -y; the point lies on it.
    a, e = _DH_A[6], EE_OFFSET
    return p0 + a * x0 - e * y0, p1 + a * x1 - e * y1, p2 + a * x2 - e * y2


def random_configurations(rng: np.random.Generator, n: int, q_min: np.ndarray,
                          q_max: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """`n` joint configurations uniform within [q_min, q_max] shrunk by `margin` [rad]."""
    lo, hi = np.asarray(q_min) + margin, np.asarray(q_max) - margin
    return rng.uniform(lo, hi, size=(n, len(lo)))


class FrankaKinematics:
    """The Franka chain above as a `robots.robot.Kinematics`."""

    def ee_position(self, q: Sequence[float]) -> tuple[float, float, float]:
        """`fk_single`."""
        return fk_single(q)

    def ee_positions(self, q: np.ndarray) -> np.ndarray:
        """`fk`."""
        return fk(q)

    def ee_frame(self, q: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`fk_frame`: position, hand rotation, Jacobian (Cartesian actions need them)."""
        return fk_frame(q)


FRANKA = FrankaKinematics()


class MujocoKinematics:
    """A site of an MJCF model (default `ee`), placed by `mj_kinematics` on a private MjData.

    The model's first `dof` position coordinates are the arm's joints, in the profile's order.
    """

    def __init__(self, model_path: str, dof: int, site: str = 'ee') -> None:
        import mujoco

        self._mujoco = mujoco
        self.model = mujoco.MjModel.from_xml_path(str(model_path))
        self.data = mujoco.MjData(self.model)
        self.site = self.model.site(site).id
        self.dof = int(dof)

    def ee_position(self, q: Sequence[float]) -> tuple[float, float, float]:
        """The site's position at joint angles `q` (base frame: the model's world)."""
        self.data.qpos[:self.dof] = q
        self._mujoco.mj_kinematics(self.model, self.data)
        x, y, z = self.data.site_xpos[self.site]
        return float(x), float(y), float(z)

    def ee_positions(self, q: np.ndarray) -> np.ndarray:
        """Vectorized over leading axes by a loop (MuJoCo takes one configuration at a time)."""
        q = np.asarray(q, np.float64)
        flat = q.reshape(-1, q.shape[-1])
        out = np.array([self.ee_position(x) for x in flat])
        return out.reshape(*q.shape[:-1], 3)



HAND_YAW = -math.pi / 4
"""The hand's mounting yaw about the flange z axis (franka_description's panda_hand_joint)."""


def fk_frame(q: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """End-effector position, hand rotation and geometric Jacobian at joints `q`.

    Shapes: (3,); (3, 3), columns its x, y, z axes in the base frame; (6, 7), linear rows, then
    angular.
    The same modified-DH chain as `fk`. Joint i turns about the z axis of frame i (after the
    twist and the offset a_{i-1}); its column is z_i x (p_ee - o_i) and z_i. The hand's y axis
    is the direction the fingers open along (franka_description: finger joint axes +-y).
    """
    q = np.asarray(q, dtype=np.float64)
    if q.shape != (7,):
        raise ValueError(f'fk_frame expects 7 joint angles, got shape {q.shape}')
    x, y, z, p = np.eye(3)[0], np.eye(3)[1], np.eye(3)[2], np.zeros(3)
    axes, origins = np.empty((7, 3)), np.empty((7, 3))
    for i in range(7):
        a, d, sign = DH_A[i], DH_D[i], DH_ALPHA_SIGN[i]
        p = p + a * x
        if sign < 0:
            y, z = -z, y
        elif sign > 0:
            y, z = z, -y
        axes[i], origins[i] = z, p
        p = p + d * z
        c, s = math.cos(q[i]), math.sin(q[i])
        x, y = c * x + s * y, c * y - s * x
    ee = p + EE_OFFSET * z
    c, s = math.cos(HAND_YAW), math.sin(HAND_YAW)
    rot = np.stack([c * x + s * y, c * y - s * x, z], axis=1)
    jac = np.empty((6, 7))
    jac[:3] = np.cross(axes, ee - origins).T
    jac[3:] = axes.T
    return ee, rot, jac
