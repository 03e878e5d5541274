"""The sim-to-real gap report: how far a recorded arm moved from its simulated twin.

`from_recording`: a recording of a serving session (joint states and the commands the server
sent, `robots/recording.py`; the policy server writes one with `record_dir`) is replayed
through the MuJoCo twin: the Franka-faithful arm (`robots.franka.FrankaArm`: the same
controller, 1 kHz check and MuJoCo tracking as `sim_robot`) starts at the first recorded joint
state and receives every recorded command at its recorded time. Reported per joint: the RMS
tracking error between the recorded and the twin's positions, the estimated command-to-motion
latency of the recording relative to the twin (the lag that best aligns their joint
velocities), and the twin's reflexes.

`sim_to_sim`: the same comparison between engines for one bundle: the bundle drives the
PyBullet arm (its reference, sampled every millisecond, is kept), the MuJoCo arm follows that
very reference; plus the success gap (bench-reach on both engines).

Thresholds (defaults: per-joint RMS 0.02 rad, success gap 5 points) are printed with the result;
the CLI exits nonzero past them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from rl_control.robots.profiles import get_profile

RMS_THRESHOLD = 0.02
SUCCESS_GAP_THRESHOLD = 0.05
MAX_LAG_S = 0.2
RESET_TOLERANCE = 1e-3  # rad: a message "starts at the reset pose" (sim_robot's rule, noisier)
RESET_GUARD_S = 1.0  # s: after a jump, messages that do not start there are dropped this long
GOAL_RESET_S = 0.1
"""s: a state at exact rest within this long after the goal changed is an episode reset.

