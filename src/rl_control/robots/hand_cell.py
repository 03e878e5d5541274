"""The pick-and-place cell in MuJoCo: the arm, the Franka Hand's fingers, a table and a cube.

`cell_model(profile)` assembles it from three files: the robot's arm (`profile.mjcf`, e.g.
assets/panda.xml), the hand's fingers (assets/franka_hand.xml, attached to the arm's
`panda_hand` body, whose rigid finger geoms it replaces) and the cell (assets/pick_place_cell.xml:
table and cube). The hand and the fingers collide with the table and the cube; the arm's links
collide with nothing, as in the reach model.

`CellPhysics` is a `physics.MujocoTracking` of that model (the arm tracks the shaper's reference
exactly as in reach) that also runs the hand (robots/franka_hand.py) every physics step and
measures what a Franka's collision detection sees: the external joint torques and the external
force at the end effector (`external_wrench`). libfranka estimates them from its torque sensors
(`RobotState.tau_ext_hat_filtered`, `O_F_ext_hat_K`); here they are the contact forces the
simulator applies, mapped to the joints (MuJoCo's constraint force on the arm's joints) and
summed over the hand's contacts.
"""
from __future__ import annotations

from importlib import resources
from typing import Any

import mujoco
import numpy as np

from rl_control.robots.franka_hand import HAND, FrankaHand
from rl_control.robots.physics import MujocoTracking
from rl_control.robots.tracker import PoseHistory

FINGER_JOINTS = ('panda_finger_joint1', 'panda_finger_joint2')
HAND_BODIES = ('panda_hand', 'panda_leftfinger', 'panda_rightfinger')


_PREFIX = 'attached_'
IMPRATIO = 10.0


def _asset(name: str) -> str:
    return str(resources.files('rl_control.robots') / 'assets' / name)


def cell_spec(profile: Any) -> mujoco.MjSpec:
    """The cell's model specification (compile it, or edit it first)."""
    if profile.mjcf is None:
        raise ValueError(f'the {profile.name} profile has no MuJoCo model (mjcf)')
    spec = mujoco.MjSpec.from_file(str(profile.mjcf))
    spec.option.disableflags &= ~int(mujoco.mjtDisableBit.mjDSBL_CONTACT)  # the arm has none
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    # implicitfast (the arm model's) lets a small free cube squeezed at an edge blow up; the
    # full implicit integrator keeps the velocity actuators' implicit damping and is stable
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICIT
    # MuJoCo's friction is soft: at the default impratio 1 a cube held well inside its friction
    # cone still creeps out of the fingers (measured: 2 mm/s for a 0.27 kg cube at friction
    # 0.64, 20 N, which fails "at rest"). impratio (elliptic cones only) makes the friction
    # constraints this much stiffer than the normal ones (MuJoCo docs, Modeling > Contacts;
    # mujoco_menagerie's legged models set 100 against foot slip, its issue #45); 10 stops the
    # creep without changing when a contact should slide
    spec.option.impratio = IMPRATIO
    hand = spec.body('panda_hand')
    if hand is None:
        raise ValueError(f'{profile.mjcf} has no panda_hand body to attach the fingers to')
    for geom in list(hand.geoms):
        if geom.name in ('left_finger', 'right_finger'):
            spec.delete(geom)
        else:  # the hand's palm touches the table and the cube
            geom.contype, geom.conaffinity = 1, 1
    fingers = mujoco.MjSpec.from_file(_asset('franka_hand.xml'))
    hand.add_frame().attach_body(fingers.body('fingers'), _PREFIX, '')
    for finger in ('panda_leftfinger', 'panda_rightfinger'):  # the palm holds the fingers
        spec.add_exclude(bodyname1='panda_hand', bodyname2=_PREFIX + finger)
    cell = mujoco.MjSpec.from_file(_asset('pick_place_cell.xml'))
    world = spec.worldbody.add_frame()
    for name in ('table', 'cube'):
        world.attach_body(cell.body(name), _PREFIX, '')
    for kind, refs in (('bodies', ()), ('joints', ()), ('geoms', ()), ('actuators', ('target',)),
                       ('equalities', ('name1', 'name2')),
                       ('excludes', ('bodyname1', 'bodyname2'))):
        for element in getattr(spec, kind):  # the attached files' own names and references
            for attr in ('name', *refs):
                value = getattr(element, attr)
                if value.startswith(_PREFIX):
                    setattr(element, attr, value[len(_PREFIX):])
    for src in cell.worldbody.sites:
        spec.worldbody.add_site(name=src.name, pos=src.pos, size=src.size, type=src.type,
                                rgba=src.rgba)
    cams = mujoco.MjModel.from_xml_path(_asset('pick_place_cell.xml'))  # `xyaxes` resolved
    for i, src in enumerate(cell.worldbody.cameras):
        spec.worldbody.add_camera(name=src.name, pos=src.pos, quat=cams.cam_quat[i])
    for src in cell.worldbody.lights:
        spec.worldbody.add_light(name=src.name, pos=src.pos, dir=src.dir, diffuse=src.diffuse)
    spec.visual.global_.offwidth, spec.visual.global_.offheight = 640, 480
    return spec


