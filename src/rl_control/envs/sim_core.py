"""The simulated robot without ROS: its arm, clock, task episodes and faults (sim_robot's core).

ros/sim_robot.py hosts one `SimCore`: a message comes in (`command`), the core decides, and
what goes out it hands to the host's `SimOutputs` (states, the goal, episode results, the
robot's own state). Everything here is a function of its inputs and the clock values it is
given, so it runs the same in real time and in lockstep and is tested without ROS.

Clock. The arm's 1 ms grid is tied to ROS time once: grid time t is ROS time `epoch + t`
(lockstep: epoch 0, the node publishes the grid as /clock). In real time the host steps the
grid up to its steady clock in batches (`realtime_step`), taking the commands that arrived
meanwhile before stepping past their arrival (each keeps its receive time); trajectory stamps
are mapped through the same epoch, so neither a late Python loop nor a slow batch changes what
is checked. In lockstep the grid advances one control period per command answering a state, or
after a wall-clock wait without one (`republish`: a server at rest sends nothing).

Episodes are the task's (envs/tasks.py): each starts at rest (the task's start pose, or the
profile's home with a goals file) with a goal (the goals file in order, or the task's sampling);
after `episode_s` the task's measures become a result (with `warmup_s`, only from that long
after the first command: the episodes before it restart without one). A reset moves the arm at
once, so commands still in flight for the previous episode are not delivered
(robots/episode_guard.py). Faults: muted joint states (a dead driver or network), a reflex now
(as on a collision), and franka_ros2's error recovery.

A task with an object (`object_message`: pick and place) runs on the pick-and-place cell
(envs/sim_cell.py): the same arm and checks on the cell's physics, plus the Franka Hand taking
the server's JSON hand commands, its finger joints, the cube's pose from a tracker, contact
reflexes (the arm stops as on any reflex) and the task's measures (held, dropped, ...). Each
episode also places the cube (the task's `sample_object`) and opens the hand. Fault injection
adds a muted tracker.
"""
from __future__ import annotations

from collections.abc import Callable
import time
from typing import Any, Protocol

import numpy as np

from rl_control.envs.reach_metrics import load_goals
from rl_control.envs.sim_cell import SimCell
from rl_control.envs.tasks import task_class
from rl_control.robots import robot_state
from rl_control.robots.command_interfaces import CONTROLLERS, command_interface
from rl_control.robots.episode_guard import ResetGuard, arrival
from rl_control.robots.franka import FrankaArm
from rl_control.robots.physics import mujoco_physics
from rl_control.robots.profiles import get_profile
from rl_control.robots.trajectory import JointTrajectory

INIT_NOISE = 0.1  # the start noise around home without a goals file (the reach envs' default)
CATCH_UP_CHUNK = 4  # real time: ms stepped between takes of pending commands
MAX_CATCH_UP = 100  # real time: ms stepped per call at most (services keep running)


class SimOutputs(Protocol):
    """What the host publishes when the core says so."""

    def state(self, gripper: bool) -> None:
        """The arm's joint state now (and the gripper's); lockstep: /clock first."""

    def robot_mode(self) -> None:
        """The robot's mode and errors (franka_robot_state_broadcaster), at once on a change."""

    def goal(self) -> None:
        """The episode's goal on the goal topic."""

    def result(self, result: dict[str, Any]) -> None:
        """One finished episode."""

    def object_pose(self, stamp: float, pose: np.ndarray) -> None:
        """A tracker frame: the object's pose captured at ROS time `stamp` (an object's task).

        `pose`: x, y, z, qx, qy, qz, qw in the base frame.
        """


