"""sim_robot's pick-and-place cell without ROS: the hand, the cube, its tracker, contact reflexes.

envs/sim_core.py runs a task with an object (`task.object_message`, envs/pick_place_task.py)
on this cell instead of the bare arm. The arm is still `robots.franka.FrankaArm` (the same
controllers, 1 kHz libfranka checks and reflexes); only its physics is the cell
(robots/hand_cell.py `CellPhysics`: arm, Franka Hand fingers, table and a 4 cm cube). What the
cell adds, each as the real stack has it:
- the hand: franka_gripper's Move and Grasp actions (robots/franka_hand.py: latency, finger
  speed, the newest waiting action runs after the running one), taken from the policy server's
  JSON hand commands (docs/pick_place.md; `GripperCommand.from_json` refuses bad ones);
- its joint state as franka_gripper publishes it (franka_ros2 gripper_action_server.cpp
  `publishGripperState`: each finger joint at width / 2, velocity and effort 0);
- the cube's pose as a tracker publishes it (robots/tracker.py `ObjectTracker`: frames at
  `rate_hz`, each stamped with its capture time and delivered `delay_s` later, with position
  and orientation noise), one message per delivered frame;
- the robot's collision reflex (robots/contact.py, franka_example_controllers' thresholds):
  external joint torques or hand force above the upper threshold raise `joint_reflex` /
  `cartesian_reflex`, which the arm handles as any reflex (it stops until error recovery);
- the episode's measures (envs/pick_metrics.py `PickTrace`: held success, grasp, lift, drop,
  contact reflexes), sampled every control period from the true state.
Cell time (`CellPhysics.t`, the tracker's and the hand's clock) restarts at each episode; grid
time = `t0` + cell time.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from rl_control.envs import pick_metrics
from rl_control.robots.contact import DEFAULT as COLLISION
from rl_control.robots.franka_hand import HAND, GripperCommand
from rl_control.robots.hand_cell import CellPhysics
from rl_control.robots.tracker import ObjectTracker


class SimCell:
    """The cell of one sim_robot (module docstring); `p` is a `ros.params.SimParams`."""

    def __init__(self, profile: Any, p: Any, rng: np.random.Generator) -> None:
        self.profile = profile
        self.physics = CellPhysics(profile, timestep=1e-3, hand_latency_s=p.hand_latency_s)
        self.tracker = ObjectTracker(p.tracker_rate_hz, p.tracker_delay_s,
                                     p.tracker_position_noise, p.tracker_orientation_noise, rng)
        self.collision = COLLISION
        self.t0 = 0.0
        self.frame: int | None = None  # the newest tracker frame handed out
        self.muted = False  # fault injection: the tracker stopped publishing
        self.peak = 0.0  # largest external load / its reflex threshold since the last sample
        self.rejected = 0  # hand commands refused (bad JSON or outside the hand's limits)
        self.commands = 0  # hand commands taken (all episodes)
        self.last_error: str | None = None
        self._cube = np.zeros(3)
        self._start = (0, 0)

    def reset(self, t0: float, q: np.ndarray, cube: np.ndarray) -> None:
        """An episode starts at grid time `t0`: arm at rest at `q`, hand open, cube at `cube`.

        As every training episode starts (envs/franka_pick_place.py, `start_grasped` 0).
        """
        self.physics.reset(q, HAND.max_width, cube)
        self.tracker.reset()
        self.t0, self.frame, self.peak = float(t0), None, 0.0
        self._cube = self.physics.cube_pose()[:3]
        self._start = (self.commands, self.rejected)

    # -- the hand -------------------------------------------------------------------------------
    def hand_command(self, t: float, text: str) -> str | None:
        """A hand command (the server's JSON) arriving at grid time `t`; why refused, if so."""
        try:
            cmd = GripperCommand.from_json(text)
        except (TypeError, ValueError) as exc:
            self.rejected += 1
            self.last_error = str(exc)
            return self.last_error
        self.physics.hand.command(max(t - self.t0, self.physics.t), cmd)
        self.commands += 1
        return None

    def gripper_state(self) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray]:
        """(names, q, qd, effort) of the finger joints as franka_gripper publishes them."""
        names = self.profile.finger_joint_names
        k = len(names)
        return names, np.full(k, self.physics.width() / 2), np.zeros(k), np.zeros(k)

    # -- every millisecond ----------------------------------------------------------------------
    def contact_reflex(self) -> str | None:
        """The collision reflex the external wrench raises now (None: none); noted for sampling."""
        tau, force = self.physics.external_wrench()
        c = self.collision
        self.peak = max(self.peak, float(np.max(np.abs(tau) / c.upper_torque)),
                        float(np.max(np.abs(force) / c.upper_force)))
        return c.reflex(tau, force)

    def object_frame(self) -> tuple[float, np.ndarray] | None:
        """(grid capture time, pose) of a tracker frame delivered since the last call, if any.

        None while muted, or when no new frame was delivered (one message per frame). The first
        frame of an episode is captured at its start and published `delay_s` later: a frame
        is never older or newer than the tracker's delay says.
        """
        k = self.tracker.frame_index(self.physics.t)
        if k == self.frame or k < 0 or self.muted:
            return None
        self.frame = k
        stamp, pose = self.tracker.measure(self.physics.t, self.physics.history)
        return self.t0 + stamp, pose

    # -- measures -------------------------------------------------------------------------------
    def sample(self, trace: pick_metrics.PickTrace, t: float, q: np.ndarray, qd: np.ndarray,
               period: float) -> None:
        """One control period's sample of the true state into `trace` (envs/pick_metrics.py)."""
        cube = self.physics.cube_pose()[:3]
        speed = float(np.linalg.norm(cube - self._cube)) / period  # as the env: over a period
        self._cube = cube
        ee = np.array(self.profile.ee_position(np.asarray(q, np.float64).tolist()))
        held = pick_metrics.grasped(self.physics.contacts()['pads'], self.physics.width())
        trace.add(t, cube, speed, ee, qd, held, self.peak > 1.0)
        self.peak = 0.0

    def result(self) -> dict[str, Any]:
        """The hand's part of an episode result: commands taken and refused, final width."""
        commands, rejected = self._start
        return {'hand_commands': self.commands - commands,
                'hand_rejected': self.rejected - rejected,
                'final_width': self.physics.width(),
                'final_cube': [float(v) for v in self.physics.cube_pose()]}

    def report(self) -> dict[str, Any]:
        """~/robot_state's cell fields."""
        hand = self.physics.hand
        return {'gripper_width': round(self.physics.width(), 6),
                'hand_commands': self.commands, 'hand_rejected': self.rejected,
                'hand_busy': hand.busy, 'hand_grasped': hand.grasped,
                'hand_error': self.last_error, 'object_pose_muted': self.muted}
