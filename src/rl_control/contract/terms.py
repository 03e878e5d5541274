"""Observation terms: the pieces of a policy's observation, each built from robot inputs.

A term has a size (for a given `ObservationSpec`: joint terms have one entry per joint) and a
`fill` that writes it from what one `build_observation` call was given (`Source`): the joint
state picked in policy order, the goal, the recent actions, and named extra inputs. The terms a
task observes are named in policy.yaml in order; a term added here (`register_term`) can be
observed by a new task without touching the builder (docs/ARCHITECTURE.md, "Add a task").

`object_pose` and `gripper_width` are for manipulation tasks: an object's pose in the robot
base frame (position, then orientation as a unit quaternion x, y, z, w; a PoseStamped's
fields), given as the input `object_pose`, and the hand's opening, the sum of the gripper's
finger positions in the joint state (franka_gripper publishes width / 2 per finger). The
quaternion is written with w >= 0 (q and -q are one rotation; the policy sees one of them).
`gripper_command` is the hand's last command (input `gripper_command`: 1 closed, -1 open;
contract/gripper.py): the hand is slow, so what it was told is state its width does not show
yet.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rl_control.contract.errors import ContractError

# last_action: the velocity target the arm is being shaped toward, as an action in [-1, 1]
# (target / action scale; 0 while braking); last_action_2 and _3 the two before it. With
# shaped, delayed dynamics the measured state alone does not say where the arm is headed: a
# command takes effect up to lead + latency later, so the targets still on their way are state.
ACTION_TERMS: tuple[str, ...] = ('last_action', 'last_action_2', 'last_action_3')


class Source:
    """What one `build_observation` call was given; `q` is in policy joint order."""

    __slots__ = ('spec', 'names', 'positions', 'velocities', 'idx', 'q', 'goal', 'actions',
                 'inputs')

    def __init__(self, spec: Any, names: Sequence[str], positions: np.ndarray,
                 velocities: Sequence[float], idx: np.ndarray, goal: Any,
                 actions: Sequence[Sequence[float]], inputs: Mapping[str, Any]) -> None:
        self.spec, self.names, self.positions, self.velocities = spec, names, positions, velocities
        self.idx, self.q = idx, positions[idx]
        self.goal, self.actions, self.inputs = goal, actions, inputs


@dataclass(frozen=True)
class Term:
    """One observation term: its size for a spec and how it is written."""

    name: str
    size: Callable[[Any], int]
    """spec -> number of entries."""
    fill: Callable[[np.ndarray, Source], None]
    """Write the term into its slice of the (float32) observation."""
    needs_robot: bool = False
    """Built from the robot profile (its kinematics or gripper)."""


def _joints(spec: Any) -> int:
    return len(spec.joint_names)


def _joint_pos(out: np.ndarray, src: Source) -> None:
    out[:] = src.q


def _joint_vel(out: np.ndarray, src: Source) -> None:
    n = len(src.names)
    vel = np.asarray(src.velocities, dtype=np.float64)
    if vel.shape != (n,):
        raise ContractError(f'{vel.size} joint velocities for {n} joint names')
    out[:] = vel[src.idx]


def _ee_pos(out: np.ndarray, src: Source) -> None:
    order = src.spec.kinematics_order  # None: the policy's joint order is the robot's
    q = src.q if order is None else src.q[order]
    out[:] = src.spec.profile.kinematics.ee_position(q.tolist())


def _goal(out: np.ndarray, src: Source) -> None:
    if src.goal is None:
        raise ContractError('observation has a goal term but no goal was given')
    g = np.asarray(src.goal, dtype=np.float64)
    if g.shape != (3,):
        raise ContractError(f'goal must have 3 entries (x, y, z), got shape {g.shape}')
    out[:] = g


def _last_action(k: int) -> Callable[[np.ndarray, Source], None]:
    def fill(out: np.ndarray, src: Source) -> None:
        if k < len(src.actions):
            out[:] = np.clip(np.asarray(src.actions[k], dtype=np.float64), -1.0, 1.0)
        else:
            out[:] = 0.0
    return fill


def _object_pose(out: np.ndarray, src: Source) -> None:
    pose = src.inputs.get('object_pose')
    p = None if pose is None else np.asarray(pose, dtype=np.float64)
    if p is None or p.shape != (7,) or not np.all(np.isfinite(p)):
        raise ContractError('object_pose needs the input object_pose: 7 finite numbers '
                            f'(x, y, z, qx, qy, qz, qw), got {pose!r}')
    out[:] = p
    if p[6] < 0:
        out[3:] = -p[3:]


def _gripper_command(out: np.ndarray, src: Source) -> None:
    value = src.inputs.get('gripper_command')
    if value is None or not np.isfinite(value):
        raise ContractError(f'gripper_command needs the input gripper_command (1 closed, -1 '
                            f'open), got {value!r}')
    out[:] = float(value)


def _gripper_width(out: np.ndarray, src: Source) -> None:
    fingers = src.spec.profile.finger_joint_names
    where = {n: i for i, n in enumerate(src.names)}
    missing = [n for n in fingers if n not in where]
    if not fingers or missing:
        raise ContractError(f'gripper_width needs the finger joints {list(fingers)} in the '
                            f'joint state; received names {list(src.names)}')
    out[:] = sum(float(src.positions[where[n]]) for n in fingers)


TERMS: dict[str, Term] = {}


def register_term(term: Term) -> Term:
    """Make `term` observable by name (a second term of the same name is refused)."""
    if TERMS.get(term.name, term) is not term:
        raise ValueError(f'an observation term called {term.name!r} is registered already')
    TERMS[term.name] = term
    return term


for _term in (Term('joint_pos', _joints, _joint_pos), Term('joint_vel', _joints, _joint_vel),
              Term('ee_pos', lambda spec: 3, _ee_pos, needs_robot=True),
              Term('goal', lambda spec: 3, _goal),
              *(Term(name, _joints, _last_action(k)) for k, name in enumerate(ACTION_TERMS)),
              Term('object_pose', lambda spec: 7, _object_pose),
              Term('gripper_width', lambda spec: 1, _gripper_width, needs_robot=True),
              Term('gripper_command', lambda spec: 1, _gripper_command)):
    register_term(_term)
