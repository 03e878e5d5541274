"""The safety filter between a policy and a robot's command interface (pure: no ROS).

A learned policy is never trusted with the hardware directly. Every command the policy server
publishes passes through `SafetyFilter.filter`, which applies, in this order:

1. e-stop latch: after `estop()`, zero until `reset()`; nothing else can lift it.
2. state watchdog: no valid joint state yet, none for `stale_periods` control periods, or a
   header stamp older than `max_state_age_s` -> zero until fresh data returns.
3. missing input: no goal yet, or an input dropped for NaN/Inf -> zero.
4. NaN/Inf guard on the command itself -> zero.
5. per-joint clamp to `clamp_scale * [low, high]` (the robot's limits).
6. ramp-in: the command is scaled from 0 to 1 over `ramp_in_s` after `activate()`, so a freshly
   started policy cannot jerk the arm.
7. rate limit: each joint's command moves at most `rate_limit * dt` per tick.

"Zero" is what a forward command controller needs to stop: zero joint velocity, or zero
joint effort (on a Franka the robot's own gravity compensation still holds the arm's weight, but
it is compliant; use velocity or trajectory mode where a stiff hold matters). A stop is applied
at once, never slowed down by the rate limiter: when data is bad, stopping late is worse than
stopping abruptly, and the robot's controller limits the deceleration it executes.

Time is whatever clock the host uses (seconds as float); the filter never reads a clock itself,
so it is deterministic under test and follows ROS sim time when the node does.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
import math

import numpy as np

# Reasons a command is zeroed; also the keys of `SafetyFilter.counts`.
OK = 'ok'
ESTOP = 'estop'
NO_STATE = 'no_state'
STALE_STATE = 'stale_state'
OLD_STAMP = 'old_stamp'
BAD_STATE = 'bad_state'
NO_GOAL = 'no_goal'
BAD_GOAL = 'bad_goal'
BAD_ACTION = 'bad_action'
INACTIVE = 'inactive'


@dataclass
class SafetyConfig:
    """Limits of one robot's command interface, in the controller's joint order and units.

    `rate_limit` is a maximum change per second (rad/s^2 for velocity commands, Nm/s for effort):
    per second rather than per tick so that the limit means the same at 25 Hz and at 1 kHz. It is
    applied each tick with dt = the time since the previous tick, capped at `period_s`.
    A `rate_limit` or `ramp_in_s` of 0 turns that stage off; `max_state_age_s` of 0 turns off
    the header-stamp check (for robots whose clock is not synchronized with this host).
    """

    low: Sequence[float]
    high: Sequence[float]
    period_s: float
    clamp_scale: float = 1.0
    rate_limit: float | Sequence[float] = 0.0
    ramp_in_s: float = 0.5
    stale_periods: float = 2.0
    max_state_age_s: float = 0.0

    def __post_init__(self) -> None:
        low = np.asarray(self.low, dtype=np.float64)
        high = np.asarray(self.high, dtype=np.float64)
        if low.shape != high.shape or low.ndim != 1:
            raise ValueError(f'low/high must be equal-length vectors: {low.shape} {high.shape}')
        if np.any(low > high) or not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            raise ValueError('low must be <= high and both finite')
        if not 0.0 < self.clamp_scale <= 1.0:
            raise ValueError(f'clamp_scale must be in (0, 1], got {self.clamp_scale}')
        if self.period_s <= 0 or self.stale_periods <= 0:
            raise ValueError('period_s and stale_periods must be > 0')
        rate = np.broadcast_to(np.asarray(self.rate_limit, dtype=np.float64), low.shape)
        if np.any(rate < 0) or self.ramp_in_s < 0 or self.max_state_age_s < 0:
            raise ValueError('rate_limit, ramp_in_s and max_state_age_s must be >= 0')


@dataclass
class FilterResult:
    """One tick's output: the command to publish and why it is what it is."""

    command: np.ndarray
    reason: str = OK          # OK, or the reason the command was zeroed
    clamped: bool = False
    rate_limited: bool = False
    ramp: float = 1.0


