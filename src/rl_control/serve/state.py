"""Joint states merged by name, with per-joint freshness, and the watchdog that judges them.

Why per joint: a robot stack may publish the arm and the gripper on one topic in separate
messages (franka_ros2's gripper node publishes its own), or split the arm; a message with only
some joints must update those and leave the others alone, and the arm must keep moving while
every policy joint is fresh. A policy joint that has not been updated within the stale window,
a NaN/Inf in one, an implausible value (`Plausible`), or a message naming a joint twice is a
reason to brake, never to guess.

Three clocks guard the state: the host's control clock (ROS time, /clock under use_sim_time)
for staleness, the message stamps for age, and the steady clock as a backstop: under
use_sim_time with no /clock the control clock stands still and would never call a dead stream
stale; the steady clock still does.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

OK = 'ok'
NO_STATE = 'no_state'
STALE_STATE = 'stale_state'
OLD_STAMP = 'old_stamp'
BAD_STATE = 'bad_state'
MISSING_JOINT = 'missing_joint'
DUPLICATE_JOINTS = 'duplicate_joints'
NO_VELOCITY = 'no_velocity'
IMPLAUSIBLE_STATE = 'implausible_state'
REFUSING = (DUPLICATE_JOINTS, BAD_STATE, IMPLAUSIBLE_STATE)  # whole messages refused


@dataclass(frozen=True, eq=False)
class Plausible:
    """What a measured state of a real arm can be, per policy joint (`serve/guards.py`).

    A position outside [q_lo, q_hi] or a speed above qd_hi is not a state of this robot: a
    wrong joint mapping, a bridge that publishes degrees, a second publisher on the topic.
    """

    q_lo: np.ndarray
    q_hi: np.ndarray
    qd_hi: np.ndarray


@dataclass(frozen=True)
class StateLimits:
    """When a state is too old: control periods without one, stamp age, steady-clock backstop."""

    stale_s: float
    max_state_age_s: float = 0.0
    backstop_s: float = 0.5
    period_s: float = 0.04


class JointStateCache:
    """The newest valid position (and velocity) of each policy joint, and when it came."""

    def __init__(self, joint_names: Sequence[str], limits: StateLimits,
                 need_velocity: bool = True, plausible: Plausible | None = None) -> None:
        self.names = tuple(joint_names)
        self.limits, self.need_velocity = limits, need_velocity
        self.plausible = plausible
        n = len(self.names)
        self.q = np.zeros(n)
        self.qd = np.zeros(n)
        self.arrival = np.full(n, -np.inf)   # control clock
        self.wall = np.full(n, -np.inf)      # steady clock
        self.stamp = np.zeros(n)             # 0: no stamp
        self.bad = np.zeros(n, bool)         # last value for that joint was NaN/Inf/implausible
        self.counts: Counter = Counter()
        self.last_error: str | None = None
        self.refusing: str | None = None  # why the newest arm message was refused, until one fits
        self._index_cache: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]] = {}
        self.received = False

    def _indices(self, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """(message index, policy index) of the policy joints the message carries."""
        hit = self._index_cache.get(names)
        if hit is None:
            where = {n: i for i, n in enumerate(names)}
            pairs = [(where[n], k) for k, n in enumerate(self.names) if n in where]
            hit = (np.array([p[0] for p in pairs], np.intp),
                   np.array([p[1] for p in pairs], np.intp))
            if len(self._index_cache) > 64:
                self._index_cache.clear()
            self._index_cache[names] = hit
        return hit

    def update(self, now: float, wall: float, names: Sequence[str], pos: np.ndarray,
               vel: np.ndarray, stamp: float = 0.0) -> str | None:
        """Merge one JointState; returns why it was refused (None: used or irrelevant).

        A stamp up to one period AHEAD of `now` counts as the arrival time: under sim time the
        /clock message that precedes a state may be processed after it, and the clock then
        seems to jump past the state's arrival. Further ahead (unsynchronized clocks) is
        ignored, so this delays a stop by at most one period.
        """
        names = tuple(names)
        if len(set(names)) != len(names):
            dup = sorted(n for n, c in Counter(names).items() if c > 1)
            return self._refuse(DUPLICATE_JOINTS, f'joint state names {dup} more than once')
        if pos.shape != (len(names),) or vel.shape not in ((0,), (len(names),)):
            return self._refuse(BAD_STATE, f'joint state has {len(names)} names, '
                                f'{pos.size} positions and {vel.size} velocities')
        src, dst = self._indices(names)
        if not src.size:
            return None  # e.g. the gripper's own message: nothing of the arm in it
        if vel.size == 0 and self.need_velocity:
            return self._refuse(NO_VELOCITY, 'joint state has no velocities, the policy '
                                'observes joint velocities')
        p = pos[src]
        v = vel[src] if vel.size else np.zeros(src.size)
        finite = np.isfinite(p) & np.isfinite(v)
        if not finite.all():
            self.bad[dst[~finite]] = True
            bad = [self.names[k] for k in dst[~finite]]
            return self._refuse(BAD_STATE, f'NaN/Inf in the state of {bad}')
        why = self._implausible(dst, p, v)
        if why is not None:
            return self._refuse(IMPLAUSIBLE_STATE, why)
        self.q[dst], self.qd[dst] = p, v
        if stamp > now:  # see `arrival_time`
            now = min(stamp, now + self.limits.period_s)
        self.arrival[dst], self.wall[dst] = now, wall
        self.stamp[dst] = stamp
        self.bad[dst] = False
        self.received = True
        self.refusing = None
        return None

    def _implausible(self, dst: np.ndarray, p: np.ndarray, v: np.ndarray) -> str | None:
        """Why (joint, value) this state cannot be the robot's, or None; marks those joints."""
        lim = self.plausible
        if lim is None:
            return None
        off = (p < lim.q_lo[dst]) | (p > lim.q_hi[dst])
        fast = np.abs(v) > lim.qd_hi[dst]
        if not (off.any() or fast.any()):
            return None
        self.bad[dst[off | fast]] = True
        k = int(np.flatnonzero(off | fast)[0])
        j, name = int(dst[k]), self.names[int(dst[k])]
        if off[k]:
            return (f'implausible joint state: {name} position {p[k]:.6g} rad is outside '
                    f'[{lim.q_lo[j]:.4g}, {lim.q_hi[j]:.4g}]')
        return (f'implausible joint state: {name} velocity {v[k]:.6g} rad/s exceeds '
                f'{lim.qd_hi[j]:.4g}')

    def _refuse(self, reason: str, text: str) -> str:
        self.counts[reason] += 1
        self.last_error = text
        if reason in REFUSING:
            self.refusing = reason  # whole messages refused: say so, not just 'no state'
        return reason

    def problem(self, now: float, wall: float) -> str | None:
        """Why the merged state must not be used at `now` (None when every joint is fresh)."""
        lim = self.limits
        if self.refusing is not None:
            return self.refusing
        if not self.received:
            return NO_STATE
        if self.bad.any():
            return BAD_STATE
        missing = np.isinf(self.arrival)
        if missing.any():
            self.last_error = (f'joint state lacks joint(s) '
                               f'{[n for n, m in zip(self.names, missing, strict=True) if m]}')
            return MISSING_JOINT
        oldest = float(self.arrival.min())
        if now - oldest > lim.stale_s or wall - float(self.wall.min()) > lim.backstop_s:
            return STALE_STATE
        # The clock stepped back (an NTP step, a restarted /clock): arrival times no longer
        # measure anything; one period of slack for a tick that read the clock just before.
        if now < float(self.arrival.max()) - lim.period_s - 1e-6:  # 1 us: float round-off
            return STALE_STATE
        if lim.max_state_age_s > 0 and self.stamp.min() > 0 and \
                now - float(self.stamp.min()) > lim.max_state_age_s:
            return OLD_STAMP
        return None

    def age(self, now: float) -> float:
        """Seconds since the stalest policy joint was updated (inf before all were)."""
        return float(now - self.arrival.min()) if self.received else float('inf')

    def state_stamp(self) -> float:
        """The oldest stamp among the policy joints (0: none carried a stamp)."""
        return float(self.stamp.min())
