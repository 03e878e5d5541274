"""The command shaper: a policy's joint-velocity target -> a motion a real Franka accepts.

A Franka checks every commanded reference at 1 kHz against its velocity, acceleration and jerk
limits and stops with a reflex at the first violation; a policy that jumps its velocity target
every 40 ms is a velocity staircase, i.e. an acceleration spike, to the robot. The shaper plans
from the current reference state (position, velocity, acceleration) to the target velocity
with Ruckig (Berscheid & Kroeger, RSS 2021: time-optimal, jerk-limited online trajectories; the
generator MoveIt's servo smoothing uses), each joint independently, inside fractions of the
robot profile's limits. The same object shapes the actions in the training env and in the
policy server, so a policy learns the motion the arm will make.

A plan starts at `t0`, `lead_s` after the tick that computed it (the budget for message
latency), on the previous plan's time grid and from the previous plan's exact state there, so
consecutive plans join without a step in any derivative. It holds the target for one control
period and then brakes to rest (the "tail"): sent as one joint trajectory, a controller that
receives nothing more brings the arm to rest within limits by itself.

Position guard: before a plan is accepted, the position where its tail stops must lie inside
the soft limits (the profile's position limits shrunk by `position_margin`). A joint that
fails gets target 0, i.e. it brakes now; this is always feasible, because the previous plan's
tail, which starts from this very state, passed the same check. A joint already outside the
soft limits (after a re-anchor) may only move back in.

Time is whatever clock the host uses (seconds, float); nothing here reads a clock.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
import math
from typing import Any

import numpy as np
from ruckig import (
    ControlInterface,
    InputParameter,
    Result,
    Ruckig,
    RuckigError,
    Synchronization,
    Trajectory,
)

from rl_control.contract.shaper_config import GRID_S, ShaperConfig, ShaperError

__all__ = ['GRID_S', 'Limits', 'MotionState', 'Plan', 'Shaper', 'ShaperConfig', 'ShaperError']


@dataclass(frozen=True, eq=False)
class Limits:
    """Joint limits in planning order: position range, velocity, acceleration, jerk (n,)."""

    q_min: np.ndarray
    q_max: np.ndarray
    qd_max: np.ndarray
    qdd_max: np.ndarray
    qddd_max: np.ndarray

    @classmethod
    def from_profile(cls, profile: Any, order: Sequence[int] | None = None) -> Limits:
        """A robot profile's limits (optionally permuted into another joint order)."""
        idx = np.arange(len(profile.q_min)) if order is None else np.asarray(order)
        return cls(*(np.asarray(getattr(profile, k), np.float64)[idx].copy()
                     for k in ('q_min', 'q_max', 'qd_max', 'qdd_max', 'qddd_max')))


@dataclass
class MotionState:
    """Reference position, velocity and acceleration of every joint, float64 (n,)."""

    q: np.ndarray
    qd: np.ndarray
    qdd: np.ndarray

    def copy(self) -> MotionState:
        """An independent copy."""
        return MotionState(self.q.copy(), self.qd.copy(), self.qdd.copy())


@dataclass(eq=False)
class Plan:
    """A planned motion: `move` toward the target from t0, then `tail` to rest from t0 + hold.

    `move` is None for a plan that only holds still (rest at `rest_q`).
    """

    t0: float
    hold_s: float
    move: Trajectory | None
    tail: Trajectory | None
    rest_q: np.ndarray
    target: np.ndarray
    braking: bool = False
    limited: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    @property
    def end(self) -> float:
        """When the arm is at rest if nothing replaces this plan."""
        return self.t0 + self.hold_s + (self.tail.duration if self.tail is not None else 0.0)

    def at(self, t: float) -> MotionState:
        """The reference at time `t` (before t0: the start state; after the end: at rest)."""
        n = len(self.rest_q)
        if self.move is None or t >= self.end:
            return MotionState(self.rest_q.copy(), np.zeros(n), np.zeros(n))
        dt = max(t - self.t0, 0.0)
        if dt <= self.hold_s or self.tail is None:
            q, qd, qdd = self.move.at_time(dt)
        else:
            q, qd, qdd = self.tail.at_time(dt - self.hold_s)
        return MotionState(np.array(q), np.array(qd), np.array(qdd))

    def samples(self, sample_s: float) -> list[tuple[float, MotionState]]:
        """(time from t0, state) every `sample_s` from t0, the last one exactly at rest."""
        out = []
        span = self.end - self.t0
        k = 0
        while k * sample_s < span - 0.5 * GRID_S:
            out.append((k * sample_s, self.at(self.t0 + k * sample_s)))
            k += 1
        out.append((span, self.at(self.end)))
        return out


