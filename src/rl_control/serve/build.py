"""How a `ServingLoop` is built from a bundle and settings: joints, shaping, gates, dry run.

Kept apart from loop.py (which reads as the tick) as a mixin of `ServingLoop`: the joint
mapping by name (the server maps `/joint_states` by NAME, never by index), the shaper on the
served profile's limits (the band the profile says to plan inside: the FR3's position-dependent
one), the safety gate, the bundle's task with its goal gate (envs/tasks.py), the joint-state
cache with its plausibility bounds (`guards.py`), the task's other inputs and outputs (an
object pose, the hand: `task_io.py`), and the dry run that proves the actor takes
the contract's observation before any robot moves.
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np

from rl_control.contract.actions import action_type
from rl_control.contract.shaper import Limits, Shaper, ShaperConfig, ShaperError
from rl_control.envs.tasks import task_for_bundle
from rl_control.robots.profiles import get_profile
from rl_control.serve import goals, guards, safety, state
from rl_control.serve.task_io import TaskIO


class ServeError(ValueError):
    """A setting or bundle the loop cannot serve; the message names the parameter or field."""


def default_robot_joints(bundle_joints: list[str], profile_joints: tuple[str, ...]
                         ) -> list[str]:
    """The robot's names for the bundle's joints: `<any>_jointK` -> the profile's joint K."""
    out = []
    for name in bundle_joints:
        m = re.fullmatch(r'.+_joint(\d+)', name)
        if m is None or not 1 <= int(m.group(1)) <= len(profile_joints):
            return list(bundle_joints)
        out.append(profile_joints[int(m.group(1)) - 1])
    return out


