"""Guards at the two ends of the serving path: what a measured state may be, what a command is.

Inputs. A joint state anchors the plan when the arm is elsewhere (a reflex, a push), so a state
that no real arm can be in would become the start of a motion: a bridge that publishes deg/s,
a second publisher on `joint_states`, a wrong joint mapping. Such a state is refused like a
NaN (the server brakes from its own reference and says which joint and value) until plausible
states come again. Plausible: finite, the position within the profile's range widened by
`POSITION_MARGIN` (encoder offsets, a joint at its mechanical stop) and the speed within
`VELOCITY_FACTOR` x the velocity limit (libfranka reports the measured `dq`, which overshoots
the commanded one while tracking; the robot stops with a reflex well before this).

Outputs. Whatever the shaper was handed, a command must lie inside the profile's position range
and velocity limits: `check_trajectory` raises on any waypoint outside them, and the loop treats
that as an internal error (brake from the last good plan, latch, report) instead of sending it.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from rl_control.serve.state import Plausible

POSITION_MARGIN = 0.1  # rad beyond the profile's range
VELOCITY_FACTOR = 1.25  # x the profile's velocity limit
_TOL = 1e-9  # float round-off of the samples (positions, velocities are planned inside)


class CommandLimitError(RuntimeError):
    """A command that would leave the robot's limits; the message names the joint and value."""


def plausible(profile: Any, idx: np.ndarray) -> Plausible:
    """The plausibility bounds of the profile's joints `idx` (planning order)."""
    return Plausible(np.asarray(profile.q_min, np.float64)[idx] - POSITION_MARGIN,
                     np.asarray(profile.q_max, np.float64)[idx] + POSITION_MARGIN,
                     np.asarray(profile.qd_max, np.float64)[idx] * VELOCITY_FACTOR)


def check_trajectory(msg: Any, names: list[str], q_min: np.ndarray, q_max: np.ndarray,
                     qd_max: np.ndarray) -> None:
    """Raise CommandLimitError unless every waypoint of `msg` is inside the limits.

    The limits are in the message's joint order (`names`).
    """
    pos = np.array([p.positions for p in msg.points], np.float64)
    vel = np.array([p.velocities for p in msg.points], np.float64)
    off = ~np.isfinite(pos) | (pos < q_min - _TOL) | (pos > q_max + _TOL)
    if off.any():
        k, j = (int(i) for i in np.argwhere(off)[0])
        raise CommandLimitError(f'command point {k} of {names[j]}: position {pos[k, j]:.6g} '
                                f'outside [{q_min[j]:.4g}, {q_max[j]:.4g}] rad')
    fast = ~np.isfinite(vel) | (np.abs(vel) > qd_max + _TOL)
    if fast.any():
        k, j = (int(i) for i in np.argwhere(fast)[0])
        raise CommandLimitError(f'command point {k} of {names[j]}: velocity {vel[k, j]:.6g} '
                                f'exceeds the limit {qd_max[j]:.4g} rad/s')


def clip_velocity(qd: np.ndarray, qd_max: np.ndarray) -> np.ndarray:
    """A streamed velocity inside the limits (the stream is a plan's own, so this is a guard)."""
    return np.clip(np.nan_to_num(qd, nan=0.0), -qd_max, qd_max)


def clip_position(q: np.ndarray, q_min: np.ndarray, q_max: np.ndarray) -> np.ndarray:
    """A streamed position inside the range (a plan's own, so this is a guard too)."""
    return np.clip(q, q_min, q_max)
