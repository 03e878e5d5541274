"""Goals: accepted in the robot's base frame and inside the region the bundle was trained on.

A goal outside the training region is refused, not clamped: the policy has never seen it, and
a goal 50 m away would saturate every joint toward the workspace boundary. The arm then holds
(brakes to rest) until a goal inside comes.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

NO_GOAL = 'no_goal'
BAD_GOAL = 'bad_goal'
GOAL_OUTSIDE = 'goal_outside_region'


class GoalGate:
    """Checks goals against the frame and region; holds the current one (or why there is none)."""

    def __init__(self, base_frame: str, low: Sequence[float] | None,
                 high: Sequence[float] | None) -> None:
        self.base_frame = base_frame
        self.low = None if low is None else np.asarray(low, np.float64)
        self.high = None if high is None else np.asarray(high, np.float64)
        if (self.low is None) != (self.high is None):
            raise ValueError('a goal region needs both low and high')
        if self.low is not None and (self.low.shape != (3,) or self.high.shape != (3,)
                                     or not np.all(np.isfinite(self.low))
                                     or not np.all(np.isfinite(self.high))
                                     or np.any(self.low > self.high)):
            raise ValueError(f'goal region must be 3 finite lows <= 3 finite highs, got {low} '
                             f'{high}')
        self.goal: np.ndarray | None = None
        self.reason = NO_GOAL
        self.last_refused: str | None = None
        self.counts: Counter = Counter()

    def tighten(self, low: Sequence[float], high: Sequence[float]) -> None:
        """Intersect the region with [low, high] (a parameter may narrow, never widen, it)."""
        lo, hi = np.asarray(low, np.float64), np.asarray(high, np.float64)
        if lo.shape != (3,) or hi.shape != (3,) or not np.all(np.isfinite([*lo, *hi])):
            raise ValueError(f'goal_low/goal_high need 3 finite values each, got {list(low)} '
                             f'{list(high)}')
        self.low = lo if self.low is None else np.maximum(self.low, lo)
        self.high = hi if self.high is None else np.minimum(self.high, hi)
        if np.any(self.low > self.high):
            raise ValueError(f'goal_low/goal_high leave no region inside the bundle\'s: '
                             f'{self.low.tolist()} > {self.high.tolist()}')

    def clear(self) -> None:
        """Forget the goal (deactivation): serving holds until a new one comes."""
        self.goal, self.reason = None, NO_GOAL

    def offer(self, frame: str, xyz: np.ndarray) -> str | None:
        """A new goal; returns why it was refused (None: accepted). A refusal clears the goal."""
        why, text = None, ''
        if frame and frame != self.base_frame:
            why, text = BAD_GOAL, f'frame {frame!r} is not {self.base_frame!r} (no TF here)'
        elif xyz.shape != (3,) or not np.all(np.isfinite(xyz)):
            why, text = BAD_GOAL, 'NaN/Inf in the goal'
        elif self.low is not None and (np.any(xyz < self.low) or np.any(xyz > self.high)):
            why, text = GOAL_OUTSIDE, (f'{np.round(xyz, 3).tolist()} is outside the goal region '
                                       f'{self.low.tolist()} .. {self.high.tolist()}')
        if why is not None:
            self.goal, self.reason = None, why
            self.last_refused = f'goal refused: {text}'
            self.counts[why] += 1
            return why
        self.goal, self.reason = np.array(xyz, np.float64), 'ok'
        self.counts['accepted'] += 1
        return None
