"""The object's pose as the server receives it, and the watchdog that judges it (pure).

A pick-and-place policy observes the object's pose (contract/terms.py `object_pose`: position,
then a unit quaternion x, y, z, w, in the robot base frame) from a tracker: a camera pipeline
that publishes geometry_msgs/PoseStamped at its frame rate, stamped with the capture time and
delivered late (robots/tracker.py models one: 30 Hz, 20-100 ms late in training). The policy
was trained on poses at most `delay + 1 / rate` old; a pose much older than that is not the
object any more (it may be in the hand, moving), and a policy acting on it may close on air or
open over the table. So, as for the joint states (serve/state.py), the pose is a reason to
brake, never to guess, when it is:
- missing (none received since configure), `no_object_pose`;
- stale: none valid arrived within `stale_s` on the control clock, or within `backstop_s` on
  the steady clock (use_sim_time without /clock), or the control clock stepped back,
  `stale_object_pose`;
- old: its stamp (capture time) more than `max_age_s` before now, `old_object_stamp`;
- bad: NaN/Inf, a quaternion far from unit length (an all-zero quaternion is an unset
  PoseStamped), or another frame than the base frame (no TF here, as for goals),
  `bad_object_pose`; it replaces the last good pose, so the arm brakes until a valid one comes.
Braking here stops the arm only: the hand keeps its last command (serve/hand.py), so a dead
tracker never makes the server open the hand on a carried object.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

NO_OBJECT_POSE = 'no_object_pose'
STALE_OBJECT_POSE = 'stale_object_pose'
OLD_OBJECT_STAMP = 'old_object_stamp'
BAD_OBJECT_POSE = 'bad_object_pose'
OBJECT_REASONS = (NO_OBJECT_POSE, STALE_OBJECT_POSE, OLD_OBJECT_STAMP, BAD_OBJECT_POSE)
QUATERNION_TOLERANCE = 0.05
"""|norm(q) - 1| above this is not a rotation (a pipeline's float rounding is far below it)."""


@dataclass(frozen=True)
class ObjectLimits:
    """When a pose is too old: control-clock window, stamp age, steady-clock backstop."""

    stale_s: float = 0.2
    max_age_s: float = 0.3
    backstop_s: float = 0.5
    period_s: float = 0.04


class ObjectPoseInput:
    """The newest valid object pose (base frame), when it came, and why it may not be used."""

    def __init__(self, base_frame: str, limits: ObjectLimits) -> None:
        self.base_frame = base_frame
        self.limits = limits
        self.pose: np.ndarray | None = None
        self.arrival = self.wall = -np.inf
        self.stamp = 0.0
        self.bad = False
        self.counts: Counter = Counter()
        self.last_error: str | None = None

    def update(self, now: float, wall: float, frame: str, pose: Any,
               stamp: float = 0.0) -> str | None:
        """One PoseStamped (x, y, z, qx, qy, qz, qw); why it was refused (None: taken).

        A refused pose counts as bad until a valid one arrives (the arm brakes meanwhile).
        The quaternion is normalized (a pipeline's rounding; the policy saw unit ones).
        """
        p = np.asarray(pose, np.float64).reshape(-1)
        text = None
        if frame and frame != self.base_frame:
            text = f'object pose frame {frame!r} is not {self.base_frame!r} (no TF here)'
        elif p.shape != (7,) or not np.all(np.isfinite(p)):
            text = f'object pose must be 7 finite numbers, got {np.round(p, 4).tolist()}'
        elif abs(float(np.linalg.norm(p[3:])) - 1.0) > QUATERNION_TOLERANCE:
            text = (f'object pose quaternion {np.round(p[3:], 4).tolist()} is not a rotation '
                    f'(norm {np.linalg.norm(p[3:]):.3g})')
        if text is not None:
            self.bad = True
            self.counts[BAD_OBJECT_POSE] += 1
            self.last_error = text
            return BAD_OBJECT_POSE
        p[3:] /= np.linalg.norm(p[3:])
        self.pose, self.bad = p, False
        self.arrival, self.wall, self.stamp = float(now), float(wall), float(stamp)
        self.counts['accepted'] += 1
        return None

    def problem(self, now: float, wall: float) -> str | None:
        """Why the pose must not be used at `now` (None: it may); see the module docstring."""
        lim = self.limits
        if self.bad:
            return BAD_OBJECT_POSE
        if self.pose is None:
            return NO_OBJECT_POSE
        if (now - self.arrival > lim.stale_s or wall - self.wall > lim.backstop_s
                or now < self.arrival - lim.period_s - 1e-6):
            return STALE_OBJECT_POSE
        if lim.max_age_s > 0 and self.stamp > 0 and now - self.stamp > lim.max_age_s:
            return OLD_OBJECT_STAMP
        return None

    def age(self, now: float) -> float:
        """Seconds since the last valid pose arrived (inf before one did)."""
        return float(now - self.arrival) if self.pose is not None else float('inf')

    def values(self, now: float) -> dict[str, Any]:
        """/diagnostics values."""
        return {'object_pose_age_ms': self.age(now) * 1e3,
                'object_pose_refused': self.counts[BAD_OBJECT_POSE],
                'object_pose_error': self.last_error or ''}
