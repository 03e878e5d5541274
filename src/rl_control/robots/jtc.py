"""joint_trajectory_controller (ros2_controllers HEAD) on a Franka position interface, in Python.

Port of ros2_controllers HEAD (94e74de35, package 6.9.0) joint_trajectory_controller.cpp for the
topic interface with command interface `position` and state interfaces `position, velocity` (what
franka_hardware exports; no acceleration state). Emulated, with the function each comes from:
- `topic_callback` -> `validate_trajectory_msg`, checks in its order and with its log texts:
  partial joints (unless allow_partial_joints_goal), empty joint names, empty points, unknown
  joint, nonzero last velocity (> float epsilon, unless allow_nonzero_velocity_at_trajectory_end),
  nonzero stamp ending before `now` (the arrival time), then per point: strictly increasing
  time_from_start, positions size (required), velocities / accelerations size (optional),
  effort present (rejected: no effort command interface). The newest accepted message wins; the
  controller installs it at its next `update` (the first 1 ms tick at or after arrival).
- `update`: a new message is blended (`blend_with_active_trajectory`, allow_trajectory_replacement
  default true at HEAD) when the active trajectory has more than one point and is not a hold;
  otherwise `fill_partial_goal` (omitted joints hold the position command) + sort. On the first
  sample of a trajectory the "point before" is (last_commanded_time_, last_commanded_state_) with
  interpolate_from_desired_state, else (now, measured positions + velocities, no accelerations).
  It samples the desired state at traj_time and WRITES the sample at traj_time + update_period
  (command_next_, #1306), then stores last_commanded_state_ = command_next_ with
  last_commanded_time_ = now (#780). Consequence at HEAD, visible in tests: a replacement that
  starts with the point before trajectory at velocity v places a value that belongs one period
  ahead one period early, so the first command after the switch moves 2 v dt instead of v dt (an
  acceleration spike of v / dt). A blended stamp-0 message whose first point is at
  time_from_start 0 does not use that segment and hands over without a jump.
  With interpolate_from_desired_state=False every message restarts from the measured state: the
  tracking error becomes a position step and the acceleration restarts from zero, so an
  overlapping stream injects a jump at every message unless the arm tracks perfectly.
- `on_activate`: a hold at the current state (the position command interface value instead when
  it is finite and set_last_command_interface_value_as_state_on_activation, the default).
Not emulated: action goals and tolerances (defaults are zero = unchecked), cmd_timeout (default 0
= off), speed scaling (1.0), positions_upsampling (default off), integration of velocity-only
goals (allow_integration_in_goal_trajectories default false), angle wrap-around (no continuous
joints on a Franka).
"""
from __future__ import annotations

from collections.abc import Sequence
import math

import numpy as np

from rl_control.robots.trajectory import NS, JointTrajectory, Msg, Point, Trajectory

FLOAT_EPS = float(np.finfo(np.float32).eps)   # std::numeric_limits<float>::epsilon()