sim_robot starts each episode with a new goal and the arm put at rest at its start pose (joint
velocities exactly 0, which no real arm reports). A reset early in a motion moves the arm too
little for `_jumped` to see, yet the in-flight commands sim_robot drops would drive the twin."""


@dataclass
class Trace:
    """Joint positions of the recorded arm and of its twin on a common time base (s)."""

    t: np.ndarray
    q_real: np.ndarray
    q_twin: np.ndarray
    names: tuple[str, ...]
    notes: list[str] = field(default_factory=list)
    reflexes: int = 0

    def report(self, rms_threshold: float = RMS_THRESHOLD) -> dict[str, Any]:
        """Per-joint RMS error, the latency estimate and whether the thresholds hold."""
        err = self.q_real - self.q_twin
        rms = np.sqrt(np.mean(err**2, axis=0))
        lag = estimate_lag(self.t, self.q_real, self.q_twin)
        return {'joints': list(self.names), 'rms_rad': rms.tolist(),
                'max_abs_rad': np.abs(err).max(axis=0).tolist(),
                'latency_s': lag, 'samples': int(len(self.t)), 'twin_reflexes': self.reflexes,
                'rms_threshold_rad': rms_threshold, 'ok': bool(np.all(rms <= rms_threshold)),
                'notes': self.notes}


def estimate_lag(t: np.ndarray, q_real: np.ndarray, q_twin: np.ndarray,
                 max_lag_s: float = MAX_LAG_S) -> float | None:
    """The delay of the recording behind the twin [s]: the shift that best aligns velocities.

    Both are resampled to 1 ms; the lag maximizes the summed correlation of the joint
    velocities over shifts within +-max_lag_s (None when the arm hardly moved).
    """
    if len(t) < 10:
        return None
    grid = np.arange(t[0], t[-1], 1e-3)
    vr = np.gradient(np.stack([np.interp(grid, t, q_real[:, j]) for j in range(q_real.shape[1])],
                              1), 1e-3, axis=0)
    vt = np.gradient(np.stack([np.interp(grid, t, q_twin[:, j]) for j in range(q_twin.shape[1])],
                              1), 1e-3, axis=0)
    if np.abs(vt).max() < 1e-3:
        return None
    best, best_score = 0, -np.inf
    n = int(round(max_lag_s / 1e-3))
    for lag in range(-n, n + 1):
        a = vr[max(lag, 0):len(grid) + min(lag, 0)]
        b = vt[max(-lag, 0):len(grid) - max(lag, 0)]
        score = float(np.sum(a * b))
        if score > best_score:
            best, best_score = lag, score
    return best * 1e-3


def from_recording(root: str | Path, robot: str | None = None) -> Trace:
    """Replay a recording through the MuJoCo twin (see the module docstring)."""
    from rl_control.robots.command_interfaces import COMMAND_INTERFACES
    from rl_control.robots.franka import FrankaArm
    from rl_control.robots.physics import mujoco_physics
    from rl_control.robots.profiles import robot_with_joints
    from rl_control.robots.recording import read_recording
    from rl_control.robots.trajectory import JointTrajectory, JointTrajectoryPoint, starts_at

    states: list[Any] = []  # JointState messages with their recording time
    commands: list[tuple[int, str, Any]] = []
    goals: list[tuple[int, tuple[float, ...]]] = []  # the goal heard, as a value to compare
    for topic, msgtype, t_ns, msg in read_recording(root):
        if msgtype == 'sensor_msgs/msg/JointState':
            states.append((t_ns, msg))
        elif topic.rsplit('/', 1)[-1] == 'goal':
            goals.append((t_ns, _goal_value(msg)))
        elif msgtype in ('trajectory_msgs/msg/JointTrajectory', 'std_msgs/msg/Float64MultiArray'):
            commands.append((t_ns, msgtype, msg))
    if not states or not commands:
        raise ValueError(f'{root}: the recording needs joint states and commands (found '
                         f'{len(states)} states, {len(commands)} commands)')
    names = list(states[0][1].name)
    prof = get_profile(robot) if robot else robot_with_joints(names)
    if prof is None:
        raise ValueError(f'{root}: no registered robot has the recorded joints {names} '
                         '(pass --robot)')
    arm_states = [s for s in (_arm_state(t, m, prof.joint_names) for t, m in states) if s]
    message = commands[0][1].rsplit('/', 1)[-1]  # the first interface of that message kind
    kind = next(i for i in COMMAND_INTERFACES.values() if i.message == message)
    notes = []
    if kind.streamed:
        notes.append(f'{message} commands are replayed as {kind.name} commands (another '
                     'interface\'s recording is not compared)')
    t0 = min(arm_states[0].t_ns, commands[0][0])  # the twin starts at the first state's q
    twin = FrankaArm(prof, kind.name, physics=mujoco_physics(prof), q0=arm_states[0].q)
    twin.settle()  # as sim_robot's arm was before its first state
    base = twin.time
    # states and commands in time order (a state first at equal times)
    events = sorted([(st.t_ns, 0, st) for st in arm_states]
                    + [(t_ns, 1, msg) for t_ns, _ty, msg in commands]
                    + [(t_ns, -1, g) for t_ns, g in goals], key=lambda e: e[:2])
    ts, real, sim = [], [], []
    prev: ArmState | None = None
    reset_at, reset_q, resyncs = -np.inf, None, 0
    goal, goal_changed_at = None, -np.inf
    for t_ns, kind_i, item in events:
        t = base + (t_ns - t0) * 1e-9
        n = int(round(t / twin.dt)) - round(twin.time / twin.dt)
        if n > 0:
            twin.step(n)
        if kind_i == -1:
            if goal is not None and item != goal:
                goal_changed_at = t
            goal = item
        elif kind_i == 0:
            put_at_rest = (t - goal_changed_at <= GOAL_RESET_S and item.qd is not None
                           and not np.any(item.qd))
            if prev is not None and (_jumped(prof, prev, item) or put_at_rest):
                goal_changed_at = -np.inf
                # the arm was put elsewhere (an episode reset, a recovery): not the commands'
                # doing, so the twin restarts there, and commands planned before are dropped
                twin.reset(item.q)
                reset_at, reset_q, resyncs = t, item.q, resyncs + 1
            prev = item
            ts.append(t - base)
            real.append(item.q)
            sim.append(twin.state()['q'])
        elif hasattr(item, 'points'):  # a JointTrajectory
            stamp = item.header.stamp.sec + item.header.stamp.nanosec * 1e-9
            stamp = stamp and base + stamp - t0 * 1e-9
            if stamp and stamp < reset_at - 1e-9:
                continue
            pts = [JointTrajectoryPoint(p.time_from_start.sec + p.time_from_start.nanosec
                                        * 1e-9, list(p.positions), list(p.velocities),
                                        list(p.accelerations)) for p in item.points]
            traj = JointTrajectory(list(item.joint_names), pts, stamp)
            if reset_q is not None and t - reset_at < RESET_GUARD_S:
                if not starts_at(traj, t, prof.joint_names, reset_q, RESET_TOLERANCE):
                    continue  # planned before the server saw the reset (sim_robot drops it)
                reset_q = None
            twin.submit(t, traj)
        else:
            twin.submit(t, np.asarray(item.data, np.float64))
    if resyncs:
        notes.append(f'{resyncs} jumps in the recorded positions (episode resets): the twin '
                     'restarted at each')
    trace = Trace(np.array(ts), np.array(real), np.array(sim), prof.joint_names, notes,
                  twin.reflex_count)
    return trace


class ArmState(NamedTuple):
    """A recorded joint state of the arm's joints, in profile order."""

    t_ns: int  # recording time
    t: float  # the message's own stamp [s] (the recording time where it has none)
    q: np.ndarray
    qd: np.ndarray | None  # None: the message carried no velocities


def _arm_state(t_ns: int, msg: Any, joints: tuple[str, ...]) -> ArmState | None:
    names = list(msg.name)
    if not all(j in names for j in joints):
        return None  # e.g. the gripper's own message
    idx = [names.index(j) for j in joints]
    stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
    vel = np.asarray(msg.velocity, np.float64)
    return ArmState(t_ns, stamp or t_ns * 1e-9, np.asarray(msg.position, np.float64)[idx],
                    vel[idx] if len(vel) == len(names) else None)


