"""The serving loop, pure: (joint states, goal, clock) -> commands a real Franka accepts.

    bundle -> policy -> contract -> safety -> shaper -> command

The node (ros/policy_server.py) only moves messages: it calls `on_state`, `on_goal`,
`on_object_pose` (tasks that observe an object), `tick`
(the policy, at the control period), `stream` (velocity/effort output, up to 1 kHz) and
`diagnostics`, and publishes what they return. Everything here is a function of its inputs and
the times it is given, so it is tested without ROS and runs the same under sim time.

A policy tick: the merged joint state and the goal (and a task's other inputs: the object
pose, the hand's width and last command, serve/task_io.py) make the observation (the same
`build_observation` the training env uses); the actor's action becomes a velocity target
(`action_to_command`, an end-effector velocity through the measured joints); the safety
gate clamps and ramps it or says why not; the shaper plans a jerk-limited motion to it from
its own previous plan, or, for any reason not to move (stale or bad state, missing joint, no
or refused goal, a stale object pose, NaN action, e-stop, deactivation, an internal error),
brakes to rest within the robot's limits. The reference is re-anchored on the measured
state only when the arm is really elsewhere (by more than `reanchor_tolerance` at the time
the state was measured: a reflex, a controller switch, a push), never for late states, and
only on a plausible one (guards.py: a state no arm can be in is refused like a NaN, until
plausible states return). Every trajectory is checked against the limits before it leaves,
and an exception anywhere in a tick brakes from the last good plan and latches
`internal_error` until `reset` or `activate` (`tick`). A gripper entry becomes a hand command
on change (`TickOutput.gripper`), only on a tick that serves the policy: every reason to brake
leaves the hand as it was last told. What leaves is the command
interface's output (serve/outputs.py: a trajectory per tick, or a stream). Construction is
build.py, reporting report.py.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from rl_control.contract import (
    ContractError,
    ObservationSpec,
    build_observation,
    contract_from_yaml,
)
from rl_control.contract.actions import action_type
from rl_control.robots.command_interfaces import command_interface
from rl_control.robots.profiles import get_profile
from rl_control.robots.trajectory import JointTrajectory
from rl_control.serve import safety, state
from rl_control.serve.build import LoopBuild, ServeError, default_robot_joints
from rl_control.serve.outputs import OUTPUTS, TickOutput
from rl_control.serve.report import LoopReport
from rl_control.serve.robot_errors import ROBOT_ERROR, RobotErrorWatch
from rl_control.serve.settings import TRIGGERS, ServeSettings
from rl_control.serve.start_pose import StartMove, begin_move, move_runs

__all__ = ['INTERNAL_ERROR', 'ServeError', 'ServingLoop', 'TickOutput', 'default_robot_joints']

INTERNAL_ERROR = 'internal_error'
MOVE_TO_START = 'move_to_start'
SEND_MARGIN_S = 0.002
"""A trajectory is sent only this long before its plan start or earlier: local DDS delivers in
well under a millisecond (the stamps in `rl-control demo --record` recordings), so a message sent
later would start late (`ServingLoop.withheld`)."""


class ServingLoop(LoopBuild, LoopReport):
    """One served robot: see the module docstring."""

    def __init__(self, spec: dict[str, Any], policy: Any, settings: ServeSettings,
                 bundle_path: str = '') -> None:
        s = self.settings = settings
        where = f'bundle {bundle_path}' if bundle_path else 'bundle'
        try:
            self.interface = command_interface(s.command_type)
        except ValueError as exc:
            raise ServeError(str(exc)) from None
        if s.trigger not in TRIGGERS:
            raise ServeError(f'trigger {s.trigger!r} is not one of {TRIGGERS}')
        try:
            self.profile = get_profile(s.robot)
            contract = contract_from_yaml(spec)
        except (ValueError, ContractError) as exc:
            raise ServeError(f'{where}: {exc}') from None
        self.policy, self.spec = policy, spec
        act = self.act_spec = contract.act_spec
        if action_type(act.type).command_type != self.interface.action_type:
            raise ServeError(f'{where} has action.type {act.type!r}, which cannot drive '
                             f'command_type {s.command_type!r}')
        self.warnings: list[str] = []
        self._map_joints(list(contract.obs_spec.joint_names))
        try:
            self.obs_spec = ObservationSpec(tuple(self.robot_joints), contract.obs_spec.terms,
                                            self.profile.name)
        except ContractError as exc:
            raise ServeError(f'{where}: {exc}') from None
        self.period_s = float(contract.control_period_s)
        rate = s.control_rate_hz or 1.0 / self.period_s
        self.tick_s = 1.0 / rate
        if abs(self.tick_s - self.period_s) > 1e-9:
            self.warnings.append(f'control_rate_hz {rate:g} differs from the bundle\'s '
                                 f'{1.0 / self.period_s:g} Hz: the policy was trained at its '
                                 'own rate and may behave differently')
        self._build_shaping(spec)
        self._build_gates(spec)
        self.output = OUTPUTS[self.interface.output](self)
        self._dry_run(where)
        self.last_tick: float | None = None
        self.answered_stamp = self.due_time = 0.0
        self.reason = safety.INACTIVE
        self.failure: str | None = None
        self.reanchors = self.withdrawn = self.late = 0
        self._undo: tuple[Any, ...] = (self.shaper.savepoint(), None, None)
        self.brake_started: float | None = None
        self.last_braking_s = 0.0
        self._sent: JointTrajectory | None = None  # the controller's message (commands.py)
        self.ticks, self._rate_window = 0, (0, None)
        self.actions: list[np.ndarray] = []  # shaped targets as actions, newest first
        # bring-up (serve/start_pose.py, serve/robot_errors.py)
        start = spec.get('start_pose')
        self.start_q = (np.asarray(start, np.float64) if start is not None
                        else self.profile.home[self.profile_idx].copy())
        self.start_move: StartMove | None = None
        self.robot = RobotErrorWatch()
        self._grip: float | None = None  # this tick's gripper entry (serve/task_io.py)

    # -- lifecycle ----------------------------------------------------------------------------
    def activate(self, now: float) -> None:
        """Start serving (the ramp-in starts now); the reference anchors on the next state.

        A latched internal error is lifted (a lifecycle transition is a deliberate restart).
        """
        self.safety.activate(now)
        self.failure = None
        self.shaper.plan, self._sent = None, None
        self.actions = []
        self.answered_stamp = 0.0
        self.last_tick = None
        self.output.activate()

    def deactivate(self) -> None:
        """Stop serving; the host brakes first (`tick` after `safety.deactivate` brakes).

        The goal is forgotten: after a reactivation the arm must not head for an old one.
        """
        self.safety.deactivate()
        self.goals.clear()

    def fail(self, why: str) -> None:
        """Latch an internal error (e.g. the services thread died): brake, stay stopped."""
        self.failure = why

    def reset(self, now: float) -> None:
        """`~/reset`: lift the e-stop and a latched internal error; the ramp-in starts over."""
        self.safety.reset(now)
        self.failure = None

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
        self.task_io.on_state(now, wall, names, pos)  # the finger joints, if observed
        refused = self.cache.update(now, wall, names, pos, vel, stamp)
        self.due_time = now
        if refused is not None or self.settings.trigger != 'state' or not self.safety.active:
            return refused in state.REFUSING, refused
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

    def on_object_pose(self, now: float, wall: float, frame: str, pose: np.ndarray,
                       stamp: float = 0.0) -> str | None:
        """An object pose (x, y, z, qx, qy, qz, qw, base frame); why refused (None: taken)."""
        return self.task_io.on_object_pose(now, wall, frame, pose, stamp)

    # -- the policy tick ----------------------------------------------------------------------
    def input_problem(self, now: float, wall: float) -> str | None:
        """Why the policy must not move the arm now (None: it may)."""
        if self.failure is not None:
            return INTERNAL_ERROR
        if self.robot.fault is not None:
            return ROBOT_ERROR
        problem = self.cache.problem(now, wall) or self.task_io.problem(now, wall)
        if problem is not None:
            return problem
        if self.goals.goal is None:
            return self.goals.reason
        return None

    def inputs_failed(self, now: float, wall: float) -> bool:
        """Serving, but the inputs just went bad: the watchdog brakes now, not next tick."""
        return self.reason == safety.OK and self.input_problem(now, wall) is not None

    def tick(self, now: float, wall: float) -> TickOutput:
        """One policy tick at `now` (control clock) / `wall` (steady clock).

        Whatever goes wrong inside (a policy that raises, a plan outside the limits) is caught:
        the tick brakes from the last good plan instead, the error is latched (`failure`,
        reason `internal_error`) until `reset` or an activation, and the host stays up.
        """
        if self.shaper.anchored and self.shaper.plan.t0 > now + 1.0:
            self.shaper.plan, self._sent = None, None  # the clock stepped back: start over
        self.last_tick = now
        self.ticks += 1
        self._undo = (self.shaper.savepoint(), self._sent, self.brake_started)
        try:
            return self._tick(now, wall)
        except Exception as exc:  # noqa: BLE001 - any fault: brake, latch, report
            return self._fault(now, exc)

    def _tick(self, now: float, wall: float) -> TickOutput:
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
        target, self._grip = None, None
        if problem is None:
            target = self._policy_target()
        result = self.safety.filter(now, target, problem or safety.OK)
        self.reason = result.reason
        # the joint targets as actions (one per joint, whatever the action's own size)
        latest = (np.zeros(self.act_spec.scale.size) if result.command is None else
                  np.clip(result.command / self.act_spec.scale, -1.0, 1.0))
        self.actions = [latest, *self.actions[:2]]
        out = self.output.apply(now, result)
        if problem == ROBOT_ERROR and out.trajectory is not None:
            # The robot stopped itself and its controller is re-activated by the recovery
            # (docs/real_robot.md "Error recovery"): a brake sent now could reach the new
            # controller after the recovery and step its reference. Brake the plan, send nothing.
            self._sent = None
            return TickOutput(None, out.reason, out.plan)
        if result.reason == safety.OK:  # the hand moves only when the arm may
            out.gripper = self.task_io.gripper(self._grip)
        return out

    def brake(self, now: float, reason: str) -> TickOutput:
        """Plan a time-optimal stop (the outputs' and a fault's brake)."""
        if self.shaper.at_rest(now):
            return TickOutput(None, reason)  # at rest already: the controller holds
        previous = self.shaper.plan
        plan = self.shaper.brake(now)
        if self.brake_started is None:
            self.brake_started = now
            self.last_braking_s = plan.end - now
        return TickOutput(self.output.message(plan, previous, now), reason, plan)

    def _fault(self, now: float, exc: Exception) -> TickOutput:
        """Brake from the plan before this tick (or leave the last message: it ends at rest)."""
        text = ' '.join(str(exc).split())[:300]
        self.failure = f'{type(exc).__name__}: {text}' if text else type(exc).__name__
        self.reason = INTERNAL_ERROR
        self.output.fault()
        point, sent, started = self._undo
        self.shaper.rollback(point)
        self._sent, self.brake_started = sent, started
        if self.shaper.anchored:
            try:
                return self.brake(now, INTERNAL_ERROR)
            except Exception:  # noqa: BLE001 - the last sent message ends at rest
                self.shaper.rollback(point)
                self._sent, self.brake_started = sent, started
        return TickOutput(None, INTERNAL_ERROR)

    def withheld(self, now: float, plan: Any) -> bool:
        """Whether the tick's message, about to be sent at `now`, is too late and withdrawn."""
        if now <= plan.t0 - SEND_MARGIN_S:
            return False
        self.withdraw()
        return True

    def sent(self, now: float, plan: Any) -> None:
        """The tick's message left at `now`; after its plan start, the controller steps."""
        self.late += now > plan.t0

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

    def observation(self) -> np.ndarray:
        """The policy's observation from what the server holds now (inputs checked first)."""
        names, q, qd, inputs = self.task_io.observation_args(self.robot_joints, self.cache.q,
                                                             self.cache.qd)
        return build_observation(self.obs_spec, names, q, qd, self.goals.goal, self.actions,
                                 inputs)

    def _policy_target(self) -> np.ndarray | None:
        action = np.asarray(self.policy.act(self.observation()), np.float64).reshape(-1)
        if not np.all(np.isfinite(action)):
            return None
        self._grip = self.task_io.gripper_entry(action)
        return self.task_io.command(action, self.cache.q)

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
        """The value to stream at `now`, in command order (None: nothing; serve/outputs.py)."""
        return self.output.stream(now)

    def stopped(self, now: float) -> bool:
        """Whether a stop has brought the arm to rest (the host can stop streaming)."""
        return self.output.stopped(now)
