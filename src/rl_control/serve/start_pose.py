"""Move to start: one slow jerk-limited motion from the measured state to the policy's start pose.

A policy is trained from its start pose (policy.yaml `start_pose`, in the bundle's joint order;
bundles without it: the robot profile's home, which is where the reach tasks start). A real arm
is wherever the last user left it, so the bring-up moves it there first (docs/real_robot.md):
franka_ros2 ships `move_to_start_example_controller` for the same purpose
(franka_example_controllers, v2.5.0), which a served policy cannot use without a controller
switch. This plans the same kind of motion for the trajectory controller the server already
drives: Ruckig (position interface, time-synchronized, rest to rest) inside the profile's
velocity / acceleration / jerk limits times the shaper's tracking fractions times `speed`
(a fraction), checked against the FR3's position-dependent velocity band on the waypoint grid
(halving `speed` until it passes). It is sent as ONE JointTrajectory that ends at rest at the
start pose, so a controller that receives nothing more stops there by itself.
"""
from __future__ import annotations

from collections.abc import Callable
import time
from typing import Any

import numpy as np
from ruckig import ControlInterface, InputParameter, Result, Ruckig, Synchronization, Trajectory

from rl_control.contract.shaper import GRID_S, Limits, MotionState, Plan, Shaper, ShaperConfig
from rl_control.robots.trajectory import JointTrajectory
from rl_control.serve.commands import trajectory_message

ARRIVED_RAD = 1e-3
"""The arm is at the start pose when every joint is within this of it [rad] and at rest."""
REST_RAD_S = 1e-3
"""|qd| below which a joint counts as at rest [rad/s] (robots/franka.py REST_VELOCITY)."""
SETTLE_S = 1.0
"""How long after the plan's end the measured arm may take to arrive before the move fails."""
START_LEAD_S = 0.1
"""The move starts this long after the request, beyond the shaper's lead: its one message carries
hundreds of waypoints, built and serialized in Python (where a garbage collection can pause a
thread for tens of milliseconds), and must reach the controller before it starts, or the
controller steps into it (a reflex on a Franka). The arm is at rest and holds meanwhile."""


class StartMoveError(ValueError):
    """A start pose the arm cannot be moved to; the message says why."""


def plan_to_start(limits: Limits, cfg: ShaperConfig, band: object, start: MotionState,
                  target: np.ndarray, t0: float, speed: float) -> Plan:
    """A rest-to-rest Plan from `start` (at rest) to `target`, starting at `t0` (see module).

    `band(q) -> (lower, upper)` is the position-dependent velocity bound (None: qd_max).
    """
    target = np.asarray(target, np.float64)
    n = len(target)
    soft_lo, soft_hi = limits.q_min + cfg.position_margin, limits.q_max - cfg.position_margin
    outside = np.flatnonzero((target < soft_lo) | (target > soft_hi))
    if outside.size:
        raise StartMoveError(f'start pose joints {outside.tolist()} lie outside the position '
                             f'limits less the {cfg.position_margin} rad margin')
    if not 0.0 < speed <= 1.0:
        raise StartMoveError(f'speed must be in (0, 1], got {speed}')
    for _ in range(8):
        traj = _ruckig(limits, cfg, start, target, speed)
        if _inside_band(traj, band, cfg.sample_s):
            plan = Plan(round(t0 / GRID_S) * GRID_S, traj.duration, traj, None, target.copy(),
                        np.zeros(n), limited=np.zeros(n, bool))
            return plan
        speed *= 0.5
    raise StartMoveError('no motion to the start pose stays inside the velocity band')


def _ruckig(limits: Limits, cfg: ShaperConfig, start: MotionState, target: np.ndarray,
            speed: float) -> Trajectory:
    n = len(target)
    inp = InputParameter(n)
    inp.control_interface = ControlInterface.Position
    inp.synchronization = Synchronization.Time
    inp.current_position, inp.current_velocity = start.q.tolist(), [0.0] * n
    inp.current_acceleration = [0.0] * n
    inp.target_position, inp.target_velocity = target.tolist(), [0.0] * n
    inp.target_acceleration = [0.0] * n
    inp.max_velocity = (limits.qd_max * cfg.velocity_fraction * speed).tolist()
    inp.max_acceleration = (limits.qdd_max * cfg.acceleration_fraction * speed).tolist()
    inp.max_jerk = (limits.qddd_max * cfg.jerk_fraction * speed).tolist()
    traj = Trajectory(n)
    result = Ruckig(n).calculate(inp, traj)
    if result not in (Result.Working, Result.Finished):
        raise StartMoveError(f'Ruckig could not plan to the start pose: {result}')
    return traj


