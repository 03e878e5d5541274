"""The serving loop's command outputs: the serve part of each command interface.

A command interface (robots/command_interfaces.py) names its output here (`OUTPUTS`); the loop
hands every policy tick's gated target (or the reason to stop) to it and asks it for the
stream and whether a stop has come to rest:
- `trajectory`: the shaper plans from its previous plan (or brakes), and each tick's plan
  becomes one JointTrajectory that ends at rest (serve/commands.py), checked against the limits
  before it leaves; the controller holds its last point, so a stop is done once sent;
- `motion_stream`: the same plans, streamed as the reference's velocity (a forward velocity
  controller) or position (a forward position controller), by the hardware interface it
  writes; a stop is done once the plan is at rest;
- `torque_stream`: the target torque through the torque shaper (rate limits, position and
  speed guards) every stream period; a stop is a ramped damping torque, done when the measured
  arm is at rest.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rl_control.contract.shaper import Plan
from rl_control.contract.torque import TorqueConfig, TorqueShaper
from rl_control.robots.franka_hand import GripperCommand
from rl_control.robots.trajectory import JointTrajectory
from rl_control.serve import guards
from rl_control.serve.commands import trajectory_message
from rl_control.serve.safety import FilterResult


@dataclass
class TickOutput:
    """What one policy tick decided: a trajectory to publish (or None) and why it moves or not.

    `gripper`: a hand command to send (serve/hand.py), only on a tick that served the policy
    (reason ok) and changed the hand's switch; the host sends it even when it withholds the
    trajectory as late (the arm then runs on the previous message, which ends at rest).
    """

    trajectory: JointTrajectory | None
    reason: str
    plan: Plan | None = None
    gripper: GripperCommand | None = None


class Output:
    """What every output offers the loop and its host (the defaults: nothing to do)."""

    streams = False
    """The host runs a stream timer (`stream` at up to 1 kHz)."""
    starts_moves = False
    """It can run the ~/move_to_start motion (one message that ends at rest)."""

    def __init__(self, loop: Any) -> None:
        self.loop = loop

    def activate(self) -> None:
        """Serving starts (or restarts after an e-stop or a lifecycle transition)."""

    def apply(self, now: float, result: FilterResult) -> TickOutput:
        """What a policy tick does with the gated target (None: a reason to stop)."""
        raise NotImplementedError

    def message(self, plan: Plan, previous: Plan | None, now: float) -> JointTrajectory | None:
        """The message a tick sends for `plan` (None: nothing per tick)."""
        return None

    def fault(self) -> None:
        """An internal error: forget any target (the loop brakes)."""

    def stream(self, now: float) -> np.ndarray | None:
        """The value to send at `now`, in command order (None: nothing)."""
        return None

    def stopped(self, now: float) -> bool:
        """Whether a stop has brought the arm to rest (the host can stop streaming)."""
        raise NotImplementedError


class MotionOutput(Output):
    """Plans from the shaper; subclasses say what leaves (a message, or a stream sample)."""

    def apply(self, now: float, result: FilterResult) -> TickOutput:
        """Plan toward the gated target, or brake when there is none."""
        loop = self.loop
        if result.command is None:
            return loop.brake(now, result.reason)
        previous = loop.shaper.plan
        plan = loop.shaper.step(now, result.command)
        loop.brake_started = None
        return TickOutput(self.message(plan, previous, now), result.reason, plan)

    def stopped(self, now: float) -> bool:
        """Whether a stop has brought the arm to rest (the host can stop streaming)."""
        return self.loop.shaper.at_rest(now)


class TrajectoryOutput(MotionOutput):
    """One JointTrajectory per tick for a joint_trajectory_controller (module docstring)."""

    starts_moves = True

    def message(self, plan: Plan, previous: Plan | None, now: float) -> JointTrajectory:
        """The controller's message for `plan`, checked against the limits."""
        loop = self.loop
        msg = trajectory_message(plan, previous, now, loop.shaper_cfg.sample_s, loop.cmd_joints,
                                 loop.perm, loop._sent)
        guards.check_trajectory(msg, loop.cmd_joints, *loop.cmd_limits)
        loop._sent = msg
        return msg

    def stopped(self, now: float) -> bool:
        """The last message ends at rest: the controller brakes by itself."""
        return True


class MotionStream(MotionOutput):
    """The plan's reference streamed to a forward controller: its velocity, or its position."""

    streams = True

    def __init__(self, loop: Any) -> None:
        super().__init__(loop)
        self.position = loop.interface.hardware_interface.sets_position

    def stream(self, now: float) -> np.ndarray | None:
        """The reference at `now` (velocity or position), inside the limits."""
        loop = self.loop
        if not loop.shaper.anchored:
            return None
        ref = loop.shaper.reference(now)
        q_min, q_max, qd_max = loop.cmd_limits
        if self.position:
            return guards.clip_position(ref.q[loop.perm], q_min, q_max)
        return guards.clip_velocity(ref.qd[loop.perm], qd_max)


class TorqueStream(Output):
    """Torques streamed to a forward effort controller (module docstring)."""

    streams = True

    def __init__(self, loop: Any) -> None:
        super().__init__(loop)
        prof, idx, s = loop.profile, loop.profile_idx, loop.settings
        self.torque = TorqueShaper(prof.tau_max[idx], prof.dtau_max[idx],
                                   TorqueConfig(damping=s.effort_damping,
                                                hold_damping=loop.hold_damping),
                                   qd_max=prof.qd_max[idx],
                                   q_range=(prof.q_min[idx], prof.q_max[idx]))
        self.target: np.ndarray | None = None
        self._t: float | None = None

    def activate(self) -> None:
        """Torques restart from zero."""
        self.torque.reset()

    def apply(self, now: float, result: FilterResult) -> TickOutput:
        """The gated torque becomes the stream's target (None: the stream stops)."""
        self.target = result.command
        return TickOutput(None, result.reason)

    def fault(self) -> None:
        """An internal error: no target, the stream stops."""
        self.target = None

    def stream(self, now: float) -> np.ndarray | None:
        """The torque to send at `now`, in command order (None: nothing yet)."""
        cache = self.loop.cache
        dt = 0.0 if self._t is None else now - self._t
        self._t = now
        if self.target is not None:
            tau = self.torque.step(dt, self.target, cache.qd, cache.q)
        elif not cache.received:
            return None
        elif now - float(cache.arrival.min()) > cache.limits.stale_s or cache.bad.any():
            # no measured velocity to damp: damping the last one would push on forever
            # (the arm decelerates, then accelerates back); ramp to zero torque and float
            tau = self.torque.step(dt, np.zeros_like(self.torque.tau))
        else:
            tau = self.torque.brake(dt, cache.qd, cache.q)
        return tau[self.loop.perm]

    def stopped(self, now: float) -> bool:
        """The measured arm is at rest."""
        return bool(np.abs(self.loop.cache.qd).max() < 1e-3)


OUTPUTS: dict[str, Any] = {'trajectory': TrajectoryOutput, 'motion_stream': MotionStream,
                           'torque_stream': TorqueStream}
"""Output kind (`CommandInterface.output`) -> its class, built with the serving loop."""