class LoopBuild:
    """Construction steps of `ServingLoop` (see the module docstring)."""

    def _map_joints(self, bundle_joints: list[str]) -> None:
        s, prof = self.settings, self.profile
        robot = list(s.robot_joints) or default_robot_joints(bundle_joints, prof.joint_names)
        if len(robot) != len(bundle_joints):
            raise ServeError(f'robot_joints has {len(robot)} names, the bundle '
                             f'{len(bundle_joints)} ({bundle_joints})')
        if len(set(robot)) != len(robot):
            raise ServeError(f'robot_joints {robot} names a joint twice')
        unknown = [n for n in robot if n not in prof.joint_names]
        if unknown:
            raise ServeError(f'robot_joints {unknown} are not joints of the {prof.name} '
                             f'profile {list(prof.joint_names)}')
        cmd = list(s.command_joints) or robot
        if sorted(cmd) != sorted(robot):
            raise ServeError(f'command_joints {cmd} must be a permutation of robot_joints '
                             f'{robot}')
        self.robot_joints, self.cmd_joints = robot, cmd
        self.perm = np.array([robot.index(n) for n in cmd], np.intp)  # command slot -> policy
        self.profile_idx = np.array([prof.joint_names.index(n) for n in robot], np.intp)

    def _build_shaping(self, spec: dict[str, Any]) -> None:
        s, prof, idx = self.settings, self.profile, self.profile_idx
        trained = spec.get('shaper')
        try:
            cfg = ShaperConfig.from_yaml(trained, self.period_s)
            if s.lead_s:
                cfg = ShaperConfig(**{**cfg.to_yaml(), 'lead_s': s.lead_s})
        except ShaperError as exc:
            raise ServeError(f'bundle shaper / lead_s: {exc}') from None
        if trained is None and action_type(self.act_spec.type).shaping == 'motion':
            self.warnings.append('the bundle was trained without command shaping (ideal '
                                 'servo): served motions are jerk-limited and may lag the '
                                 'training dynamics')
        self.shaper_cfg = cfg
        limits = Limits.from_profile(prof, idx)

        def band(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            full = np.broadcast_to(prof.home, (*np.shape(q)[:-1], prof.dof)).copy()
            full[..., idx] = q
            lo, hi = prof.shaping_velocity_limits(full)
            return (np.broadcast_to(lo, full.shape)[..., idx],
                    np.broadcast_to(hi, full.shape)[..., idx])

        self.shaper = Shaper(limits, cfg, velocity_limits=band)
        trained_robot = spec.get('robot')
        if trained_robot and trained_robot != prof.name:
            other = Limits.from_profile(get_profile(trained_robot), idx)
            tighter = [k for k in ('q_min', 'qd_max', 'qdd_max', 'qddd_max')
                       if np.any(getattr(limits, k) < getattr(other, k))] + \
                (['q_max'] if np.any(limits.q_max < other.q_max) else [])
            if tighter:
                self.warnings.append(f'a {trained_robot}-trained bundle on the {prof.name}: '
                                     f'its {", ".join(tighter)} are tighter, so motions stay '
                                     f'inside the {prof.name} range and may be slower than '
                                     'trained')
        self.hold_damping = _hold_damping(spec)  # effort: serve/outputs.py TorqueStream

    def _build_gates(self, spec: dict[str, Any]) -> None:
        s, prof, idx, act = self.settings, self.profile, self.profile_idx, self.act_spec
        robot_limit = action_type(act.type).limits(prof)[idx]
        low, high = np.maximum(act.low, -robot_limit), np.minimum(act.high, robot_limit)
        try:
            self.safety = safety.SafetyFilter(low, high, s.clamp_scale, s.ramp_in_s)
        except ValueError as exc:
            raise ServeError(f'clamp_scale / ramp_in_s: {exc}') from None
        self.base_frame = s.base_frame or prof.base_frame
        try:
            self.task = task_for_bundle(spec)
            self.goals = goals.GoalGate(self.base_frame, *(self.task.goal_region()
                                                            or (None, None)))
        except ValueError as exc:
            raise ServeError(f'bundle goal_region / task_name: {exc}') from None
        if s.goal_low or s.goal_high:
            try:
                self.goals.tighten(s.goal_low, s.goal_high)
            except ValueError as exc:
                raise ServeError(str(exc)) from None
        self.success_distance = self.task.distance_threshold
        self.cache = state.JointStateCache(
            self.robot_joints, state.StateLimits(s.stale_periods * self.tick_s,
                                                 s.max_state_age_s, s.backstop_s,
                                                 self.period_s),
            need_velocity='joint_vel' in self.obs_spec.terms,
            plausible=guards.plausible(prof, idx))
        cmd = idx[self.perm]
        self.cmd_limits = (prof.q_min[cmd], prof.q_max[cmd], prof.qd_max[cmd])
        try:  # the object pose, the fingers, the hand's command (serve/task_io.py)
            self.task_io = TaskIO(self.obs_spec, act, prof, idx, s, self.base_frame,
                                  self.period_s)
        except ValueError as exc:
            raise ServeError(f'bundle observation / action: {exc}') from None

    def _dry_run(self, where: str) -> None:
        """Prove the actor takes the contract's observation before any robot moves."""
        probe = np.zeros(self.obs_spec.size, np.float32)
        try:
            a = np.asarray(self.policy.act(probe), np.float64).reshape(-1)
        except Exception as exc:  # noqa: BLE001 - any failure here is a bundle problem
            raise ServeError(f'{where}: actor rejects the {self.obs_spec.size}-entry '
                             f'observation of its contract: {exc}') from None
        if a.shape != (self.act_spec.size,):
            raise ServeError(f'{where}: actor outputs {a.shape[0]} values, action.size is '
                             f'{self.act_spec.size}')


def _hold_damping(spec: dict[str, Any]) -> float:
    """The viscous torque an effort bundle was trained with (policy.yaml `torque`; 0: none)."""
    try:
        value = float((spec.get('torque') or {}).get('hold_damping') or 0.0)
    except (TypeError, ValueError):
        value = -1.0
    if not (value >= 0.0 and np.isfinite(value)):
        raise ServeError(f"bundle torque.hold_damping must be a number >= 0, got "
                         f"{(spec.get('torque') or {}).get('hold_damping')!r}")
    return value