class SimCore:
    """One simulated robot and its episodes (module docstring); `p` is a `ros.params.SimParams`."""

    def __init__(self, p: Any, out: SimOutputs,
                 wall_clock: Callable[[], float] = time.time) -> None:
        """The robot of `p`, settled at rest; its clock and first episode start with `start`.

        `wall_clock`: the time episode results are stamped with.
        """
        self.p, self.out, self.wall_clock = p, out, wall_clock
        self.profile = get_profile(p.robot)
        kind = CONTROLLERS[command_interface(p.command_type).controller]
        options = {k: getattr(p, f'jtc_{k}') for k in kind.options}  # the controller's params
        cls = task_class(p.task)
        self.task = cls(distance_threshold=p.success_threshold or cls.sim_success)
        self.rng = np.random.default_rng(None if p.seed < 0 else p.seed)
        self.cell: SimCell | None = None  # a task with an object: the pick-and-place cell
        if getattr(self.task, 'object_message', None):  # its own stream: goals stay the same
            self.cell = SimCell(self.profile, p, np.random.default_rng(
                None if p.seed < 0 else [p.seed, 1]))
        physics = self.cell.physics if self.cell else mujoco_physics(self.profile)
        self.arm = FrankaArm(self.profile, p.command_type, physics=physics,
                             torque_rate_limiter=p.torque_rate_limiter,
                             check_limits=p.fidelity == 'franka', **options)
        self.arm.settle()  # before anyone sees it (FrankaArm.settle says why)
        self.goals, self.cubes = episode_file(p.goals_file) if p.goals_file else (None, None)
        self.episode, self.done = 0, False
        self.last_command_wall = -1e9
        self.awaiting = False  # lockstep: a state went out, its command not yet in
        self.answering = False  # lockstep: the server answered the last state
        self.silent_steps = 0  # lockstep: periods advanced without a command
        self.publish_every = max(1, round(1.0 / (p.publish_rate_hz * self.arm.dt)))
        self.gripper_every = max(1, round(1.0 / (p.gripper_rate_hz * self.arm.dt)))
        self.max_lag_s = 0.0
        self.guard = ResetGuard(self.profile.joint_names, p.command_type, p.reset_tolerance,
                                p.reset_guard_s)
        self.muted_at: float | None = None  # fault injection: joint states stopped (grid time)
        self.mode_published = ''
        self.epoch, self.mono0 = 0.0, 0.0
        self.goal = np.zeros(3)
        self.first_command: float | None = None  # grid time of the first command
        self.counting = p.warmup_s <= 0.0  # episodes give results (`warmup_s` is over)

    def start(self, epoch: float, mono0: float) -> None:
        """Start the clock and the first episode (the host calls this last, once it publishes).

        Grid time 0 is ROS time `epoch` and the steady clock's `mono0` [s].
        """
        self.epoch, self.mono0 = epoch, mono0
        self.start_episode()

    # -- time -------------------------------------------------------------------------------
    def ros_time(self, t_arm: float) -> float:
        """The ROS time of grid time `t_arm`."""
        return self.epoch + t_arm

    def arrival(self, wall: float, received_ns: int = 0, sent_ns: int = 0) -> float:
        """A command's arrival on the grid (robots/episode_guard.py `arrival`)."""
        if self.p.publish_clock:
            return self.arm.time
        return arrival(self.arm.time, wall - self.mono0, self.epoch, received_ns, sent_ns)

    # -- episodes ---------------------------------------------------------------------------
    def start_episode(self) -> None:
        """A new episode now: the arm at rest at its start, a goal, the measures restart."""
        prof = self.profile
        q = self.task.start_pose(prof, self.rng, INIT_NOISE)
        if self.goals is not None:
            q = prof.home.copy()
            self.goal = self.goals[self.episode % len(self.goals)]
        else:
            self.goal = self.task.sample_goal(self.rng)
        self.arm.reset(np.clip(q, prof.q_min, prof.q_max))
        q0 = self.arm.state()['q']
        if self.cell is not None:  # the hand open, the cube on the table
            cube = (self.cubes[self.episode % len(self.cubes)] if self.cubes is not None
                    else self.task.sample_object(self.rng))
            self.cell.reset(self.arm.time, q0, cube)
        self.guard.reset(self.arm.time, q0)  # commands still in flight
        self.trace = self.task.trace(self.goal, q0, prof)
        self._start = (self.arm.time, self.arm.reflex_count, self.arm.state()['rejected'],
                       self.guard.ignored, self.silent_steps)
        self.next_sample = self.arm.time
        self.out.goal()
        self.publish_state()

    def finish_episode(self) -> dict[str, Any]:
        """The episode's result (published), then the next episode."""
        st = self.arm.state()
        t0, reflexes, rejected, ignored, silent = self._start
        result = {'episode': self.episode, **self.trace.result(), 'robot': self.profile.name,
                  **robot_state.episode_reflex(st, reflexes, t0, self.arm.reflex_log),
                  'rejected': st['rejected'] - rejected,
                  'reset_ignored': self.guard.ignored - ignored,
                  'silent_steps': self.silent_steps - silent,
                  **(self.cell.result() if self.cell else {}),
                  'start_q': [float(v) for v in self.guard.q_start],
                  'final_q': [float(v) for v in st['q']],
                  'sim_time': self.arm.time, 'wall_time': self.wall_clock()}
        self.out.result(result)
        self.episode += 1
        self.done = bool(self.p.episodes and self.episode >= self.p.episodes)
        self.start_episode()
        return result

    def warmup_over(self) -> bool:
        """True once, `warmup_s` after the first command: the episode it overlapped restarts.

        A server ramps its targets in after activation (serve/safety.py); an episode that
        overlaps the ramp-in measures the ramp, not the policy. `rl-control demo` restarts that
        episode itself (ros/demo.py); this is the same for a launched sim_robot.
        """
        if self.counting or self.first_command is None:
            return False
        self.counting = self.arm.time - self.first_command >= self.p.warmup_s - 1e-9
        return self.counting

    def reset_episode(self) -> int:
        """~/reset_episode: the interrupted episode gets no result; the new one's number."""
        self.episode += 1
        self.start_episode()
        return self.episode

    # -- faults -----------------------------------------------------------------------------
    def recover(self) -> tuple[str | None, bool]:
        """~/recover (franka_ros2's error recovery): (reflex recovered from or None, done now).

        Not done now while the arm still stops from its reflex: it completes at rest (FrankaArm).
        """
        was = self.arm.state()['reflex']
        return was, self.arm.recover()

    def inject_reflex(self) -> None:
        """~/inject_reflex: a reflex now, as on a collision."""
        self.arm.inject_reflex()

    def mute(self, on: bool) -> None:
        """~/mute_joint_states: stop (True) or resume publishing joint states."""
        self.muted_at = self.arm.time if on else None

    def mute_object(self, on: bool) -> None:
        """~/mute_object_pose: the tracker stops (True) or resumes publishing (a cell only)."""
        if self.cell is None:
            raise ValueError(f'the {self.task.name} task has no object')
        self.cell.muted = bool(on)

    def hand_command(self, text: str, t: float) -> str | None:
        """A hand command (JSON, docs/pick_place.md) that arrived at grid time `t`.

        Returns why it was refused (None: queued on the hand, robots/franka_hand.py).
        """
        if self.cell is None:
            return f'the {self.task.name} task has no hand'
        return self.cell.hand_command(t, text)

    def gripper_state(self) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray]:
        """The finger joints as published: the cell's hand, or the arm's fixed open one."""
        return self.cell.gripper_state() if self.cell else self.arm.gripper_state()

    # -- commands and stepping ----------------------------------------------------------------
    def command(self, cmd: Any, t: float, wall: float) -> None:
        """A command that arrived at grid time `t` (decoded from its message)."""
        if isinstance(cmd, JointTrajectory) and cmd.stamp:  # ROS time -> the arm's grid
            cmd = JointTrajectory(cmd.joint_names, cmd.points, cmd.stamp - self.epoch)
        if self.guard.drop(t, cmd, self.p.publish_clock):
            return  # meant for the previous episode (robots/episode_guard.py)
        self.arm.submit(t, cmd)
        self.last_command_wall = wall
        if self.first_command is None:
            self.first_command = t
        if self.p.publish_clock and self.awaiting:
            self.awaiting, self.answering = False, True
            self.advance(self.period_ticks())

    def period_ticks(self) -> int:
        """Grid ticks in one control period."""
        return round(self.p.control_period_s / self.arm.dt)

    def realtime_step(self, wall: float, take_commands: Any) -> None:
        """Step the grid up to the steady clock `wall`, taking pending commands meanwhile."""
        n = int((wall - self.mono0) / self.arm.dt + 1e-6) - round(self.arm.time / self.arm.dt)
        self.max_lag_s = max(self.max_lag_s, n * self.arm.dt)
        silence = self.arm.hardware.silence(self.profile.dof)
        if (not self.arm.check_limits and silence is not None and self.p.command_timeout_s > 0
                and wall - self.last_command_wall > self.p.command_timeout_s):
            self.arm.submit(self.arm.time, silence)  # ideal: a dead server stops
        n = min(n, MAX_CATCH_UP)
        while n > 0:
            take_commands()
            chunk = min(n, CATCH_UP_CHUNK)
            self.advance(chunk)
            n -= chunk

    def advance(self, n: int) -> None:
        """Step n ms, publishing states and sampling the episode on their schedules."""
        period = self.p.control_period_s
        cell = self.cell
        for _ in range(n):
            self.arm.step(1)
            k = round(self.arm.time / self.arm.dt)
            if cell is not None:
                self._cell_tick(cell)
            if not self.p.publish_clock and k % self.publish_every == 0:
                self.publish_state(gripper=k % self.gripper_every == 0)
            if self.arm.mode != self.mode_published:
                self.out.robot_mode()  # a mode change goes out at once
            if self.arm.time >= self.next_sample - 1e-9:
                self.next_sample += period
                st = self.arm.state()
                if cell is None:
                    self.trace.add(self.arm.time - self._start[0],
                                   self.task.achieved(self.profile, st['q']), st['qd'])
                else:
                    cell.sample(self.trace, self.arm.time - self._start[0], st['q'], st['qd'],
                                period)
            if self.warmup_over():
                self.start_episode()  # the episode the warm-up overlapped: no result
                return
            if self.arm.time - self._start[0] >= self.p.episode_s - 1e-9:
                if self.counting:
                    self.finish_episode()
                else:
                    self.start_episode()
                return
        if self.p.publish_clock:
            self.publish_state()

    def _cell_tick(self, cell: SimCell) -> None:
        """After a tick of the cell: its collision reflex, and a tracker frame if one is due.

        A contact reflex stops the arm as libfranka's does (robots/contact.py); the ideal
        fidelity only counts it (in the episode's `contact_reflexes`).
        """
        name = cell.contact_reflex()
        if name is not None and self.arm.check_limits:
            self.arm.inject_reflex(name, 'contact')
        frame = cell.object_frame()
        if frame is not None:
            self.out.object_pose(self.ros_time(frame[0]), frame[1])

    def republish(self, wall: float) -> None:
        """Lockstep, no command for a while: time passes anyway (the controller holds).

        A server at rest answers no state. One that answered the previous state is waited for
        longer (`lockstep_stall_s`): its command, a period late, would step the reference.
        """
        wait = self.p.lockstep_stall_s if self.answering else self.p.lockstep_republish_s
        if wall - self.last_command_wall >= wait:
            self.last_command_wall = wall
            self.awaiting, self.answering = False, False
            self.silent_steps += 1
            self.advance(self.period_ticks())

    def publish_state(self, gripper: bool = True) -> None:
        """The joint states go out (unless muted); lockstep: the server's answer is awaited."""
        self.out.state(gripper)
        if self.muted_at is None:
            self.awaiting = True

    # -- reports ----------------------------------------------------------------------------
    def franka_state(self) -> dict[str, Any]:
        """FrankaRobotState's mode and errors (robots/robot_state.py), as published now."""
        arm = self.arm
        self.mode_published = arm.mode
        return robot_state.franka_state(arm.mode, arm.reflex_errors, arm.last_motion_errors,
                                        self.ros_time(arm.time))

    def report(self) -> tuple[dict[str, Any], int, str]:
        """~/robot_state's JSON, and the /diagnostics level and message."""
        st = self.arm.state()
        report = robot_state.report(
            st, reset_ignored=self.guard.ignored, max_lag_ms=self.max_lag_s * 1e3,
            episode=self.episode, ros_time=self.ros_time(st['time']), muted_at=self.muted_at)
        if self.cell is not None:
            report.update(self.cell.report())
        level = 2 if st['mode'] == 'reflex' else 0
        message = f'reflex: {st["reflex"]}' if level else f'{st["mode"]} ({self.p.fidelity})'
        return report, level, message


def episode_file(path: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(goals, cubes) of sim_robot's `goals_file`.

    A goals file (`goals:`; cubes None: sampled) or a pick-and-place episodes file (`episodes:`
    of cube and goal, config/pick_episodes.yaml).
    """
    import yaml

    from rl_control.envs.pick_bench import load_episodes

    with open(path) as f:
        doc = yaml.safe_load(f)
    if isinstance(doc, dict) and 'episodes' in doc:
        cubes, goals = load_episodes(path)
        return goals, cubes
    return load_goals(path), None
