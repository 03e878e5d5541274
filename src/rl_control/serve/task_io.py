"""What a task's policy reads and writes besides the arm's joint states and the goal (pure).

A reach policy observes the arm and a goal and commands joint velocities. A pick-and-place
policy (`rl_control/FrankaPickPlace-v1`, envs/franka_pick_place.py) also observes the hand's
width and last command and the object's pose, and its action is an end-effector velocity plus
the hand's open/close entry. `TaskIO` is that difference, built from the bundle's contract,
so the serving loop (serve/loop.py) stays one loop for every task:
- inputs: the object pose (serve/object_pose.py) and the finger joints (serve/hand.py), each
  with its watchdog; `problem` is why the arm must brake (the hand is left alone);
- the observation: `build_observation` with the arm joints and the fingers by name and the
  named inputs `object_pose` and `gripper_command`, exactly what the env passes it
  (`FrankaPickPlaceEnv._observe`: the joint state with the finger joints, the tracker's pose,
  the switch's value);
- the action: `action_to_command` on the MEASURED joints (an `ee_velocity` action is turned
  into joint velocities through the served robot's kinematics, contract/cartesian.py, as the
  env does on its own joints each step), then the loop's usual path (safety gate, shaper,
  command interface); the gripper entry goes to `HandCommands` only on ticks that may move.
For a reach bundle nothing is added: the same call as before, no extra inputs, no gripper.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rl_control.contract import action_to_command, gripper_entry
from rl_control.robots.franka_hand import GripperCommand
from rl_control.serve.hand import GRIPPER_REASONS, FingerState, HandCommands
from rl_control.serve.object_pose import OBJECT_REASONS, ObjectLimits, ObjectPoseInput


class TaskIO:
    """The task's inputs and outputs beyond the arm's (module docstring)."""

    def __init__(self, obs_spec: Any, act_spec: Any, profile: Any, profile_idx: np.ndarray,
                 settings: Any, base_frame: str, period_s: float) -> None:
        self.act_spec, self.profile = act_spec, profile
        terms = obs_spec.terms
        if act_spec.cartesian is not None and not np.array_equal(
                profile_idx, np.arange(profile.dof)):
            raise ValueError(f'an {act_spec.type} action needs the {profile.name} arm joints in '
                             f'the profile\'s order {list(profile.joint_names)} (robot_joints)')
        if 'gripper_command' in terms and act_spec.gripper is None:
            raise ValueError('the observation has gripper_command but the action no gripper '
                             'entry: nothing would say what the hand was told')
        fingers = profile.finger_joint_names
        if 'gripper_width' in terms and not fingers:
            raise ValueError(f'gripper_width needs finger joints; the {profile.name} profile '
                             'has no gripper')
        self.object = (ObjectPoseInput(base_frame, ObjectLimits(
            settings.object_stale_s, settings.max_object_age_s, settings.backstop_s,
            period_s)) if 'object_pose' in terms else None)
        self.fingers = (FingerState(fingers, profile.finger_position, settings.gripper_stale_s,
                                    settings.backstop_s, period_s)
                        if 'gripper_width' in terms else None)
        self.hand = HandCommands(act_spec.gripper) if act_spec.gripper is not None else None
        self.full_q = profile.home.astype(np.float64)  # the kinematics' joint vector

    @property
    def extra(self) -> bool:
        """Whether the task reads or writes anything besides the arm and the goal."""
        return self.object is not None or self.fingers is not None or self.hand is not None

    # -- inputs -------------------------------------------------------------------------------
    def on_state(self, now: float, wall: float, names: Sequence[str], pos: np.ndarray
                 ) -> str | None:
        """The finger joints of a joint state (any message; None: taken or none in it)."""
        return None if self.fingers is None else self.fingers.update(now, wall, names, pos)

    def on_object_pose(self, now: float, wall: float, frame: str, pose: Any,
                       stamp: float = 0.0) -> str | None:
        """An object pose; why refused (None: taken, or the policy observes no object)."""
        if self.object is None:
            return None
        return self.object.update(now, wall, frame, pose, stamp)

    def problem(self, now: float, wall: float) -> str | None:
        """Why the arm must brake now (None: the task's inputs are good)."""
        if self.object is not None:
            why = self.object.problem(now, wall)
            if why is not None:
                return why
        if self.fingers is not None:
            return self.fingers.problem(now, wall)
        return None

    def detail(self, reason: str) -> str | None:
        """The text behind one of this module's reasons (for /diagnostics)."""
        if reason in OBJECT_REASONS and self.object is not None:
            return self.object.last_error if reason == 'bad_object_pose' else None
        if reason in GRIPPER_REASONS and self.fingers is not None:
            return self.fingers.last_error
        return None

    # -- the observation and the action -------------------------------------------------------
    def observation_args(self, joints: Sequence[str], q: np.ndarray, qd: np.ndarray
                         ) -> tuple[Sequence[str], np.ndarray, np.ndarray,
                                    dict[str, Any] | None]:
        """(names, positions, velocities, inputs) for `build_observation` (module docstring)."""
        if not self.extra:
            return joints, q, qd, None
        inputs: dict[str, Any] = {}
        if self.fingers is not None:
            joints = [*joints, *self.fingers.names]
            q = np.r_[q, self.fingers.q]
            qd = np.r_[qd, np.zeros(len(self.fingers.names))]
        if self.object is not None:
            inputs['object_pose'] = self.object.pose
        if self.hand is not None:
            inputs['gripper_command'] = self.hand.value
        return joints, q, qd, inputs

    def command(self, action: np.ndarray, q: np.ndarray) -> np.ndarray:
        """The joint velocity target (policy order) for `action` at the measured joints `q`."""
        if self.act_spec.cartesian is None:
            return action_to_command(self.act_spec, action)
        self.full_q[:] = q  # policy order is the profile's (checked at construction)
        return action_to_command(self.act_spec, action, self.full_q, self.profile)

    def gripper_entry(self, action: np.ndarray) -> float | None:
        """The action's gripper entry (None: none)."""
        return gripper_entry(self.act_spec, action)

    def gripper(self, g: float | None) -> GripperCommand | None:
        """The hand's command for a tick that may move (None: no change, or no hand)."""
        if g is None or self.hand is None:
            return None
        return self.hand.update(g)

    def values(self, now: float) -> dict[str, Any]:
        """/diagnostics values (none for a reach bundle)."""
        out: dict[str, Any] = {}
        if self.object is not None:
            out.update(self.object.values(now))
        if self.fingers is not None:
            out['gripper_width'] = self.fingers.width
        if self.hand is not None:
            out.update(self.hand.values())
        return out
