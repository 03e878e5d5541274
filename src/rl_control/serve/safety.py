"""The safety gate between a policy and the shaper (pure: no ROS, no clock of its own).

A learned policy is never trusted with the hardware directly. Every velocity (or torque)
target passes `SafetyFilter.filter`, in this order:
1. e-stop latch: after `estop()`, stop until `reset()`; nothing else can lift it;
2. inactive (not activated, deactivated): stop;
3. a reason from the host (stale or bad state, missing joint, no or refused goal, NaN action,
   an internal error): stop;
4. NaN/Inf in the target itself: stop;
5. per-joint clamp to `clamp_scale` x [low, high] (the bundle's and the robot's limits; the
   live speed-scaling knob);
6. ramp-in: the target is scaled from 0 to 1 over `ramp_in_s` after `activate()` or `reset()`.
"Stop" is a result with no command: the host then has the shaper brake to rest within the
robot's limits. It is never an instant zero, which a real Franka answers with a reflex.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

OK = 'ok'
ESTOP = 'estop'
INACTIVE = 'inactive'
BAD_ACTION = 'bad_action'


@dataclass
class FilterResult:
    """One tick's decision: the target to shape (None: brake) and why."""

    command: np.ndarray | None
    reason: str = OK
    clamped: bool = False
    ramp: float = 1.0


@dataclass
class SafetyFilter:
    """Stateful gate for one served robot; limits in command units and planning order."""

    low: np.ndarray
    high: np.ndarray
    clamp_scale: float = 1.0
    ramp_in_s: float = 0.5
    counts: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.low = np.asarray(self.low, np.float64)
        self.high = np.asarray(self.high, np.float64)
        if self.low.shape != self.high.shape or np.any(self.low > self.high):
            raise ValueError('low/high must be equal-length vectors with low <= high')
        self.set_clamp_scale(self.clamp_scale)
        if self.ramp_in_s < 0:
            raise ValueError('ramp_in_s must be >= 0')
        self._active_since: float | None = None
        self._estopped = False

    def set_clamp_scale(self, scale: float) -> None:
        """Change the speed scaling (live): targets are clamped to scale x the limits."""
        if not 0.0 < scale <= 1.0:
            raise ValueError(f'clamp_scale must be in (0, 1], got {scale}')
        self.clamp_scale = float(scale)

    def activate(self, now: float) -> None:
        """Start serving: the ramp-in starts now."""
        self._active_since = now

    def deactivate(self) -> None:
        """Stop serving; `filter` stops until the next `activate`."""
        self._active_since = None

    @property
    def active(self) -> bool:
        """Whether `activate` was called more recently than `deactivate`."""
        return self._active_since is not None

    def estop(self) -> None:
        """Latch a stop until `reset`."""
        self._estopped = True

    def reset(self, now: float) -> None:
        """Lift the e-stop latch; the ramp-in starts over."""
        self._estopped = False
        if self._active_since is not None:
            self._active_since = now

    @property
    def estopped(self) -> bool:
        """Whether the e-stop latch is set."""
        return self._estopped

    def filter(self, now: float, target: np.ndarray | None, reason: str = OK) -> FilterResult:
        """The target to shape at `now`, or a stop with its reason (see module docstring)."""
        if self._estopped:
            reason = ESTOP
        elif self._active_since is None:
            reason = INACTIVE
        elif reason == OK and (target is None or not np.all(np.isfinite(target))):
            reason = BAD_ACTION
        if reason != OK:
            self.counts[reason] += 1
            return FilterResult(None, reason, ramp=0.0)
        lo, hi = self.low * self.clamp_scale, self.high * self.clamp_scale
        out = np.minimum(np.maximum(target, lo), hi)
        clamped = bool(np.any(out != target))
        self.counts['clamped'] += clamped
        ramp = 1.0
        if self.ramp_in_s > 0:
            ramp = min(1.0, max(0.0, (now - self._active_since) / self.ramp_in_s))
            out = out * ramp
        self.counts[OK] += 1
        return FilterResult(out, OK, clamped, ramp)
