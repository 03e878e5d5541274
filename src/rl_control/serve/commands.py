"""Shaped plans -> the messages a ros2_control Franka accepts (plain Python, no ROS).

Trajectory mode (a joint_trajectory_controller). Each message carries waypoints (positions,
velocities, accelerations, so the controller splines them with quintics) sampled from the plan
every `sample_s`, ending with the braking tail at zero velocity: a default controller accepts it
(ros2_controllers rejects a last point with nonzero velocity), and if no further message comes
the arm brakes to rest by itself.

How a message joins the one before, so that no arrival time makes a step in any derivative:
- the arm is moving: the message starts with a PREFIX, the previous plan's own waypoints from
  the last grid time at or before the tick up to the new plan's start, and is stamped with that
  prefix start, which lies in the past when it arrives. ros2_controllers (legacy replacement,
  `allow_trajectory_replacement: false`, the only behaviour up to Kilted) then samples the new
  message inside its waypoints from the first cycle on, and those are the old trajectory's own
  points, so the commanded reference continues exactly, whenever in [prefix start, plan start]
  the message arrives. Starting a message at its first point instead (a future stamp) would
  spline from the controller's "state before the trajectory", which JTC records one control
  period off (it stores the next cycle's setpoint under the current cycle's time: #1306 and
  #780): a double step at every re-plan, a jerk reflex on a Franka.
- the arm is at rest after a message of ours: the prefix is the point the controller holds
  (that message's last), stamped at the tick, so the controller again samples inside the message
  and never splines from the measured state (which lags the held one while the arm settles);
- the arm is at rest with no message of ours yet (first message, after a re-anchor): no
  prefix; the message is stamped with the plan start and the controller splines from the
  position it holds (measured: it has been at rest), over the lead time.
Late messages (arriving after the plan start) make a step in the reference: `lead_s` must
exceed the worst message latency.
The prefix is taken from the previous MESSAGE (`last`), the one the controller runs or is
about to run, until it has ended: a tick sooner than `lead_s` after the previous one (a
watchdog or e-stop brake, a deactivate, a state-triggered tick) finds the previous plan not
yet started, and the controller is then still in that message's own prefix (or, from rest,
before its start: the new message then starts where it starts). Its waypoints are on the same
sample grid and join the previous plan at its start. Whether the arm moves is judged by that
message, not by the previous plan's (not yet started) state.
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
