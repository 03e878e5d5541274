"""The serving loop, pure: (joint states, goal, clock) -> commands a real Franka accepts.

    bundle -> policy -> contract -> safety -> shaper -> command

The node (ros/policy_server.py) only moves messages: it calls `on_state`, `on_goal`, `tick`
(the policy, at the control period), `stream` (velocity/effort output, up to 1 kHz) and
`diagnostics`, and publishes what they return. Everything here is a function of its inputs and
the times it is given, so it is tested without ROS and runs the same under sim time.

A policy tick: the merged joint state and the goal make the observation (the same
`build_observation` the training env uses); the actor's action becomes a velocity target
(`action_to_command`); the safety gate clamps and ramps it or says why not; the shaper plans a
jerk-limited motion to it from its own previous plan, or, for any reason not to move (stale or
bad state, missing joint, no or refused goal, NaN action, e-stop, deactivation, an internal
error), brakes to rest within the robot's limits. The reference is re-anchored on the measured
state only when the arm is really elsewhere (by more than `reanchor_tolerance` at the time
the state was measured: a reflex, a controller switch, a push), never for late states.
"""
from __future__ import annotations

from dataclasses import dataclass
import re
from typing import Any

import numpy as np

from rl_control.contract import (
    ContractError,
    ObservationSpec,
    action_to_command,
    build_observation,
    contract_from_yaml,
)
from rl_control.contract.shaper import Limits, Plan, Shaper, ShaperConfig, ShaperError
from rl_control.contract.torque import TorqueConfig, TorqueShaper
from rl_control.robots.kinematics import fk_single
from rl_control.robots.profiles import get_profile
from rl_control.robots.trajectory import JointTrajectory
from rl_control.serve import goals, safety, state
from rl_control.serve.commands import trajectory_message
from rl_control.serve.robot_errors import ROBOT_ERROR, RobotErrorWatch
from rl_control.serve.settings import COMMAND_TYPES, TRIGGERS, ServeSettings
from rl_control.serve.start_pose import StartMove, begin_move, move_runs

ACTION_FOR_COMMAND = {'velocity': 'joint_velocity', 'trajectory': 'joint_velocity',
                      'effort': 'joint_effort'}
INTERNAL_ERROR = 'internal_error'
MOVE_TO_START = 'move_to_start'


class ServeError(ValueError):
    """A setting or bundle the loop cannot serve; the message names the parameter or field."""


@dataclass
class TickOutput:
    """What one policy tick decided: a trajectory to publish (or None) and why it moves or not."""

    trajectory: JointTrajectory | None
    reason: str
    plan: Plan | None = None


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


