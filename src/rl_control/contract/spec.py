"""The observation/action contract shared by training envs and the policy server (pure numpy).

Why one module: "one policy, sim or hardware" holds only if the vector a policy sees is built
by the same function from the same inputs in both places. Inputs are what a real robot's topics
give — joint names, positions, velocities (any order, extra joints allowed) — plus the goal in
the robot base frame; everything else (the end-effector position) is derived from the robot
profile's kinematics. The terms themselves are contract/terms.py's. The action side maps the
policy's [-1, 1] box to joint commands by the same rule (contract/actions.py: the types).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
import math
from typing import Any

import numpy as np

from rl_control.contract.actions import ACTION_TYPES
from rl_control.contract.cartesian import CartesianConfig, joint_velocity
from rl_control.contract.errors import ContractError
from rl_control.contract.gripper import GripperSpec
from rl_control.contract.terms import ACTION_TERMS, TERMS, Source
from rl_control.robots.profiles import get_profile, robot_with_joints
from rl_control.robots.robot import RobotProfile

__all__ = ['ACTION_TERMS', 'ActionSpec', 'ContractError', 'ObservationSpec', 'RobotContract',
           'action_to_command', 'build_observation', 'contract_from_yaml', 'contract_to_yaml',
           'gripper_entry']


@dataclass(frozen=True)
class ObservationSpec:
    """Which joints (in policy order) and which terms (in order) make the observation vector.

    `robot` names the profile whose kinematics and gripper the terms that need them use
    (`ee_pos`, `gripper_width`); None: the registered robot with these joint names.
    """

    joint_names: tuple[str, ...]
    terms: tuple[str, ...]
    robot: str | None = None
    _index_cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    _layout: tuple = field(default=(), init=False, repr=False, compare=False)
    _size: int = field(default=0, init=False, repr=False, compare=False)
    profile: RobotProfile | None = field(default=None, init=False, repr=False, compare=False)
    kinematics_order: np.ndarray | None = field(default=None, init=False, repr=False,
                                                compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, 'joint_names', tuple(self.joint_names))
        object.__setattr__(self, 'terms', tuple(self.terms))
        bad = [t for t in self.terms if t not in TERMS]
        if bad:
            raise ContractError(f'unknown observation term(s) {bad}; known: {list(TERMS)}')
        if len(set(self.terms)) != len(self.terms):
            raise ContractError(f'observation terms repeat: {list(self.terms)}')
        try:
            profile = (get_profile(self.robot) if self.robot is not None
                       else robot_with_joints(self.joint_names))
        except ValueError as exc:
            raise ContractError(str(exc)) from None
        object.__setattr__(self, 'profile', profile)
        need = [t for t in self.terms if TERMS[t].needs_robot]
        if need and profile is None:
            raise ContractError(f'{need} need a robot profile (kinematics, gripper): the '
                                f'joints {list(self.joint_names)} are no registered robot\'s')
        kin_order = None  # policy order -> the kinematics' (None: the same)
        if 'ee_pos' in self.terms:
            if len(self.joint_names) != profile.dof:
                raise ContractError(f'ee_pos needs the {profile.dof} arm joints of the '
                                    f'{profile.name}, got {len(self.joint_names)} joint names')
            if (set(self.joint_names) == set(profile.joint_names)
                    and self.joint_names != profile.joint_names):
                kin_order = np.array([self.joint_names.index(n) for n in profile.joint_names])
        object.__setattr__(self, 'kinematics_order', kin_order)
        # (term, slice) in vector order and the total size, computed once for
        # build_observation instead of per call.
        layout, start = [], 0
        for t in self.terms:
            layout.append((TERMS[t].fill, slice(start, start + self.term_size(t))))
            start += self.term_size(t)
        object.__setattr__(self, '_layout', tuple(layout))
        object.__setattr__(self, '_size', start)

    def term_size(self, term: str) -> int:
        """Length of one term (joint terms: one entry per joint)."""
        return TERMS[term].size(self)

    @property
    def size(self) -> int:
        """Length of the observation vector."""
        return sum(self.term_size(t) for t in self.terms)

    def term_slice(self, term: str) -> slice:
        """Where `term` lies in the vector (e.g. to read ee_pos back without a second FK)."""
        start = 0
        for t in self.terms:
            if t == term:
                return slice(start, start + self.term_size(t))
            start += self.term_size(t)
        raise ContractError(f'observation has no term {term!r}; terms: {list(self.terms)}')

    def without(self, term: str) -> ObservationSpec:
        """The same spec minus one term (the env's `observation` is the contract minus goal)."""
        return ObservationSpec(self.joint_names, tuple(t for t in self.terms if t != term),
                               self.robot)

    def indices(self, names: Sequence[str]) -> np.ndarray:
        """Index of each policy joint in `names`; cached per names tuple (1 kHz callers)."""
        key = tuple(names)
        idx = self._index_cache.get(key)
        if idx is None:
            where = {n: i for i, n in enumerate(key)}
            missing = [n for n in self.joint_names if n not in where]
            if missing:
                raise ContractError(
                    f'joint state lacks joint(s) {missing}; received names {list(key)}')
            idx = np.array([where[n] for n in self.joint_names], dtype=np.intp)
            if len(self._index_cache) > 64:   # names lists of one robot rarely vary; bound it
                self._index_cache.clear()
            self._index_cache[key] = idx
        return idx


@dataclass(frozen=True, eq=False)
class ActionSpec:
    """How a policy action in [-1, 1] becomes a joint command: clip(scale * a, low, high).

    `deadband` in [0, 1) and `exponent` >= 1 shape each entry of the action first:
    a -> sign(a) * (max(|a| - deadband, 0) / (1 - deadband)) ** exponent. Every |a| <= deadband
    commands exactly zero, small actions command small speeds (an RC transmitter's "expo"), and
    the full range [-1, 1] stays reachable. Why: a policy (stochastic, as SAC's, or not) can
    only stop a joint by hitting zero, and near its goal a linear map turns every small error of
    its output into motion; shaped, "stay" is a region of the action box and the arm can rest.

    `scale`, `low` and `high` are per joint: the joint command's scale and clamps. An
    `ee_velocity` action has 3 arm entries (an end-effector velocity, `cartesian`'s settings);
    `gripper` adds one last entry, the hand's open/close switch (contract/gripper.py).
    """

    type: str
    joint_names: tuple[str, ...]
    scale: np.ndarray
    low: np.ndarray
    high: np.ndarray
    deadband: float = 0.0
    exponent: float = 1.0
    gripper: GripperSpec | None = None
    cartesian: CartesianConfig | None = None

    def __post_init__(self) -> None:
        if self.type not in ACTION_TYPES:
            raise ContractError(f'action.type {self.type!r} is not one of {list(ACTION_TYPES)}')
        if not (isinstance(self.deadband, int | float) and 0.0 <= self.deadband < 1.0):
            raise ContractError(f'action.deadband must be in [0, 1), got {self.deadband!r}')
        object.__setattr__(self, 'deadband', float(self.deadband))
        if not (isinstance(self.exponent, int | float) and 1.0 <= self.exponent <= 5.0):
            raise ContractError(f'action.exponent must be in [1, 5], got {self.exponent!r}')
        object.__setattr__(self, 'exponent', float(self.exponent))
        object.__setattr__(self, 'joint_names', tuple(self.joint_names))
        n = len(self.joint_names)
        for name in ('scale', 'low', 'high'):
            arr = np.asarray(getattr(self, name), dtype=np.float64)
            if arr.shape != (n,):
                raise ContractError(f'action.{name} has shape {arr.shape}, expected ({n},)')
            if not np.all(np.isfinite(arr)):
                raise ContractError(f'action.{name} is not finite: {arr.tolist()}')
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        if np.any(self.low > self.high):
            raise ContractError('action.low exceeds action.high for some joint')
        kind = ACTION_TYPES[self.type]
        if kind.cartesian and self.cartesian is None:
            object.__setattr__(self, 'cartesian', CartesianConfig())
        if not kind.cartesian and self.cartesian is not None:
            raise ContractError(f'action.cartesian is for ee_velocity actions, not {self.type}')
        arm = kind.arm_size(n)
        object.__setattr__(self, 'arm_size', arm)
        # The [-1, 1] box as arrays: array-array ufuncs skip the scalar conversion per call.
        object.__setattr__(self, '_minus_one', np.full(arm, -1.0))
        object.__setattr__(self, '_plus_one', np.full(arm, 1.0))

    @property
    def size(self) -> int:
        """Action dimension: the arm's entries, then the gripper's."""
        return self.arm_size + (self.gripper is not None)


@dataclass(frozen=True, eq=False)
class RobotContract:
    """What a bundle records about a robot task: observation, action and control period."""

    obs_spec: ObservationSpec
    act_spec: ActionSpec
    control_period_s: float

    def to_yaml(self) -> dict[str, Any]:
        """The policy.yaml sections (see `contract_to_yaml`)."""
        return contract_to_yaml(self.obs_spec, self.act_spec, self.control_period_s)


def build_observation(spec: ObservationSpec, names: Sequence[str], positions: Sequence[float],
                      velocities: Sequence[float], goal: Sequence[float] | None = None,
                      actions: Sequence[Sequence[float]] = (),
                      inputs: Mapping[str, Any] | None = None) -> np.ndarray:
    """The policy's observation vector (float32) from a joint state and a goal (base frame).

    Joints are picked by NAME from `names` (any order, extras such as fingers ignored).
    `positions` and `velocities` must be as long as `names`; `goal` is required only when the
    spec has a goal term; `actions` (newest first, spec joint order; missing ones are zeros)
    fill the last_action terms; `inputs` are named extras (e.g. `object_pose`) for the terms
    that read them (contract/terms.py).

    Each term is written straight into its slice of the float32 output (the same float64 ->
    float32 rounding as concatenating): one allocation instead of one per term plus a
    concatenate.
    """
    n = len(names)
    pos = np.asarray(positions, dtype=np.float64)
    if pos.shape != (n,):
        raise ContractError(f'{pos.size} joint positions for {n} joint names')
    src = Source(spec, names, pos, velocities, spec.indices(names), goal, actions,
                 inputs or {})
    out = np.empty(spec._size, np.float32)
    for fill, sl in spec._layout:
        fill(out[sl], src)
    return out


def action_to_command(spec: ActionSpec, action: Sequence[float], q: np.ndarray | None = None,
                      profile: RobotProfile | None = None) -> np.ndarray:
    """Joint command (float64) for an action: clip(scale * band(clip(a, -1, 1)), low, high).

    `band` is the spec's dead band and exponent (identity when they are 0 and 1). An
    `ee_velocity` action is first ee_speed * band(a) [m/s], turned into joint velocities at
    the measured joints `q` (the robot's order) by `profile`'s kinematics
    (contract/cartesian.py); the clamps then apply alike. The gripper's entry is not part of
    the joint command (`gripper_entry`).

    np.maximum/np.minimum in place rather than np.clip (same values, as low <= high; several
    times cheaper on short vectors), and the finiteness check sums a Python list first: a finite
    sum proves every entry finite; only a non-finite one (NaN/Inf, or an overflow of huge but
    finite entries) pays for the exact per-entry check.
    """
    a = np.asarray(action, dtype=np.float64)
    if a.shape != (spec.size,):
        raise ContractError(f'action has shape {a.shape}, expected ({spec.size},)')
    if not math.isfinite(sum(a.tolist())) and not np.isfinite(a).all():
        raise ContractError(f'action is not finite: {a.tolist()}')
    if spec.size != spec.arm_size:
        a = a[:spec.arm_size]
    out = np.maximum(a, spec._minus_one)
    np.minimum(out, spec._plus_one, out=out)
    if spec.deadband or spec.exponent != 1.0:
        db = spec.deadband
        out = np.sign(out) * (np.maximum(np.abs(out) - db, 0.0) / (1.0 - db)) ** spec.exponent
    if spec.cartesian is not None:
        if q is None or profile is None:
            raise ContractError('an ee_velocity action needs the measured joints and the '
                                'robot profile')
        out = joint_velocity(profile, q, spec.cartesian.ee_speed * out, spec.cartesian)
    else:
        np.multiply(spec.scale, out, out=out)
    np.maximum(out, spec.low, out=out)
    np.minimum(out, spec.high, out=out)
    return out


def gripper_entry(spec: ActionSpec, action: Sequence[float]) -> float | None:
    """The action's gripper entry (None: the action has none)."""
    if spec.gripper is None:
        return None
    return float(np.clip(float(action[spec.size - 1]), -1.0, 1.0))


def contract_to_yaml(obs_spec: ObservationSpec, act_spec: ActionSpec,
                     control_period_s: float) -> dict[str, Any]:
    """policy.yaml sections: joint_names, observation.terms, action, control_period_s.

    Plain Python types only, so yaml.safe_dump writes it; normalization is the bundle's job.
    """
    return {
        'control_period_s': float(control_period_s),
        'joint_names': list(obs_spec.joint_names),
        'observation': {'terms': [{'name': t, 'size': obs_spec.term_size(t)}
                                  for t in obs_spec.terms]},
        'action': {
            'type': act_spec.type,
            'size': act_spec.size,
            'scale': [float(v) for v in act_spec.scale],
            'low': [float(v) for v in act_spec.low],
            'high': [float(v) for v in act_spec.high],
            **({'deadband': act_spec.deadband} if act_spec.deadband else {}),
            **({'exponent': act_spec.exponent} if act_spec.exponent != 1.0 else {}),
            **({'gripper': act_spec.gripper.to_yaml()} if act_spec.gripper else {}),
            **({'cartesian': act_spec.cartesian.to_yaml()} if act_spec.cartesian else {}),
        },
    }


def _field(d: Mapping[str, Any], key: str, where: str) -> Any:
    if not isinstance(d, Mapping):
        raise ContractError(f'{where or "policy spec"} must be a mapping, got {type(d).__name__}')
    if key not in d or d[key] is None:
        raise ContractError(f'missing field {where + "." if where else ""}{key}')
    return d[key]


def contract_from_yaml(d: Mapping[str, Any]) -> RobotContract:
    """Parse the sections written by `contract_to_yaml`; errors name the missing/bad field.

    The bundle's `robot` (if any) is the profile its robot terms are built with.
    """
    joint_names = _field(d, 'joint_names', '')
    if not isinstance(joint_names, list | tuple) or not joint_names:
        raise ContractError('field joint_names must be a non-empty list of joint names')
    period = _field(d, 'control_period_s', '')
    if not isinstance(period, int | float) or not math.isfinite(period) or period <= 0:
        raise ContractError(f'field control_period_s must be a positive number, got {period!r}')
    obs = _field(d, 'observation', '')
    terms_raw = _field(obs, 'terms', 'observation')
    terms = []
    for i, t in enumerate(terms_raw):
        terms.append(_field(t, 'name', f'observation.terms[{i}]'))
    obs_spec = ObservationSpec(tuple(joint_names), tuple(terms), d.get('robot') or None)
    for i, t in enumerate(terms_raw):
        size = _field(t, 'size', f'observation.terms[{i}]')
        if size != obs_spec.term_size(t['name']):
            raise ContractError(f'observation.terms[{i}].size is {size} but {t["name"]} has '
                                f'{obs_spec.term_size(t["name"])} entries')
    act = _field(d, 'action', '')
    size = _field(act, 'size', 'action')
    try:
        gripper = GripperSpec.from_yaml(act['gripper']) if act.get('gripper') else None
        cartesian = (CartesianConfig.from_yaml(act['cartesian']) if act.get('cartesian')
                     else None)
    except (TypeError, ValueError) as exc:
        raise ContractError(str(exc)) from None
    act_spec = ActionSpec(
        type=_field(act, 'type', 'action'), joint_names=tuple(joint_names),
        scale=_field(act, 'scale', 'action'), low=_field(act, 'low', 'action'),
        high=_field(act, 'high', 'action'), deadband=act.get('deadband') or 0.0,
        exponent=act.get('exponent') or 1.0, gripper=gripper, cartesian=cartesian)
    if size != act_spec.size:
        raise ContractError(f'action.size is {size} but a {act_spec.type} action for '
                            f'{len(joint_names)} joints{" with a gripper" if gripper else ""} '
                            f'has {act_spec.size} entries')
    return RobotContract(obs_spec, act_spec, float(period))

