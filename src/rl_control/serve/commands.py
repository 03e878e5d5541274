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
- the arm is at rest (first message, after a stop): no prefix; the message is stamped with the
  plan start and the controller splines from the position it holds, over the lead time.
Late messages (arriving after the plan start) make a step in the reference: `lead_s` must
exceed the worst message latency.
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


def trajectory_message(plan: Plan, previous: Plan | None, now: float, sample_s: float,
                       joint_names: Sequence[str], perm: np.ndarray) -> JointTrajectory:
    """The JointTrajectory for `plan`, computed at `now` (see the module docstring).

    `perm` maps controller order to plan order: command slot k carries plan joint perm[k].
    """
    points: list[JointTrajectoryPoint] = []
    stamp = plan.t0
    if previous is not None and moving(previous, now) and previous.t0 <= now:
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