def cell_model(profile: Any) -> mujoco.MjModel:
    """The compiled cell (see `cell_spec`)."""
    return cell_spec(profile).compile()


class CellPhysics(MujocoTracking):
    """The arm tracking its reference, the hand running its actions, the cube (module doc)."""

    def __init__(self, profile: Any, kp: float = 50.0, timestep: float = 1e-3,
                 hand_latency_s: float = 0.05) -> None:
        super().__init__(profile, kp, timestep, model=cell_model(profile))
        m = self.sim.model
        self.hand = FrankaHand(HAND, hand_latency_s)
        self._fingers = [m.joint(n).qposadr[0] for n in FINGER_JOINTS]
        self._finger_dofs = [m.joint(n).dofadr[0] for n in FINGER_JOINTS]
        self._hand_act = m.actuator('hand').id
        cube = m.joint('cube')
        self._cube_q, self._cube_v = cube.qposadr[0], cube.dofadr[0]
        self._cube_body = m.body('cube').id
        self._cube_geom = m.geom('cube').id
        self._pads = (m.geom('left_pad').id, m.geom('right_pad').id)
        self._hand_bodies = {m.body(n).id for n in HAND_BODIES}
        self._goal_site = m.site('goal').id
        self._cube_mass = float(m.body_mass[self._cube_body])
        self._cube_friction = m.geom_friction[self._cube_geom].copy()
        self._force = np.zeros(6)
        self.history = PoseHistory()  # the cube's true pose, for a tracker (robots/tracker.py)
        self.t = 0.0

    # -- episodes ------------------------------------------------------------------------------
    def reset(self, q: np.ndarray, width: float = HAND.max_width,
              cube: np.ndarray | None = None) -> None:
        """The arm at rest at `q`, the hand open at `width`, the cube at rest at `cube` (7)."""
        self.sim.reset(np.asarray(q, dtype=np.float64))
        d = self.sim.data
        d.qpos[self._fingers] = width / 2
        if cube is not None:  # x, y, z, qx, qy, qz, qw -> MuJoCo's x, y, z, qw, qx, qy, qz
            cube = np.asarray(cube, np.float64)
            d.qpos[self._cube_q:self._cube_q + 7] = np.r_[cube[:3], cube[6], cube[3:6]]
        self.hand.reset(width)
        d.ctrl[self._hand_act] = width / 2
        self.t = 0.0
        mujoco.mj_forward(self.sim.model, d)
        self.history.clear()
        self.history.add(0.0, self.cube_pose())

    def set_cube(self, mass: float, friction: float) -> None:
        """Set this episode's cube: mass [kg] and sliding friction coefficient."""
        m = self.sim.model
        scale = mass / m.body_mass[self._cube_body]
        m.body_mass[self._cube_body] = mass
        m.body_inertia[self._cube_body] *= scale
        m.geom_friction[self._cube_geom, 0] = friction

    def set_goal_marker(self, goal: np.ndarray) -> None:
        """Where the (visual only) goal marker is drawn."""
        self.sim.model.site_pos[self._goal_site] = goal

    # -- stepping ------------------------------------------------------------------------------
    def step(self, dt: float) -> None:
        """Advance `dt`: the hand's action and servo, then the physics."""
        d, act = self.sim.data, self._hand_act
        target, force = self.hand.update(self.t, self.width(), dt)
        d.ctrl[act] = target / 2
        self.sim.model.actuator_forcerange[act] = (-force, force)
        super().step(dt)
        self.t = round(self.t + dt, 9)
        self.history.add(self.t, self.cube_pose())

    # -- measurements --------------------------------------------------------------------------
    def width(self) -> float:
        """The hand's opening [m]: the sum of the finger positions."""
        q = self.sim.data.qpos
        return float(q[self._fingers[0]] + q[self._fingers[1]])

    def finger_state(self) -> tuple[np.ndarray, np.ndarray]:
        """Finger joint positions and velocities."""
        d = self.sim.data
        return d.qpos[self._fingers].copy(), d.qvel[self._finger_dofs].copy()

    def cube_pose(self) -> np.ndarray:
        """The cube's pose in the base frame: x, y, z, qx, qy, qz, qw (a PoseStamped's order)."""
        p = self.sim.data.qpos[self._cube_q:self._cube_q + 7]
        return np.r_[p[:3], p[4:7], p[3]]

    def cube_velocity(self) -> np.ndarray:
        """The cube's linear velocity [m/s] (base frame)."""
        return self.sim.data.qvel[self._cube_v:self._cube_v + 3].copy()

    def contacts(self) -> dict[str, Any]:
        """Which pads touch the cube, whether the cube touches the table, the hand the table."""
        m, d = self.sim.model, self.sim.data
        pads, cube_table, hand_table = [False, False], False, False
        table = m.geom('table_top').id
        for i in range(d.ncon):
            g1, g2 = int(d.contact.geom1[i]), int(d.contact.geom2[i])
            pair = {g1, g2}
            if self._cube_geom in pair:
                for k, pad in enumerate(self._pads):
                    pads[k] = pads[k] or pad in pair
                cube_table = cube_table or table in pair
            elif table in pair:
                other = g2 if g1 == table else g1
                hand_table = hand_table or int(m.geom_bodyid[other]) in self._hand_bodies
        return {'pads': tuple(pads), 'cube_table': cube_table, 'hand_table': hand_table}

    def external_wrench(self) -> tuple[np.ndarray, np.ndarray]:
        """(external joint torques of the arm [Nm], external force on the hand [N], base frame).

        The joint torques are MuJoCo's constraint forces on the arm's joints (contacts, plus
        joint-range limits, which the shaper keeps the arm away from); the force is the sum
        over every contact of a hand body with something not of the hand (a grasped cube's
        squeeze cancels between the pads; its weight does not).
        """
        m, d = self.sim.model, self.sim.data
        tau = d.qfrc_constraint[:self.n].copy()
        force, f6 = np.zeros(3), self._force
        for i in range(d.ncon):
            c = d.contact[i]
            b1, b2 = int(m.geom_bodyid[c.geom1]), int(m.geom_bodyid[c.geom2])
            in1, in2 = b1 in self._hand_bodies, b2 in self._hand_bodies
            if in1 == in2:
                continue
            mujoco.mj_contactForce(m, d, i, f6)
            world = c.frame.reshape(3, 3).T @ f6[:3]  # contact frame -> world, on body 2
            force += world if in2 else -world
        return tau, force

    # -- snapshots -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """MuJoCo state, hand, cube parameters, clock and pose history (exact resume)."""
        m = self.sim.model
        return {**super().state_dict(), 'hand': self.hand.state_dict(), 't': self.t,
                'history': (list(self.history.times), [p.copy() for p in self.history.poses]),
                'cube': (float(m.body_mass[self._cube_body]),
                         m.body_inertia[self._cube_body].copy(),
                         float(m.geom_friction[self._cube_geom, 0])),
                'forcerange': m.actuator_forcerange[self._hand_act].copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of state_dict."""
        super().load_state_dict(state)
        m = self.sim.model
        self.hand.load_state_dict(state['hand'])
        self.t = state['t']
        self.history.clear()  # the tracker reads past poses: they are state too
        for t, pose in zip(*state['history'], strict=True):
            self.history.add(t, pose)
        mass, inertia, friction = state['cube']
        m.body_mass[self._cube_body], m.body_inertia[self._cube_body] = mass, inertia
        m.geom_friction[self._cube_geom, 0] = friction
        m.actuator_forcerange[self._hand_act] = state['forcerange']