def _inside_band(traj: Trajectory, band: object, step: float) -> bool:
    if band is None:
        return True
    times = np.append(np.arange(0.0, traj.duration, step), traj.duration)
    states = [traj.at_time(float(t)) for t in times]
    q = np.array([s[0] for s in states])
    qd = np.array([s[1] for s in states])
    lo, hi = band(q + qd * step)  # the band at the position reached by the next sample
    return bool(np.all((qd >= lo) & (qd <= hi)))


def adopt(shaper: Shaper, plan: Plan) -> None:
    """Make `plan` the shaper's current plan, as its own planning would (history, previous)."""
    shaper.previous, shaper.plan = shaper.plan, plan
    shaper.history.append(plan)


class StartMove:
    """One move to start in progress: its plan, and how it ended (`result`, None: running)."""

    def __init__(self, plan: Plan, shadow: bool) -> None:
        self.plan, self.shadow = plan, shadow
        self.result: tuple[bool, str] | None = None

    def abort(self, why: str) -> None:
        """The move stopped before the start pose (the loop brakes it)."""
        if self.result is None:
            self.result = (False, f'move to start interrupted: {why}')

    def check(self, now: float, q: np.ndarray, qd: np.ndarray) -> tuple[bool, str] | None:
        """The answer once the arm is there (or why not); None while it is on its way."""
        if self.result is not None or now < self.plan.end:
            return self.result
        err = float(np.max(np.abs(q - self.plan.rest_q)))
        if self.shadow:
            self.result = (False, f'shadow mode: the {self.plan.hold_s:.2f} s move went to '
                                  f'~/shadow_command only; the arm is {err * 1e3:.1f} mrad '
                                  'from the start pose')
        elif err <= ARRIVED_RAD and float(np.max(np.abs(qd))) < REST_RAD_S:
            self.result = (True, f'at the start pose ({err * 1e3:.2f} mrad) after '
                                 f'{self.plan.hold_s:.2f} s')
        elif now > self.plan.end + SETTLE_S:
            self.result = (False, f'not at the start pose {SETTLE_S} s after the motion ended: '
                                  f'{err * 1e3:.1f} mrad away')
        return self.result


def begin_move(loop: Any, now: float, wall: float, speed: float, shadow: bool
               ) -> JointTrajectory | str:
    """Start a move to `loop.start_q` (a ServingLoop): the message to send, or why not.

    Only while the loop is active, not e-stopped, with no goal and nothing else wrong
    (`input_problem` is the missing goal), and the reference at rest.
    """
    problem = loop.input_problem(now, wall)
    shaper = loop.shaper
    why = (f'command_type {loop.settings.command_type} cannot run it (trajectory can)'
           if not loop.output.starts_moves
           else 'the server is not active' if not loop.safety.active
           else 'e-stopped (~/reset first)' if loop.safety.estopped
           else 'a goal is being served' if loop.goals.goal is not None
           else problem if problem != loop.goals.reason
           else 'the arm is still moving' if shaper.anchored and not shaper.at_rest(now)
           else None)
    if why is not None:
        return f'move to start refused: {why}'
    if not shaper.anchored:
        shaper.anchor(now, loop.cache.q)
        loop._sent = None
    else:
        loop._reanchor_if_elsewhere(now)
    t0 = shaper.next_start(now + START_LEAD_S)
    try:
        plan = plan_to_start(shaper.limits, loop.shaper_cfg, shaper.velocity_limits,
                             shaper.plan.at(t0), loop.start_q, t0, speed)
    except StartMoveError as exc:
        return f'move to start refused: {exc}'
    previous = shaper.plan
    adopt(shaper, plan)
    loop.start_move = StartMove(plan, shadow)
    loop._sent = trajectory_message(plan, previous, now, loop.shaper_cfg.sample_s,
                                    loop.cmd_joints, loop.perm, loop._sent)
    return loop._sent


def move_runs(loop: Any, now: float, problem: str | None) -> bool:
    """Whether the loop's move to start goes on (the tick sends nothing); else it is aborted."""
    move = loop.start_move
    if move.result is not None:
        return False
    why = ('e-stop' if loop.safety.estopped else 'deactivated' if not loop.safety.active
           else 're-anchored (the arm is not following)' if loop.shaper.plan is not move.plan
           else 'a goal arrived' if problem is None
           else problem if problem != loop.goals.reason else None)
    if why is None:
        return True
    move.abort(why)
    return False


def await_arrival(loop: Any, now: Callable[[], float], lock: Any, pause_s: float = 0.02
                  ) -> tuple[bool, str]:
    """Block until the loop's move to start has an answer (the arm is there, or why not).

    For a host's service thread: the loop is read under `lock` (the control path's) every
    `pause_s`, while states keep arriving.
    """
    while True:
        time.sleep(pause_s)
        with lock:
            answer = loop.start_move.check(now(), loop.cache.q, loop.cache.qd)
        if answer is not None:
            return answer
