"""What an episode reset of the simulated arm must not let through, and when commands arrive.

A reset moves the arm to its new start pose at once, which no real arm does, so commands still
in flight for the previous episode would jump it. Until the first command that starts at the
new pose (within `tolerance`: a trajectory whose reference at arrival is there, a velocity of
~0, a position there: `CommandInterface.fresh_after_reset`) commands are not delivered, as an
evaluation harness that deactivates the server across the reset would (counted as `ignored`;
after `guard_s` everything is delivered again).
Trajectories carry their plan time (one stamped before the reset was planned for the previous
episode); effort commands carry no state to tell the episodes apart, so in real time those
arriving within `grace_s` of the reset are dropped.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rl_control.robots.command_interfaces import command_interface
from rl_control.robots.trajectory import JointTrajectory

RESET_GRACE_S = 0.02
MAX_TRANSPORT_S = 0.002
"""Real time: a command arrives at most this long after it was sent (see `arrival`)."""


class ResetGuard:
    """See the module docstring: `reset(t, q)` at an episode start, `drop(t, cmd)` per command."""

    def __init__(self, joint_names: Sequence[str], command_type: str, tolerance: float,
                 guard_s: float, grace_s: float = RESET_GRACE_S) -> None:
        self.joint_names = tuple(joint_names)
        self.interface = command_interface(command_type)
        self.tolerance, self.guard_s, self.grace_s = tolerance, guard_s, grace_s
        self.time, self.q, self.q_start = 0.0, None, None
        self.ignored = 0

    def reset(self, t: float, q: np.ndarray) -> None:
        """An episode starts at grid time `t` with the arm at rest at `q`."""
        self.time, self.q, self.q_start = t, np.array(q), np.array(q)

    def drop(self, t: float, cmd: Any, lockstep: bool) -> bool:
        """Whether `cmd` (a JointTrajectory on the grid, or an array) arriving at `t` is old."""
        if isinstance(cmd, JointTrajectory) and cmd.stamp and cmd.stamp < self.time - 1e-9:
            return True  # planned for the previous episode
        if not self.interface.tells_fresh:  # no state to tell them apart: a grace period
            self.q = None
            return not lockstep and t < self.time + self.grace_s
        if self.q is None:
            return False
        if t - self.time > self.guard_s:
            self.q = None
            return False
        fresh = self.interface.fresh_after_reset(cmd, t, self.joint_names, self.q,
                                                 self.tolerance)
        if fresh:
            self.q = None
        else:
            self.ignored += 1
        return not fresh


def arrival(arm_time: float, now: float, epoch: float, received_ns: int = 0,
            sent_ns: int = 0) -> float:
    """A command's arrival on the arm's grid (real time): when DDS received it, else `now`.

    The middleware's receive time, not the callback's: a command must not count as late
    because the simulator was busy stepping (a real controller's subscription thread takes
    messages while its 1 kHz loop runs). And no later than `MAX_TRANSPORT_S` after it was
    sent: a later receive on one host is the simulator starved (its receive thread did not
    run), which a robot's real-time receive is not; the sender's own lateness is kept.
    `now` is grid time; `epoch` the ROS time of grid time 0.
    """
    if received_ns > 0:
        now = min(now, received_ns * 1e-9 - epoch)
    if sent_ns > 0:
        now = min(now, sent_ns * 1e-9 + MAX_TRANSPORT_S - epoch)
    return max(arm_time, now)
