"""JointTrajectory messages and ros2_controllers' `Trajectory` (sampling and splines), in Python.

A faithful port of ros2_controllers HEAD (6.9.0+, commit 94e74de35)
joint_trajectory_controller/src/trajectory.cpp: `set_point_before_trajectory_msg`, `sample` and
`interpolate_between_points`. Time is integer nanoseconds internally, as rclcpp::Time, so segment
boundaries compare exactly; the public message type takes float seconds.

Interpolation (interpolation_methods.hpp, VARIABLE_DEGREE_SPLINE, the default "splines"): per
segment, LINEAR if either end lacks velocities, CUBIC if both ends carry velocities but not both
accelerations, QUINTIC if both carry velocities and accelerations. A segment whose ends carry
accelerations but not velocities matches no branch and outputs zeros (sic, as the C++).
The segment before the first point starts at the "state before the trajectory" (the point
`set_point_before_trajectory_msg` records), zero-filling its velocities / accelerations when the
first point has them so that segment has the same degree as the rest. After the last point the
last point is returned (positions held, its velocities / accelerations, zero-filled if empty).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

NS = 1_000_000_000


def to_ns(seconds: float) -> int:
    """Float seconds -> integer nanoseconds (rclcpp::Duration::from_seconds rounds the same)."""
    return int(round(float(seconds) * NS))


@dataclass(frozen=True)
class JointTrajectoryPoint:
    """trajectory_msgs/JointTrajectoryPoint without ROS: empty sequences mean "not given"."""

    time_from_start: float
    positions: Sequence[float] = ()
    velocities: Sequence[float] = ()
    accelerations: Sequence[float] = ()
    effort: Sequence[float] = ()


@dataclass(frozen=True)
class JointTrajectory:
    """trajectory_msgs/JointTrajectory without ROS; `stamp` 0.0 (header.stamp) = "start now"."""

    joint_names: Sequence[str]
    points: Sequence[JointTrajectoryPoint]
    stamp: float = 0.0


@dataclass
class Point:
    """Mutable point as the controller handles it (lists may be empty), time in ns."""

    positions: list[float] = field(default_factory=list)
    velocities: list[float] = field(default_factory=list)
    accelerations: list[float] = field(default_factory=list)
    effort: list[float] = field(default_factory=list)
    tfs: int = 0

    def copy(self) -> Point:
        """Deep copy (a C++ value copy); the lists hold floats, so list copies suffice."""
        return Point(list(self.positions), list(self.velocities), list(self.accelerations),
                     list(self.effort), self.tfs)


@dataclass
class Msg:
    """Mutable JointTrajectory as the controller holds it (stamp and times in ns)."""

    joint_names: list[str]
    points: list[Point]
    stamp: int = 0

    @staticmethod
    def from_public(msg: JointTrajectory) -> Msg:
        """Deserialize: what the topic callback receives is a fresh copy of the message."""
        pts = [Point(list(map(float, p.positions)), list(map(float, p.velocities)),
                     list(map(float, p.accelerations)), list(map(float, p.effort)),
                     to_ns(p.time_from_start)) for p in msg.points]
        return Msg(list(msg.joint_names), pts, to_ns(msg.stamp))


def _coefficients(a: Point, b: Point, total: float, has_vel: bool, has_acc: bool
                  ) -> np.ndarray:
    """Polynomial coefficients c0..c5 (rows) of the segment a -> b, shape (6, dim)."""
    dim = len(a.positions)
    c = np.zeros((6, dim))
    p0, p1 = np.asarray(a.positions), np.asarray(b.positions)
    c[0] = p0
    if not has_vel and not has_acc:
        if total != 0.0:
            c[1] = (p1 - p0) / total
    elif has_vel and not has_acc:
        v0, v1 = np.asarray(a.velocities), np.asarray(b.velocities)
        c[1] = v0
        if total != 0.0:
            c[2] = (-3.0 * p0 + 3.0 * p1 - 2.0 * v0 * total - v1 * total) / total**2
            c[3] = (2.0 * p0 - 2.0 * p1 + v0 * total + v1 * total) / total**3
    elif has_vel and has_acc:
        v0, v1 = np.asarray(a.velocities), np.asarray(b.velocities)
        a0, a1 = np.asarray(a.accelerations), np.asarray(b.accelerations)
        c[1], c[2] = v0, 0.5 * a0
        if total != 0.0:
            T1, T2 = total, total**2
            c[3] = (-20.0 * p0 + 20.0 * p1 - 3.0 * a0 * T2 + a1 * T2 - 12.0 * v0 * T1
                    - 8.0 * v1 * T1) / (2.0 * total**3)
            c[4] = (30.0 * p0 - 30.0 * p1 + 3.0 * a0 * T2 - 2.0 * a1 * T2 + 16.0 * v0 * T1
                    + 14.0 * v1 * T1) / (2.0 * total**4)
            c[5] = (-12.0 * p0 + 12.0 * p1 - a0 * T2 + a1 * T2 - 6.0 * v0 * T1
                    - 6.0 * v1 * T1) / (2.0 * total**5)
    else:
        c[0] = 0.0  # accelerations without velocities: no branch matches, zeros (sic, C++)
    return c


_POW = np.array([[1, 1, 1, 1, 1, 1], [0, 1, 2, 3, 4, 5], [0, 0, 2, 6, 12, 20]], float)


def interpolate_between_points(time_a: int, a: Point, time_b: int, b: Point,
                               sample_time: int) -> Point:
    """Trajectory::interpolate_between_points (trajectory.cpp): linear / cubic / quintic.

    The segment's coefficients depend only on its two points and times, so they are cached on
    `b` (a controller samples one segment every cycle until it passes).
    """
    so_far = (sample_time - time_a) / NS
    total = (time_b - time_a) / NS
    dim = len(a.positions)
    has_vel = bool(a.velocities) and bool(b.velocities)
    has_acc = bool(a.accelerations) and bool(b.accelerations)
    if so_far < 0.0:
        so_far, has_vel, has_acc = 0.0, False, False
    if so_far > total:
        so_far, has_vel, has_acc = total, False, False
    t = so_far
    key = (id(a), time_a, time_b, has_vel, has_acc)
    cached = getattr(b, '_coef', None)
    if cached is None or cached[0] != key or cached[2] is not a:
        cached = (key, _coefficients(a, b, total, has_vel, has_acc), a)
        object.__setattr__(b, '_coef', cached)
    c = cached[1]
    powers = np.array([1.0, t, t * t, t**3, t**4, t**5])
    pos = powers @ c
    if not has_vel and not has_acc:
        vel, acc = c[1].copy(), np.zeros(dim)
    else:
        d1 = _POW[1, 1:] * powers[:5]
        d2 = _POW[2, 2:] * powers[:4]
        vel, acc = d1 @ c[1:], d2 @ c[2:]
    eff = np.zeros(dim)
    if a.effort and b.effort:
        e0, e1 = np.asarray(a.effort), np.asarray(b.effort)
        eff = e0 + (((e1 - e0) / total) if total != 0.0 else 0.0) * t
    return Point(pos.tolist(), vel.tolist(), acc.tolist(), eff.tolist())


class Trajectory:
    """joint_trajectory_controller::Trajectory: one message, its start time, the point before."""

    def __init__(self) -> None:
        self.msg: Msg | None = None
        self.start_time = 0          # trajectory_start_time_ [ns]
        self.time_before = 0         # time_before_traj_msg_ [ns]
        self.state_before = Point()
        self.sampled_already = False
        self.last_sample_idx = 0

    def update(self, msg: Msg) -> None:
        """Trajectory::update: take a new message; sampling restarts (start = its stamp)."""
        self.msg = msg
        self.start_time = msg.stamp
        self.sampled_already = False
        self.last_sample_idx = 0

    def has_nontrivial_msg(self) -> bool:
        """More than one point (trajectory.cpp has_nontrivial_msg): a hold is trivial."""
        return self.msg is not None and len(self.msg.points) > 1

    def set_point_before_trajectory_msg(self, time: int, point: Point) -> None:
        """Record the state the first segment starts from (no wrap-around joints on a Franka)."""
        assert self.msg is not None
        self.time_before = time
        self.state_before = point.copy()
        first = self.msg.points[0]
        if not point.velocities and first.velocities:
            self.state_before.velocities = [0.0] * len(first.velocities)
        if not point.accelerations and first.accelerations:
            self.state_before.accelerations = [0.0] * len(first.accelerations)

    def sample(self, t: int, spline: bool = True,
               monotonic: bool = True) -> tuple[Point | None, int]:
        """Trajectory::sample at `t` [ns]: (point or None when invalid, index of the end point).

        The end index is len(points) once the whole trajectory has played out (C++ `end()`).
        `spline=False` is interpolation_method "none".
        """
        msg = self.msg
        assert msg is not None
        if not msg.points:
            return None, 0
        if not self.sampled_already:
            if self.start_time == 0:
                self.start_time = t
            self.sampled_already = True
        if t < self.time_before:
            return None, 0
        first = msg.points[0]
        first_ts = self.start_time + first.tfs
        if t < first_ts:
            if not spline:
                return self.state_before.copy(), 0
            out = interpolate_between_points(self.time_before, self.state_before, first_ts,
                                             first, t)
            return out, 0
        last_idx = len(msg.points) - 1
        for i in range(self.last_sample_idx, last_idx):
            p, n = msg.points[i], msg.points[i + 1]
            t0, t1 = self.start_time + p.tfs, self.start_time + n.tfs
            if t0 <= t < t1:
                out = n.copy() if not spline else interpolate_between_points(t0, p, t1, n, t)
                out.tfs = n.tfs
                if monotonic:
                    self.last_sample_idx = i
                return out, i + 1
        if monotonic:
            self.last_sample_idx = last_idx
        out = msg.points[last_idx].copy()
        if not out.positions:
            return None, last_idx + 1
        dim = len(out.positions)
        out.velocities = out.velocities or [0.0] * dim
        out.accelerations = out.accelerations or [0.0] * dim
        out.effort = out.effort or [0.0] * dim
        return out, last_idx + 1


def starts_at(traj: Any, t: float, joints: tuple[str, ...], q: np.ndarray,
              tolerance: float) -> bool:
    """Whether trajectory `traj` (on the arm's grid) commands ~`q` at its arrival `t`.

    After an episode reset, a message planned before the server saw the new state does not:
    sim_robot and the gap replay drop those (a real robot would have rejected or reflexed).
    """
    if set(traj.joint_names) != set(joints) or not traj.points:
        return True  # malformed: deliver, the controller rejects it and counts that
    start = traj.stamp or t
    point = traj.points[-1]
    for p in traj.points:
        if start + p.time_from_start >= t - 5e-4:
            point = p
            break
    order = [list(traj.joint_names).index(n) for n in joints]
    pos = np.asarray(point.positions, np.float64)
    return pos.shape == (len(joints),) and float(np.max(np.abs(pos[order] - q))) <= tolerance