@dataclass
class SafetyFilter:
    """Stateful filter; one instance per served robot. See the module docstring."""

    config: SafetyConfig
    counts: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        cfg = self.config
        self.n = len(cfg.low)
        self._low = np.asarray(cfg.low, dtype=np.float64) * cfg.clamp_scale
        self._high = np.asarray(cfg.high, dtype=np.float64) * cfg.clamp_scale
        rate = np.broadcast_to(np.asarray(cfg.rate_limit, dtype=np.float64), (self.n,))
        self._rate_on = bool((rate > 0).any())
        self._rate = np.where(rate > 0, rate, np.inf)  # 0 = that joint unlimited
        self._zero = np.zeros(self.n)
        self._last = self._zero.copy()
        self._last_tick: float | None = None
        self._active_since: float | None = None
        self._estopped = False
        self._state_arrival: float | None = None
        self._state_stamp: float | None = None
        self._state_valid = False
        self._state_invalid_reason = NO_STATE

    # -- lifecycle -------------------------------------------------------------------------
    def activate(self, now: float) -> None:
        """Start serving: the ramp-in starts now and the command starts from zero."""
        self._active_since = now
        self._last = self._zero.copy()
        self._last_tick = None

    def deactivate(self) -> None:
        """Stop serving; `filter` returns zero until the next `activate`."""
        self._active_since = None
        self._last = self._zero.copy()

    @property
    def active(self) -> bool:
        """Whether `activate` was called more recently than `deactivate`."""
        return self._active_since is not None

    def estop(self) -> None:
        """Latch zero output until `reset`."""
        self._estopped = True
        self._last = self._zero.copy()

    def reset(self, now: float | None = None) -> None:
        """Lift the e-stop latch; when `now` is given the ramp-in starts over from there."""
        self._estopped = False
        if now is not None and self._active_since is not None:
            self._active_since = now
        self._last = self._zero.copy()

    @property
    def estopped(self) -> bool:
        """Whether the e-stop latch is set."""
        return self._estopped

    # -- inputs ----------------------------------------------------------------------------
    def note_state(self, now: float, stamp: float | None = None) -> None:
        """Record a valid joint state received at `now` (host clock) with header `stamp`.

        A stamp of None or 0 (publishers that leave the header empty) skips the age check.
        A stamp up to one period AHEAD of `now` counts as the arrival time: under sim time the
        /clock message that precedes a state may be processed after the state (another
        thread), and the clock then seems to jump two periods past the state's arrival. Any
        further ahead (unsynchronized clocks) is ignored, so this delays a stop by at most one
        period.
        """
        if stamp and stamp > now:
            now = min(stamp, now + self.config.period_s)
        self._state_arrival = now
        self._state_stamp = stamp if stamp else None
        self._state_valid = True

    def invalidate_state(self, reason: str = BAD_STATE) -> None:
        """Mark the state unusable (e.g. NaN) until the next `note_state`; counts a drop."""
        self._state_valid = False
        self._state_invalid_reason = reason
        self.counts[reason] += 1

    def state_problem(self, now: float) -> str | None:
        """Why the current joint state must not be used at `now`, or None when it is fine."""
        cfg = self.config
        if not self._state_valid or self._state_arrival is None:
            return self._state_invalid_reason
        if now - self._state_arrival > cfg.stale_periods * cfg.period_s:
            return STALE_STATE
        # The clock stepped back (an NTP step, a restarted /clock): the arrival time no longer
        # measures anything, and a dead stream would go unnoticed for the whole step. Stop
        # until a fresh state re-anchors it. One period of slack absorbs a tick that read the
        # clock just before a state was noted.
        if now < self._state_arrival - cfg.period_s:
            return STALE_STATE
        if (cfg.max_state_age_s > 0 and self._state_stamp is not None
                and now - self._state_stamp > cfg.max_state_age_s):
            return OLD_STAMP
        return None

    def state_age(self, now: float) -> float:
        """Seconds since the last valid state arrived (inf when none yet)."""
        return math.inf if self._state_arrival is None else now - self._state_arrival

    # -- the filter ------------------------------------------------------------------------
    def _stop(self, reason: str, now: float) -> FilterResult:
        self.counts[reason] += 1
        self._last = self._zero.copy()
        self._last_tick = now
        return FilterResult(self._zero.copy(), reason=reason, ramp=0.0)

    def filter(self, now: float, raw: np.ndarray | None,
               missing_reason: str = NO_GOAL) -> FilterResult:
        """Turn a raw command (controller order/units) into the command to publish at `now`.

        `raw` is None when the host could not compute a command (no goal, dropped input);
        `missing_reason` then says why, for the counters and diagnostics.
        """
        if self._estopped:
            return self._stop(ESTOP, now)
        if self._active_since is None:
            return self._stop(INACTIVE, now)
        problem = self.state_problem(now)
        if problem is not None:
            return self._stop(problem, now)
        if raw is None:
            return self._stop(missing_reason, now)
        # np.minimum/np.maximum rather than np.clip: on 7-vectors at 1 kHz the ufuncs are
        # several times cheaper than clip's Python-level dispatch. For the same reason the
        # checks below work on Python lists (~0.1 us) rather than array reductions (~1 us):
        # a finite sum proves every entry finite (a non-finite one, NaN/Inf or an overflow,
        # falls back to the exact check), and list inequality is "some entry changed".
        cmd = np.asarray(raw, dtype=np.float64).reshape(-1)
        if cmd.shape != (self.n,):
            raise ValueError(f'command has {cmd.shape[0]} entries, the filter {self.n}')
        cmd_list = cmd.tolist()
        if not math.isfinite(sum(cmd_list)) and not np.isfinite(cmd).all():
            return self._stop(BAD_ACTION, now)

        out = np.minimum(np.maximum(cmd, self._low), self._high)
        clamped = out.tolist() != cmd_list
        if clamped:
            self.counts['clamped'] += 1

        ramp = 1.0
        if self.config.ramp_in_s > 0:
            ramp = min(1.0, max(0.0, (now - self._active_since) / self.config.ramp_in_s))
            if ramp < 1.0:
                out = out * ramp

        rate_limited = False
        if self._rate_on:
            dt = self.config.period_s if self._last_tick is None else now - self._last_tick
            # > 0 so that inf * dt (unlimited joints) is inf, never NaN
            dt = min(max(dt, 1e-9), self.config.period_s)
            step = self._rate * dt
            limited = np.minimum(np.maximum(out, self._last - step), self._last + step)
            rate_limited = limited.tolist() != out.tolist()
            out = limited
            if rate_limited:
                self.counts['rate_limited'] += 1

        self.counts[OK] += 1
        self._last = out.copy()
        self._last_tick = now
        return FilterResult(out, reason=OK, clamped=clamped, rate_limited=rate_limited,
                            ramp=ramp)


def all_finite(*arrays: np.ndarray | Sequence[float] | None) -> bool:
    """True when every given array (None counts as fine) is free of NaN and Inf."""
    return all(a is None or bool(np.all(np.isfinite(np.asarray(a, dtype=np.float64))))
               for a in arrays)