def _goal_value(msg: Any) -> tuple[float, ...]:
    """A goal message's value (a PointStamped's point, else its pose's position)."""
    p = getattr(msg, 'point', None) or getattr(getattr(msg, 'pose', None), 'position', None)
    return (float(p.x), float(p.y), float(p.z)) if p is not None else ()


def _jumped(prof: Any, prev: ArmState, cur: ArmState) -> bool:
    """Whether the arm moved between two states in a way no motion explains (a teleport).

    With velocities: the position change must match the mean measured velocity over the gap,
    within what the acceleration limit allows (a small reset near the old pose is caught even
    when states are 40 ms apart). Without: faster than the velocity limits allow.
    """
    dt = max(cur.t - prev.t, 1e-3)
    if prev.qd is None or cur.qd is None:
        return bool(np.any(np.abs(cur.q - prev.q) > prof.qd_max * dt * 1.5 + 0.01))
    residual = np.abs(cur.q - prev.q - 0.5 * (prev.qd + cur.qd) * dt)
    return bool(np.any(residual > 0.5 * prof.qdd_max * dt**2 + 2e-3))


def sim_to_sim(spec: dict[str, Any], policy: Any, goals: np.ndarray, robot: str,
               episode_s: float = 4.0) -> tuple[Trace, dict[str, Any]]:
    """PyBullet drives, MuJoCo follows the same reference; and the success gap."""
    from rl_control.envs.reach_bench import run_in_process
    from rl_control.envs.shaped_arm import ShapedArm
    from rl_control.robots.physics import mujoco_physics

    results = {e: run_in_process(spec, policy, e, robot, False, goals, episode_s)['summary']
               for e in ('mujoco', 'pybullet')}
    gap = {k: results['mujoco'][k] - results['pybullet'][k]
           for k in ('held', 'held_2cm', 'reached_1cm', 'reached_2cm', 'reached_5cm')}
    # Tracking: one episode per goal on PyBullet, its 1 ms reference replayed into MuJoCo.
    from rl_control.contract import contract_from_yaml
    from rl_control.envs.franka_reach import CONTROL_PERIOD_S, FrankaReachEnv

    terms = contract_from_yaml(spec).obs_spec.terms
    env = FrankaReachEnv(robot=robot, engine='pybullet', randomize=False,
                         shaper=spec.get('shaper'),
                         action_history=sum(t.startswith('last_action') for t in terms))
    twin = mujoco_physics(env.profile)
    ts, real, sim, t_off = [], [], [], 0.0
    arm: ShapedArm = env.sim
    refs: list[np.ndarray] = []
    arm.on_reference = refs.append
    try:
        for goal in goals:
            obs, _ = env.reset(options={'goal': goal, 'q': env.profile.home})
            twin.reset(env.profile.home)
            for _ in range(int(round(episode_s / CONTROL_PERIOD_S))):
                x = np.concatenate([obs['observation'], obs['desired_goal']])
                refs.clear()
                obs, *_ = env.step(np.asarray(policy.act(x), np.float32))
                for q_ref, qd_ref in refs:
                    twin.set_reference(q_ref, qd_ref, np.zeros_like(q_ref))
                    twin.step(1e-3)
                t_off += CONTROL_PERIOD_S
                ts.append(t_off)
                real.append(arm.physics.state()[0])
                sim.append(twin.state()[0])
    finally:
        env.close()
        arm.on_reference = None
    trace = Trace(np.array(ts), np.array(real), np.array(sim), env.profile.joint_names,
                  ['real = PyBullet, twin = MuJoCo, both tracking the same 1 ms reference'])
    return trace, {'success': results, 'success_gap': gap,
                   'success_gap_threshold': SUCCESS_GAP_THRESHOLD,
                   'ok': bool(all(abs(v) <= SUCCESS_GAP_THRESHOLD for v in gap.values()))}


def plot(trace: Trace, path: str | Path, title: str) -> Path:
    """Recorded vs twin position per joint, and the error, as one PNG."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    n = len(trace.names)
    fig, axes = plt.subplots(n, 2, figsize=(11, 12 * n / 7), sharex=True, squeeze=False)
    for j in range(n):
        a, b = axes[j]
        a.plot(trace.t, trace.q_real[:, j], lw=1.2, label='recorded')
        a.plot(trace.t, trace.q_twin[:, j], lw=1.0, ls='--', label='twin')
        a.set_ylabel(trace.names[j], fontsize=8)
        b.plot(trace.t, trace.q_real[:, j] - trace.q_twin[:, j], lw=1.0, color='tab:red')
        b.axhline(0, color='k', lw=0.5)
    axes[0][0].legend(fontsize=8)
    axes[0][0].set_title('joint position [rad]')
    axes[0][1].set_title('recorded - twin [rad]')
    axes[-1][0].set_xlabel('time [s]')
    axes[-1][1].set_xlabel('time [s]')
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