class ServingLoop:
    """One served robot: see the module docstring."""

    def __init__(self, spec: dict[str, Any], policy: Any, settings: ServeSettings,
                 bundle_path: str = '') -> None:
        s = self.settings = settings
        where = f'bundle {bundle_path}' if bundle_path else 'bundle'
        if s.command_type not in COMMAND_TYPES:
            raise ServeError(f'command_type {s.command_type!r} is not one of {COMMAND_TYPES}')
        if s.trigger not in TRIGGERS:
            raise ServeError(f'trigger {s.trigger!r} is not one of {TRIGGERS}')
        try:
            self.profile = get_profile(s.robot)
            contract = contract_from_yaml(spec)
        except (ValueError, ContractError) as exc:
            raise ServeError(f'{where}: {exc}') from None
        self.policy, self.spec = policy, spec
        act = self.act_spec = contract.act_spec
        if act.type != ACTION_FOR_COMMAND[s.command_type]:
            raise ServeError(f'{where} has action.type {act.type!r}, which cannot drive '
                             f'command_type {s.command_type!r}')
        self.warnings: list[str] = []
        self._map_joints(list(contract.obs_spec.joint_names))
        self.obs_spec = ObservationSpec(tuple(self.robot_joints), contract.obs_spec.terms)
        self.period_s = float(contract.control_period_s)
        rate = s.control_rate_hz or 1.0 / self.period_s
        self.tick_s = 1.0 / rate
        if abs(self.tick_s - self.period_s) > 1e-9:
            self.warnings.append(f'control_rate_hz {rate:g} differs from the bundle\'s '
                                 f'{1.0 / self.period_s:g} Hz: the policy was trained at its '
                                 'own rate and may behave differently')
        self._build_shaping(spec)
        self._build_gates(spec)
        self._dry_run(where)
        self.last_tick: float | None = None
        self.answered_stamp = self.due_time = 0.0
        self.reason = safety.INACTIVE
        self.failure: str | None = None
        self.reanchors = self.withdrawn = 0
        self._undo: tuple[Any, ...] = (self.shaper.savepoint(), None, None)
        self.brake_started: float | None = None
        self.last_braking_s = 0.0
        self._tau_target: np.ndarray | None = None
        self._stream_t: float | None = None
        self._sent: JointTrajectory | None = None  # the controller's message (commands.py)
        self.ticks, self._rate_window = 0, (0, None)
        self.actions: list[np.ndarray] = []  # shaped targets as actions, newest first
        # bring-up (serve/start_pose.py, serve/robot_errors.py)
        start = spec.get('start_pose')
        self.start_q = (np.asarray(start, np.float64) if start is not None
                        else self.profile.home[self.profile_idx].copy())
        self.start_move: StartMove | None = None
        self.robot = RobotErrorWatch()

    # -- construction -------------------------------------------------------------------------
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
        if trained is None and s.command_type != 'effort':
            self.warnings.append('the bundle was trained without command shaping (ideal '
                                 'servo): served motions are jerk-limited and may lag the '
                                 'training dynamics')
        self.shaper_cfg = cfg
        limits = Limits.from_profile(prof, idx)

        def band(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            full = np.broadcast_to(prof.home, (*np.shape(q)[:-1], 7)).copy()
            full[..., idx] = q
            lo, hi = prof.libfranka_velocity_limits(full)
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
        if s.command_type == 'effort':
            self.torque = TorqueShaper(prof.tau_max[idx], prof.dtau_max[idx],
                                       TorqueConfig(damping=s.effort_damping),
                                       qd_max=prof.qd_max[idx],
                                       q_range=(prof.q_min[idx], prof.q_max[idx]))

    def _build_gates(self, spec: dict[str, Any]) -> None:
        s, prof, idx, act = self.settings, self.profile, self.profile_idx, self.act_spec
        robot_limit = prof.tau_max[idx] if act.type == 'joint_effort' else prof.qd_max[idx]
        low, high = np.maximum(act.low, -robot_limit), np.minimum(act.high, robot_limit)
        try:
            self.safety = safety.SafetyFilter(low, high, s.clamp_scale, s.ramp_in_s)
        except ValueError as exc:
            raise ServeError(f'clamp_scale / ramp_in_s: {exc}') from None
        region = spec.get('goal_region') or {}
        self.base_frame = s.base_frame or prof.base_frame
        self.goals = goals.GoalGate(self.base_frame, region.get('low'), region.get('high'))
        if s.goal_low or s.goal_high:
            try:
                self.goals.tighten(s.goal_low, s.goal_high)
            except ValueError as exc:
                raise ServeError(str(exc)) from None
        self.success_distance = float(spec.get('success_distance') or 0.05)
        self.cache = state.JointStateCache(
            self.robot_joints, state.StateLimits(s.stale_periods * self.tick_s,
                                                 s.max_state_age_s, s.backstop_s,
                                                 self.period_s),
            need_velocity='joint_vel' in self.obs_spec.terms)

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

    # -- lifecycle ----------------------------------------------------------------------------
    def activate(self, now: float) -> None:
        """Start serving (the ramp-in starts now); the reference anchors on the next state."""
        self.safety.activate(now)
        self.shaper.plan, self._sent = None, None
        self.actions = []
        self.answered_stamp = 0.0
        self.last_tick = None
        if self.settings.command_type == 'effort':
            self.torque.reset()

    def deactivate(self) -> None:
        """Stop serving; the host brakes first (`tick` after `safety.deactivate` brakes)."""
        self.safety.deactivate()

    def fail(self, why: str) -> None:
        """Latch an internal error (e.g. the services thread died): brake, stay stopped."""
        self.failure = why

    # -- inputs -------------------------------------------------------------------------------
    def on_state(self, now: float, wall: float, names: Any, pos: np.ndarray,
                 vel: np.ndarray, stamp: float = 0.0) -> tuple[bool, str | None]:
        """Merge a joint state; (tick now?, why it was refused or None).

        A policy tick is due in `state` trigger mode when a control period has passed since
        the last one (states at 1 kHz are decimated to the policy's rate). A state stamped no
        later than the last one answered (re-sent, reordered) is not answered again: a
        lockstep simulator advances one step per command. Stamps that jump back by more than a
        period mean the source restarted: start over. The tick is due at `due_time`: the
        state's stamp when it is up to a period ahead of `now` (under sim time the /clock
        message that precedes a state may be processed after it), else `now`.
        """
        refused = self.cache.update(now, wall, names, pos, vel, stamp)
        self.due_time = now
        if refused is not None or self.settings.trigger != 'state' or not self.safety.active:
            return refused in (state.BAD_STATE, state.DUPLICATE_JOINTS), refused
        if stamp:
            if stamp < self.answered_stamp - self.period_s:
                self.answered_stamp, self.last_tick = 0.0, None  # restarted: due at once
            elif stamp <= self.answered_stamp:
                return False, None
            # a state up to a period ahead of the clock is its time (its /clock is not in yet)
            self.due_time = max(now, min(stamp, now + self.period_s))
        due = self.last_tick is None or self.due_time - self.last_tick >= self.tick_s - 5e-4
        if due and stamp:
            self.answered_stamp = stamp
        return due, None

    def on_goal(self, frame: str, xyz: np.ndarray) -> str | None:
        """A new goal; why it was refused (None: accepted)."""
        return self.goals.offer(frame, np.asarray(xyz, np.float64))

    # -- the policy tick ----------------------------------------------------------------------
    def input_problem(self, now: float, wall: float) -> str | None:
        """Why the policy must not move the arm now (None: it may)."""
        if self.failure is not None:
            return INTERNAL_ERROR
        if self.robot.fault is not None:
            return ROBOT_ERROR
        problem = self.cache.problem(now, wall)
        if problem is not None:
            return problem
        if self.goals.goal is None:
            return self.goals.reason
        return None

    def tick(self, now: float, wall: float) -> TickOutput:
        """One policy tick at `now` (control clock) / `wall` (steady clock)."""
        if self.shaper.anchored and self.shaper.plan.t0 > now + 1.0:
            self.shaper.plan, self._sent = None, None  # the clock stepped back: start over
        self.last_tick = now
        self.ticks += 1
        self._undo = (self.shaper.savepoint(), self._sent, self.brake_started)
        problem = self.input_problem(now, wall)
        if not self.shaper.anchored:
            if self.cache.problem(now, wall) is not None:
                self.reason = problem or state.NO_STATE
                return TickOutput(None, self.reason)  # nothing measured yet: nothing to hold
            self.shaper.anchor(now, self.cache.q, self.cache.qd)
            self._sent = None
        elif self.cache.problem(now, wall) is None:
            self._reanchor_if_elsewhere(now)
        if self.start_move is not None and move_runs(self, now, problem):
            self.reason = MOVE_TO_START
            return TickOutput(None, MOVE_TO_START)  # the controller runs the move's message
        target = None
        if problem is None:
            target = self._policy_target()
        result = self.safety.filter(now, target, problem or safety.OK)
        self.reason = result.reason
        latest = (np.zeros(self.act_spec.size) if result.command is None else
                  np.clip(result.command / self.act_spec.scale, -1.0, 1.0))
        self.actions = [latest, *self.actions[:2]]
        if self.settings.command_type == 'effort':
            self._tau_target = result.command
            return TickOutput(None, result.reason)
        previous = self.shaper.plan
        if result.command is not None:
            plan = self.shaper.step(now, result.command)
            self.brake_started = None
        elif self.shaper.at_rest(now):
            return TickOutput(None, result.reason)  # at rest already: the controller holds
        else:
            plan = self.shaper.brake(now)
            if self.brake_started is None:
                self.brake_started = now
                self.last_braking_s = plan.end - now
        msg = None
        if self.settings.command_type == 'trajectory':
            msg = self._sent = trajectory_message(plan, previous, now,
                                                  self.shaper_cfg.sample_s, self.cmd_joints,
                                                  self.perm, self._sent)
        return TickOutput(msg, result.reason, plan)

    def withdraw(self) -> None:
        """The last tick's message was not sent (it would have started late): forget it.

        A trajectory that reaches the controller after its plan start replaces the running one
        mid-motion: the commanded reference steps (a reflex on a Franka). A message withheld
        instead leaves the controller on the previous message, which ends at rest, and the
        next tick plans from that message's plan, which is what the arm runs.
        """
        point, self._sent, self.brake_started = self._undo
        self.shaper.rollback(point)
        self.withdrawn += 1

    # -- bring-up: move to start (serve/start_pose.py), the robot's own errors ---------------
    def move_to_start(self, now: float, wall: float, speed: float, shadow: bool = False
                      ) -> TickOutput | str:
        """Plan the move to `start_q`: the message to send, or why not."""
        out = begin_move(self, now, wall, speed, shadow)
        return out if isinstance(out, str) else TickOutput(out, MOVE_TO_START, self.shaper.plan)

    def robot_state(self, now: float, mode: int, errors: list[str]) -> None:
        """The robot's mode and errors; after a recovery, re-anchor and ramp in again."""
        if self.robot.update(mode, errors):
            self.shaper.plan, self._sent = None, None
            self.reanchors += 1
            if self.safety.active:
                self.safety.activate(now)

    def _policy_target(self) -> np.ndarray | None:
        obs = build_observation(self.obs_spec, self.robot_joints, self.cache.q, self.cache.qd,
                                self.goals.goal, self.actions)
        action = np.asarray(self.policy.act(obs), np.float64).reshape(-1)
        if not np.all(np.isfinite(action)):
            return None
        return action_to_command(self.act_spec, action)

    def _reanchor_if_elsewhere(self, now: float) -> None:
        stamp = self.cache.state_stamp()
        t = stamp if 0.0 < stamp and abs(stamp - now) < 1.0 else float(self.cache.arrival.min())
        ref = self.shaper.reference(t)
        if np.max(np.abs(self.cache.q - ref.q)) > self.settings.reanchor_tolerance:
            self.shaper.anchor(now, self.cache.q, self.cache.qd)
            self._sent = None
            self.reanchors += 1

    # -- the output stream (velocity / effort) ------------------------------------------------
    def stream(self, now: float) -> np.ndarray | None:
        """The velocity or torque to send at `now`, in command order (None: nothing yet)."""
        if self.settings.command_type == 'velocity':
            if not self.shaper.anchored:
                return None
            return self.shaper.reference(now).qd[self.perm]
        if self.settings.command_type != 'effort':
            return None
        dt = 0.0 if self._stream_t is None else now - self._stream_t
        self._stream_t = now
        if self._tau_target is not None:
            tau = self.torque.step(dt, self._tau_target, self.cache.qd, self.cache.q)
        elif not self.cache.received:
            return None
        elif now - float(self.cache.arrival.min()) > self.cache.limits.stale_s \
                or self.cache.bad.any():
            # no measured velocity to damp: damping the last one would push on forever
            # (the arm decelerates, then accelerates back); ramp to zero torque and float
            tau = self.torque.step(dt, np.zeros_like(self.torque.tau))
        else:
            tau = self.torque.brake(dt, self.cache.qd, self.cache.q)
        return tau[self.perm]

    def take_rate(self, wall: float) -> float:
        """Policy ticks per second (steady clock) since the last call."""
        n0, w0 = self._rate_window
        self._rate_window = (self.ticks, wall)
        return float('nan') if w0 is None else (self.ticks - n0) / max(wall - w0, 1e-9)

    def stopped(self, now: float) -> bool:
        """Whether a stop has brought the arm to rest (the host can stop streaming)."""
        if self.settings.command_type == 'effort':
            return bool(np.abs(self.cache.qd).max() < 1e-3)
        return self.settings.command_type == 'trajectory' or self.shaper.at_rest(now)

    # -- reporting ----------------------------------------------------------------------------
    def summary(self) -> str:
        """One line for the log: what is served how."""
        s = self.settings
        return (f'{self.spec.get("algorithm")} policy on the {self.profile.name} profile, '
                f'{s.command_type} commands for {self.cmd_joints} at {1 / self.tick_s:g} Hz '
                f'(trigger {s.trigger}), lead {self.shaper_cfg.lead_s * 1e3:g} ms, goals in '
                f'{self.base_frame}')

    def goal_status(self) -> dict[str, Any]:
        """~/status: the goal, moving | reached | holding | refused, and the distance to it."""
        g = self.goals.goal
        out: dict[str, Any] = {'goal': None if g is None else [float(v) for v in g],
                               'state': 'holding', 'distance': None, 'reason': self.reason}
        if g is None:
            if self.goals.reason != goals.NO_GOAL:
                out['state'], out['reason'] = 'refused', self.goals.last_refused
            return out
        if self.cache.received and not np.isinf(self.cache.arrival).any():
            d = float(np.linalg.norm(np.asarray(fk_single(self.cache.q.tolist())) - g))
            out['distance'] = d
            if d <= self.success_distance:
                out['state'] = 'reached'
            elif self.reason == safety.OK:
                out['state'] = 'moving'
        return out

    def values(self, now: float) -> dict[str, Any]:
        """Counters and settings for /diagnostics."""
        c, g, sc = self.safety.counts, self.goals.counts, self.cache.counts
        return {
            'last_reason': self.reason, 'estop': self.safety.estopped,
            'robot': self.profile.name, 'command_type': self.settings.command_type,
            'target_rate_hz': 1.0 / self.tick_s, 'trigger': self.settings.trigger,
            'state_age_ms': self.cache.age(now) * 1e3, 'commands_ok': c[safety.OK],
            'clamped': c['clamped'], 'dropped_state': sum(sc.values()),
            'state_error': self.cache.last_error or '',
            'goal_refused': g[goals.BAD_GOAL] + g[goals.GOAL_OUTSIDE],
            'goal_error': self.goals.last_refused or '',
            'bad_action': c[safety.BAD_ACTION], 'reanchors': self.reanchors,
            'late_withheld': self.withdrawn,
            'late_plans': self.shaper.late_plans, 'braking_s': self.last_braking_s,
            'lead_ms': self.shaper_cfg.lead_s * 1e3, 'clamp_scale': self.safety.clamp_scale,
            'warnings': ' | '.join(self.warnings), **self.robot.values(),
        }