class Shaper:
    """Jerk-limited velocity tracking from the previous plan's state (see module docstring)."""

    def __init__(self, limits: Limits, config: ShaperConfig,
                 velocity_limits: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None
                 = None) -> None:
        """`velocity_limits(q) -> (lower, upper)`: position-dependent bounds (the FR3's).

        It must accept positions of shape (..., n) and return bounds of the same shape.
        """
        self.limits, self.cfg = limits, config
        self.velocity_limits = velocity_limits
        self.n = len(limits.q_min)
        self.soft_min = limits.q_min + config.position_margin
        self.soft_max = limits.q_max - config.position_margin
        self.v_max = limits.qd_max * config.velocity_fraction
        self._otg = Ruckig(self.n)

        def velocity_input(acceleration: float, jerk: float) -> InputParameter:
            inp = InputParameter(self.n)
            inp.control_interface = ControlInterface.Velocity
            inp.synchronization = Synchronization.No
            inp.max_velocity = self.v_max.tolist()
            inp.max_acceleration = (limits.qdd_max * acceleration).tolist()
            inp.max_jerk = (limits.qddd_max * jerk).tolist()
            inp.target_acceleration = [0.0] * self.n
            return inp

        self._inp = velocity_input(config.acceleration_fraction, config.jerk_fraction)
        self._brake_inp = velocity_input(config.brake_acceleration_fraction,
                                         config.brake_jerk_fraction)
        self.plan: Plan | None = None
        self.previous: Plan | None = None
        # Plans that have not started yet, or are the one running, oldest first: with a tick
        # latency longer than a period (randomized training) several are pending at once.
        self.history: list[Plan] = []
        self.late_plans = 0  # plans that started later than one period after the previous

    # -- anchoring ----------------------------------------------------------------------------
    def anchor(self, t: float, q: Sequence[float], qd: Sequence[float] | None = None) -> None:
        """Forget the plan: the reference is the measured state (q, qd, zero acceleration) at t.

        For the start of serving and for an arm that is really elsewhere (after a reflex and
        its recovery, a controller switch, the arm moved by hand), never for late states.
        The state is clipped into the position range and the velocity band first: every plan
        starts from it, and no plan may leave the limits whatever it was handed.
        """
        q = np.asarray(q, np.float64)
        qd = np.zeros(self.n) if qd is None else np.asarray(qd, np.float64)
        if q.shape != (self.n,) or qd.shape != (self.n,):
            raise ShaperError(f'anchor needs {self.n} positions and velocities')
        if not (np.all(np.isfinite(q)) and np.all(np.isfinite(qd))):
            raise ShaperError(f'anchor needs finite positions and velocities, got {q} {qd}')
        q = np.clip(q, self.limits.q_min, self.limits.q_max)
        lo, hi = self._band(q)
        qd = np.clip(qd, lo, hi)
        start = MotionState(q.copy(), qd.copy(), np.zeros(self.n))
        t0 = round(t / GRID_S) * GRID_S
        self.previous = None
        self.plan = self._make(t0, start, np.zeros(self.n), hold_s=0.0)
        self.history = [self.plan]
        if not np.any(qd):
            self.plan.move = None  # at rest: nothing to plan
            self.plan.tail = None

    @property
    def anchored(self) -> bool:
        """Whether there is a reference to plan from."""
        return self.plan is not None

    # -- planning -----------------------------------------------------------------------------
    def next_start(self, now: float) -> float:
        """The start of the next plan: on the current plan's sample grid, >= now + lead."""
        assert self.plan is not None, 'anchor() first'
        step = self.cfg.sample_s
        t_prev = self.plan.t0
        k = max(1, math.ceil((now + self.cfg.lead_s - t_prev) / step - 1e-9))
        return t_prev + k * step

    def step(self, now: float, v_target: Sequence[float]) -> Plan:
        """Plan toward `v_target` [rad/s] for one period, starting at `next_start(now)`."""
        target = np.clip(np.asarray(v_target, np.float64), -self.v_max, self.v_max)
        if target.shape != (self.n,) or not np.all(np.isfinite(target)):
            raise ShaperError(f'velocity target must be {self.n} finite numbers')
        return self._advance(now, target, braking=False)

    def _band(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.velocity_limits is None:
            return -self.limits.qd_max, self.limits.qd_max
        return self.velocity_limits(q)

    def brake(self, now: float) -> Plan:
        """Bring every joint to rest as fast as the limits allow, from the current plan."""
        return self._advance(now, np.zeros(self.n), braking=True)

    def _advance(self, now: float, target: np.ndarray, braking: bool) -> Plan:
        assert self.plan is not None, 'anchor() first'
        t0 = self.next_start(now)
        if t0 > self.plan.t0 + max(self.plan.hold_s, self.cfg.period_s) + 1e-9:
            self.late_plans += 1
        start = self.plan.at(t0)
        hold = self.cfg.period_s
        if self.velocity_limits is not None and not braking:
            lo, hi = self._band(start.q)
            frac = self.cfg.velocity_fraction
            target = np.clip(target, np.minimum(lo * frac, 0.0), np.maximum(hi * frac, 0.0))
        if braking:
            plan = self._make(t0, start, target, hold_s=0.0, braking=True)
        else:
            plan = self._make(t0, start, target, hold)
            bad = self._leaves_soft_limits(plan, start)
            if bad.any():
                target = np.where(bad, 0.0, target)
                plan = self._make(t0, start, target, hold)
                plan.limited = bad
        plan.braking = braking
        self.previous, self.plan = self.plan, plan
        self.history.append(plan)
        if len(self.history) > 16:  # `reference` prunes as time passes; this only bounds it
            del self.history[0]
        return plan

    def _ruckig(self, start: MotionState, target: np.ndarray, braking: bool = False
                ) -> Trajectory:
        inp = self._brake_inp if braking else self._inp
        inp.current_position = start.q.tolist()
        inp.current_velocity = start.qd.tolist()
        inp.current_acceleration = start.qdd.tolist()
        inp.target_velocity = target.tolist()
        traj = Trajectory(self.n)
        try:
            result = self._otg.calculate(inp, traj)
        except (RuckigError, ValueError) as exc:  # ValueError: a code the enum lacks (-101)
            result = ' '.join(str(exc).split())[:200]
        if result not in (Result.Working, Result.Finished):
            raise ShaperError(f'Ruckig could not plan from {start} to {target}: {result}')
        return traj

    def _make(self, t0: float, start: MotionState, target: np.ndarray, hold_s: float,
              braking: bool = False) -> Plan:
        move = self._ruckig(start, target, braking)
        q1, qd1, qdd1 = move.at_time(hold_s)
        tail = self._ruckig(MotionState(np.array(q1), np.array(qd1), np.array(qdd1)),
                            np.zeros(self.n), braking)
        rest = np.array(tail.at_time(tail.duration)[0])
        return Plan(t0, hold_s, move, tail, rest, target.copy(),
                    limited=np.zeros(self.n, bool))

    def _leaves_soft_limits(self, plan: Plan, start: MotionState) -> np.ndarray:
        """Joints whose motion (hold, then stop) would leave the soft limits further.

        The positions are sampled on the waypoint grid and at the stop (Ruckig 0.19's
        `position_extrema` counts 0 as an extremum of velocity-interface profiles, so it is not
        used); between samples a joint moves at most v * sample_s, and the extremes of a
        stopping motion lie where it is slowest.
        """
        assert plan.move is not None and plan.tail is not None
        step, hold = self.cfg.sample_s, plan.hold_s
        states = [plan.move.at_time(k * step) for k in range(round(hold / step) + 1)]
        tail_n = math.floor(plan.tail.duration / step + 1e-9)
        states += [plan.tail.at_time(k * step) for k in range(1, tail_n + 1)]
        states.append(plan.tail.at_time(plan.tail.duration))
        qs = np.array([st[0] for st in states])
        floor = np.minimum(self.soft_min, start.q)
        ceil = np.maximum(self.soft_max, start.q)
        bad = (qs.min(0) < floor - 1e-12) | (qs.max(0) > ceil + 1e-12)
        if self.velocity_limits is not None:
            # The FR3's band narrows toward its limits: check each sample against the band at
            # the position the joint reaches by the next sample (between samples it is tighter).
            qds = np.array([st[1] for st in states])
            lo, hi = self.velocity_limits(qs + qds * step)  # vectorized over the samples
            bad |= np.any((qds < lo) | (qds > hi), axis=0)
        return bad

    # -- undo ---------------------------------------------------------------------------------
    def savepoint(self) -> tuple[Any, ...]:
        """The plans as they are now, cheaply (for `rollback`: a plan that was never sent)."""
        return self.plan, self.previous, list(self.history), self.late_plans

    def rollback(self, point: tuple[Any, ...]) -> None:
        """Forget every plan made since `savepoint()` returned `point`."""
        self.plan, self.previous, history, self.late_plans = point
        self.history = list(history)

    # -- persistence --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The plans as the inputs that made them (Ruckig trajectories are recomputed)."""
        return {'history': [_plan_record(p) for p in self.history],
                'late_plans': self.late_plans}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of state_dict: the same plans, bit for bit (planning is deterministic)."""
        self.history = [self._rebuild(r) for r in state['history']]
        self.plan = self.history[-1] if self.history else None
        self.previous = self.history[-2] if len(self.history) > 1 else None
        self.late_plans = int(state['late_plans'])

    def _rebuild(self, rec: dict[str, Any] | None) -> Plan | None:
        if rec is None:
            return None
        start = MotionState(*(np.asarray(rec[k], np.float64) for k in ('q', 'qd', 'qdd')))
        plan = self._make(rec['t0'], start, np.asarray(rec['target'], np.float64),
                          rec['hold_s'], bool(rec['braking']))
        plan.braking, plan.limited = rec['braking'], np.asarray(rec['limited'], bool)
        if rec['at_rest']:
            plan.move = plan.tail = None
            plan.rest_q = start.q.copy()
        return plan

    # -- reading the reference ----------------------------------------------------------------
    def reference(self, t: float) -> MotionState:
        """The reference the robot follows at `t`: the newest plan that has started by then.

        Two plans can be pending when ticks come closer than `lead_s` (a brake right after a
        tick), so the ones before the current plan are searched newest first.
        """
        assert self.plan is not None, 'anchor() first'
        hist = self.history
        i = len(hist) - 1
        while i > 0 and t < hist[i].t0:
            i -= 1
        if i > 0:  # plans older than the one running at t are never needed again
            del hist[:i]
        return hist[0].at(t)

    def at_rest(self, t: float) -> bool:
        """Whether the reference is at rest from `t` on (the current plan has ended)."""
        return self.plan is None or t >= self.plan.end - 1e-12 or self.plan.move is None


def _plan_record(plan: Plan | None) -> dict[str, Any] | None:
    if plan is None:
        return None
    start = plan.at(plan.t0) if plan.move is not None else MotionState(
        plan.rest_q, np.zeros_like(plan.rest_q), np.zeros_like(plan.rest_q))
    return {'t0': plan.t0, 'hold_s': plan.hold_s, 'q': start.q.copy(), 'qd': start.qd.copy(),
            'qdd': start.qdd.copy(), 'target': plan.target.copy(), 'braking': plan.braking,
            'limited': plan.limited.copy(), 'at_rest': plan.move is None}