class JointTrajectoryController:
    """The controller's state machine; one `update` per 1 ms controller-manager cycle."""

    def __init__(self, joints: Sequence[str], interpolate_from_desired_state: bool = False,
                 allow_nonzero_velocity_at_trajectory_end: bool = False,
                 allow_partial_joints_goal: bool = False,
                 allow_trajectory_replacement: bool = False,
                 interpolation_method: str = 'splines',
                 set_last_command_interface_value_as_state_on_activation: bool = True,
                 update_period: float = 1e-3) -> None:
        """Parameters as joint_trajectory_controller_parameters.yaml.

        Defaults: the controller as released up to Kilted (ros2_controllers 5.x, the version
        of the project's ROS 2 wheels): interpolation from the measured state, hard trajectory
        replacement. HEAD adds blending with the active trajectory
        (`allow_trajectory_replacement`, default true there, #2419): pass True to emulate it.
        """
        if interpolation_method not in ('splines', 'none'):
            raise ValueError(f"interpolation_method must be 'splines' or 'none', got "
                             f'{interpolation_method!r}')
        self.joints = list(joints)
        self.dof = len(self.joints)
        self.interpolate_from_desired_state = interpolate_from_desired_state
        self.allow_nonzero_velocity_at_trajectory_end = allow_nonzero_velocity_at_trajectory_end
        self.allow_partial_joints_goal = allow_partial_joints_goal
        self.allow_trajectory_replacement = allow_trajectory_replacement
        self.spline = interpolation_method == 'splines'
        self.set_last_command_as_state = set_last_command_interface_value_as_state_on_activation
        self.update_period = int(round(update_period * NS))
        self.rejected: list[tuple[float, str]] = []
        self.dropped: list[tuple[float, str]] = []  # dropped unvalidated: none here
        self.errors = 0  # update errors: none here (a rejected message is never installed)
        self.blends = 0           # introspection only: messages installed by blending
        self.activate(np.zeros(self.dof), np.zeros(self.dof))

    # -- lifecycle ---------------------------------------------------------------------------
    def activate(self, q: np.ndarray, qd: np.ndarray,
                 position_command: np.ndarray | None = None) -> None:
        """on_activate: forget trajectories, hold the current state.

        `position_command` is what the hardware's position command interface holds (None = NaN,
        as the parameter docs ask hardware to initialise it).
        """
        self.traj = Trajectory()
        self.buffer: Msg | None = None
        self.state_current = self._read_state(q, qd)
        self.last_commanded_state = self._read_state(q, qd)
        cmd = None if position_command is None else np.asarray(position_command, dtype=float)
        if self.set_last_command_as_state and cmd is not None and np.all(np.isfinite(cmd)):
            self.state_current.positions = cmd.tolist()
            self.last_commanded_state.positions = cmd.tolist()
        self.position_command = (np.asarray(q, dtype=float) if cmd is None else cmd).copy()
        self.last_commanded_time = 0
        self.traj_time = 0
        self.state_desired: Point | None = None
        self.command_next: Point | None = None
        self.buffer = self._hold_position()

    def _read_state(self, q: np.ndarray, qd: np.ndarray) -> Point:
        """read_state_from_state_interfaces: positions and velocities, accelerations cleared."""
        return Point(list(map(float, q)), list(map(float, qd)), [], [])

    def _hold_position(self) -> Msg:
        """set_hold_position: one point at the current positions, start now (a trivial msg)."""
        self.is_holding = True
        return Msg(list(self.joints), [Point(list(self.state_current.positions))], 0)

    # -- topic interface ---------------------------------------------------------------------
    def on_message(self, msg: JointTrajectory, now: float) -> str | None:
        """topic_callback at time `now` [s]: None if accepted, else the controller's log text."""
        m = Msg.from_public(msg)
        reason = self.validate(m, int(round(now * NS)))
        if reason is not None:
            self.rejected.append((now, reason))
            return reason
        self.buffer = m
        self.is_holding = False
        return None

    def validate(self, msg: Msg, now: int) -> str | None:
        """validate_trajectory_msg (HEAD), first failed check's RCLCPP_ERROR text."""
        if not self.allow_partial_joints_goal and len(msg.joint_names) != self.dof:
            return "Joints on incoming trajectory don't match the controller joints."
        if not msg.joint_names:
            return 'Empty joint names on incoming trajectory.'
        if not msg.points:
            return 'Empty trajectory received.'
        for name in msg.joint_names:
            if name not in self.joints:
                return f"Incoming joint {name} doesn't match the controller's joints."
        if not self.allow_nonzero_velocity_at_trajectory_end:
            for i, v in enumerate(msg.points[-1].velocities):
                if math.fabs(v) > FLOAT_EPS:
                    name = msg.joint_names[i] if i < len(msg.joint_names) else '?'
                    return (f'Velocity of last trajectory point of joint {name} is not zero: '
                            f'{v:.15f}')
        if msg.stamp != 0:
            end = msg.stamp + msg.points[-1].tfs
            if end < now:
                return (f'Received trajectory with non-zero start time ({msg.stamp / NS:f}) that '
                        f'ends in the past ({end / NS:f})')
        previous, n = 0, len(msg.joint_names)
        for i, p in enumerate(msg.points):
            if i > 0 and p.tfs <= previous:
                return (f'Time between points {i - 1} and {i} is not strictly increasing, it is '
                        f'{previous / NS:f} and {p.tfs / NS:f} respectively')
            previous = p.tfs
            for field, values, allow_empty in (('positions', p.positions, False),
                                               ('velocities', p.velocities, True),
                                               ('accelerations', p.accelerations, True)):
                if not (allow_empty and not values) and len(values) != n:
                    return (f'Mismatch between joint_names size ({n}) and {field} '
                            f'({len(values)}) at point #{i}.')
            if p.effort:
                return ("Trajectories with effort fields are only supported for controllers "
                        "using the 'effort' command interface.")
        return None

    # -- real-time loop ------------------------------------------------------------------------
    def update(self, time: int, period: int, q: np.ndarray, qd: np.ndarray) -> np.ndarray | None:
        """One update at `time` [ns]; the positions written, or None (command left as it was)."""
        buf = self.buffer
        if buf is not None and buf is not self.traj.msg:
            blended = False
            if (self.allow_trajectory_replacement and self.traj.msg is not None
                    and self.traj.has_nontrivial_msg() and not self.is_holding):
                blended = self._blend(buf, time)
                self.blends += int(blended)
            if not blended:
                self._fill_partial_goal(buf)
                self._sort_to_local_joint_order(buf)
            self.traj.update(buf)
        self.state_current = self._read_state(q, qd)
        if self.traj.msg is None:
            return None
        if not self.traj.sampled_already:
            if self.interpolate_from_desired_state:
                if abs(self.last_commanded_time / NS) < FLOAT_EPS:
                    self.last_commanded_time = time
                self.traj.set_point_before_trajectory_msg(self.last_commanded_time,
                                                          self.last_commanded_state)
            else:
                self.traj.set_point_before_trajectory_msg(time, self.state_current)
            self.traj_time = time
        else:
            self.traj_time += period
        desired, _ = self.traj.sample(self.traj_time, self.spline)
        if desired is not None:
            self.state_desired = desired
        nxt, _ = self.traj.sample(self.traj_time + self.update_period, self.spline,
                                  monotonic=False)
        if nxt is None:
            return None
        self.command_next = nxt
        self.position_command = np.array(nxt.positions, dtype=float)
        self.last_commanded_state = nxt.copy()
        self.last_commanded_time = time
        return self.position_command.copy()

    # -- message surgery -----------------------------------------------------------------------
    def _sort_to_local_joint_order(self, msg: Msg) -> None:
        """sort_to_local_joint_order: reorder every field to the controller's joint order."""
        mapping = [self.joints.index(n) for n in msg.joint_names]

        def remap(values: list[float]) -> list[float]:
            if not values or len(values) != len(mapping):
                return values        # C++ warns "Invalid input size" and leaves it unchanged
            out = [0.0] * len(mapping)
            for i, m in enumerate(mapping):
                out[m] = values[i]
            return out
        for p in msg.points:
            p.positions, p.velocities = remap(p.positions), remap(p.velocities)
            p.accelerations, p.effort = remap(p.accelerations), remap(p.effort)

    def _fill_partial_goal(self, msg: Msg) -> None:
        """fill_partial_goal: omitted joints hold the position command, zero vel / acc."""
        if len(msg.joint_names) == self.dof:
            return
        for index, name in enumerate(self.joints):
            if name in msg.joint_names:
                continue
            msg.joint_names.append(name)
            for p in msg.points:
                if p.positions and not math.isnan(self.position_command[index]):
                    p.positions.append(float(self.position_command[index]))
                for values in (p.velocities, p.accelerations, p.effort):
                    if values:
                        values.append(0.0)

    def _blend(self, msg: Msg, time: int) -> bool:
        """blend_with_active_trajectory (HEAD #2419): splice the new message into the old one."""
        old, old_start, cursor = self.traj.msg, self.traj.start_time, self.traj_time
        assert old is not None
        commanded = [name in msg.joint_names for name in self.joints]
        has_omitted = not all(commanded)
        if has_omitted and not msg.points[-1].positions:
            return False
        new_start = cursor + (msg.stamp - time) if msg.stamp > time else cursor
        bridge, _ = self.traj.sample(new_start, self.spline, monotonic=False)
        if has_omitted:
            self._fill_omitted_joints_from_old(msg, new_start, commanded)
        self._sort_to_local_joint_order(msg)
        new_last = msg.points[-1].copy()
        new_end = new_start + msg.points[-1].tfs
        for p in msg.points:
            p.tfs = new_start + p.tfs - old_start
        prefix = [op.copy() for op in old.points if cursor < old_start + op.tfs < new_start]
        if bridge is not None:
            bridge.tfs = new_start - old_start
            if not msg.points or bridge.tfs < msg.points[0].tfs:
                prefix.append(bridge)
        suffix: list[Point] = []
        if has_omitted:
            for op in old.points:
                if old_start + op.tfs > new_end:
                    p = op.copy()
                    for j in (j for j in range(self.dof) if commanded[j]):
                        if p.positions:
                            p.positions[j] = new_last.positions[j]
                        if p.velocities:
                            p.velocities[j] = 0.0
                        if p.accelerations:
                            p.accelerations[j] = 0.0
                    suffix.append(p)
        msg.points = prefix + msg.points + suffix
        msg.joint_names = list(self.joints)
        for p in msg.points:
            p.tfs -= cursor - old_start
        msg.stamp = 0
        return True

    def _fill_omitted_joints_from_old(self, msg: Msg, new_start: int,
                                      commanded: list[bool]) -> None:
        """fill_omitted_joints_from_old: omitted joints keep following the old trajectory."""
        msg.joint_names += [n for n, c in zip(self.joints, commanded, strict=True) if not c]
        for p in msg.points:
            s, _ = self.traj.sample(new_start + p.tfs, self.spline, monotonic=True)
            for j in (j for j in range(self.dof) if not commanded[j]):
                if p.positions:
                    pos = self.state_current.positions[j]
                    if s is not None and j < len(s.positions):
                        pos = s.positions[j]
                    elif not math.isnan(self.position_command[j]):
                        pos = float(self.position_command[j])
                    p.positions.append(pos)
                if p.velocities:
                    p.velocities.append(s.velocities[j] if s is not None else 0.0)
                if p.accelerations:
                    p.accelerations.append(s.accelerations[j] if s is not None else 0.0)
                if p.effort:
                    p.effort.append(0.0)
