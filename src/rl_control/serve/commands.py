"""Shaped plans -> the JointTrajectory messages a joint_trajectory_controller accepts (pure).

Each message carries the plan's waypoints every `sample_s` (positions, velocities,
accelerations: the controller splines them with quintics) and ends with the braking tail at
rest, so a default controller accepts it and, if nothing more comes, brakes by itself. How a
message joins the one before, so that no arrival time makes a step (a prefix of the previous
message's own waypoints, stamped in the past), and why: docs/trajectory_messages.md.
"""
from __future__ import annotations

from collections.abc import Sequence
import math

import numpy as np

from rl_control.contract.shaper import GRID_S, MotionState, Plan
from rl_control.robots.trajectory import JointTrajectory, JointTrajectoryPoint


def _point(tfs: float, state: MotionState, perm: np.ndarray) -> JointTrajectoryPoint:
    return JointTrajectoryPoint(round(tfs / GRID_S * 1e6) * GRID_S / 1e6,
                                state.q[perm].tolist(), state.qd[perm].tolist(),
                                state.qdd[perm].tolist())


def moving(plan: Plan | None, t: float) -> bool:
    """Whether the reference of `plan` is in motion at `t`."""
    if plan is None:
        return False
    s = plan.at(t)
    return bool(np.any(s.qd != 0.0) or np.any(s.qdd != 0.0))


def _prefix_of(last: JointTrajectory, now: float, t0: float
               ) -> tuple[float, list[JointTrajectoryPoint]]:
    """(stamp, points) of `last`'s own waypoints from the last one at or before `now` to `t0`."""
    times = [last.stamp + p.time_from_start for p in last.points]
    i = max((k for k, t in enumerate(times) if t <= now + 1e-9), default=0)
    stamp = times[i]
    return stamp, [JointTrajectoryPoint(round((t - stamp) / GRID_S * 1e6) * GRID_S / 1e6,
                                        p.positions, p.velocities, p.accelerations)
                   for t, p in zip(times[i:], last.points[i:], strict=True)
                   if t < t0 - 0.5 * GRID_S]


def trajectory_message(plan: Plan, previous: Plan | None, now: float, sample_s: float,
                       joint_names: Sequence[str], perm: np.ndarray,
                       last: JointTrajectory | None = None) -> JointTrajectory:
    """The JointTrajectory for `plan`, computed at `now` (see the module docstring).

    `perm` maps controller order to plan order: command slot k carries plan joint perm[k].
    `last` is the message sent before (for `previous`; None after a re-anchor).
    """
    points: list[JointTrajectoryPoint] = []
    stamp = plan.t0
    if last is not None:
        if now < last.stamp + last.points[-1].time_from_start - 0.5 * GRID_S:
            stamp, points = _prefix_of(last, now, plan.t0)  # the controller runs `last`
        else:  # it holds `last`'s final point: restate it, stamped in the past on arrival
            stamp = math.floor(now / GRID_S + 1e-9) * GRID_S
            held = last.points[-1]
            zero = [0.0] * len(held.positions)
            points = [JointTrajectoryPoint(0.0, held.positions, zero, zero)]
    elif previous is not None and moving(previous, now) and previous.t0 <= now:
        k = math.floor((now - previous.t0) / sample_s + 1e-9)
        stamp = previous.t0 + k * sample_s
        t = stamp
        while t < plan.t0 - 0.5 * GRID_S:
            points.append(_point(t - stamp, previous.at(t), perm))
            k += 1
            t = previous.t0 + k * sample_s
    offset = plan.t0 - stamp
    points += [_point(offset + tfs, s, perm) for tfs, s in plan.samples(sample_s)]
    return JointTrajectory(list(joint_names), points, stamp)
