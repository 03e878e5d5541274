"""Real-arm figures, measured on the Franka-faithful sim_robot over real DDS (on demand, not CI).

Every scenario runs `rl-control serve` and `rl-control sim` as separate processes on a private
ROS domain and reads what the simulated arm reports: episode results (`~/episode_result`), and
`~/robot_state` at 200 Hz (mode, reflex, max |qdot|, grid time) for the faults.

    python bench/real_arm.py reach --robot fr3 [--lockstep] [--episodes 100]
        [--stall server|sim|both [--stall-s 0.3] [--stall-every-s 2.3]]
    python bench/real_arm.py faults --mode trajectory|velocity|effort [--repeats 20 20 10]
    python bench/real_arm.py naive-velocity [--episodes 10]
    python bench/real_arm.py effort-stream [--episodes 5]

`reach` runs exactly the README's commands (server first, so episode 0 is served from its
start). `faults` starts an episode, waits until the arm moves faster than 0.2 rad/s and then
stops the joint states (`~/mute_joint_states`), e-stops the server, or SIGKILLs it; the time to
rest (max |qdot| < 1e-3 rad/s on ~/robot_state, 5 ms resolution) is set against the braking time
the profile's limits imply: the time-optimal jerk-limited stop from the velocity at the fault
(Ruckig at 100 % of the acceleration and jerk limits) and the shaper's (its brake fractions,
90 % / 70 %; the last message's tail at 70 % / 40 % after SIGKILL). The commanded reference's
own brake (from its fastest sample after the fault to rest, on `~/robot_state` qd_ref) is timed
too.
`naive-velocity` streams the policy's raw velocity at 25 Hz to a velocity controller (no
shaping) vs the server's shaped 1 kHz stream. `effort-stream` serves a torque policy built here
(a PD toward a fixed pose; there is no effort bundle) against the torque-rate limit, with
franka_hardware's limiter on and off, from the server (shaped 1 kHz stream) and raw at 25 Hz.
Each prints a JSON summary (last stdout line) and writes bench/results/real_arm_<name>.json.
"""
from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'src'))
RESULTS = ROOT / 'bench' / 'results'
BIN = Path(sys.executable).parent
REST = 1e-3          # rad/s: at rest
MOVING = 0.2         # rad/s: mid-motion, the fault is injected above this

from rl_control.ros.processes import _die_with_parent, private_env, ros_args  # noqa: E402


# --------------------------------------------------------------------------------------------
# processes
# --------------------------------------------------------------------------------------------
def launch(argv: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    """Start `argv` in its own session, output to `log`; it dies with this process."""
    out = open(log, 'w')  # noqa: SIM115 - owned by the child
    proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT,  # noqa: PLW1509
                            start_new_session=True, preexec_fn=_die_with_parent)
    out.close()
    proc.log = log  # type: ignore[attr-defined]
    return proc


def stop(proc: subprocess.Popen, sig: int = signal.SIGINT, timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def controller_topic(robot: str, mode: str) -> str:
    """franka_ros2's controller topic for a command type (the parameter files' is the JTC's)."""
    return f'/{robot}_position_trajectory_controller/joint_trajectory' if mode == 'trajectory' \
        else f'/{mode}_controller/commands'


def serve_cmd(params_file: str, **params: Any) -> list[str]:
    return [str(BIN / 'rl-control'), 'serve', *ros_args(params, params_file)]


def sim_cmd(**params: Any) -> list[str]:
    return [str(BIN / 'rl-control'), 'sim', *ros_args(params)]


# --------------------------------------------------------------------------------------------
# the bench's own node
# --------------------------------------------------------------------------------------------
class Monitor:
    """Episode results, ~/robot_state, the server's /diagnostics; service calls."""

    def __init__(self) -> None:
        from diagnostic_msgs.msg import DiagnosticArray  # noqa: I001
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from rclpy.signals import SignalHandlerOptions
        from std_msgs.msg import String

        from rl_control.ros import qos

        self.rclpy = rclpy
        rclpy.init(args=[], signal_handler_options=SignalHandlerOptions.NO)
        self.node = Node('real_arm_bench')
        self.lock = threading.Lock()
        self.results: list[dict[str, Any]] = []
        self.states: list[dict[str, Any]] = []
        self.server: dict[str, str] = {}
        self.node.create_subscription(String, '/sim_robot/episode_result',
                                      lambda m: self._add(self.results, m), qos.RESULTS)
        self.node.create_subscription(String, '/sim_robot/robot_state',
                                      lambda m: self._add(self.states, m), qos.RESULTS)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag,
                                      qos.DIAGNOSTICS)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def _add(self, into: list, msg: Any) -> None:
        with self.lock:
            into.append(json.loads(msg.data))
            if len(into) > 20000:
                del into[:10000]

    def _on_diag(self, msg: Any) -> None:
        from rl_control.ros.conversions import diagnostic_values

        for st in msg.status:
            if st.name.endswith('policy_server: policy'):
                self.server = {**diagnostic_values(st), '_message': st.message}

    def state(self) -> dict[str, Any]:
        with self.lock:
            return dict(self.states[-1]) if self.states else {}

    def states_since(self, t_grid: float) -> list[dict[str, Any]]:
        with self.lock:
            return [s for s in self.states if s['time'] >= t_grid]

    def now(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    def call(self, srv_type: Any, name: str, request: Any = None, timeout: float = 10.0) -> Any:
        client = self.node.create_client(srv_type, name)
        try:
            if not client.wait_for_service(timeout_sec=timeout):
                raise RuntimeError(f'{name} not available')
            fut = client.call_async(request or srv_type.Request())
            end = time.monotonic() + timeout
            while not fut.done() and time.monotonic() < end:
                time.sleep(0.002)
            if not fut.done():
                raise RuntimeError(f'{name} did not answer')
            return fut.result()
        finally:
            self.node.destroy_client(client)

    def wait(self, pred: Callable[[], Any], timeout: float, what: str,
             procs: Sequence[subprocess.Popen] = ()) -> Any:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            v = pred()
            if v:
                return v
            for p in procs:
                if p.poll() is not None:
                    raise RuntimeError(f'{p.args[:3]} exited {p.returncode} waiting for {what}; '
                                       f'log {p.log}')  # type: ignore[attr-defined]
            time.sleep(0.005)
        raise RuntimeError(f'timed out after {timeout} s waiting for {what}')

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        if self.rclpy.ok():
            self.rclpy.shutdown()


# --------------------------------------------------------------------------------------------
# reach episodes: the README's commands
# --------------------------------------------------------------------------------------------
def reach(args: argparse.Namespace, env: dict[str, str], mon: Monitor, out: Path
          ) -> dict[str, Any]:
    from rl_control.envs.reach_metrics import summarize

    robot = args.robot
    params_file = 'config/policy_server_fr3.yaml' if robot == 'fr3' \
        else 'config/policy_server.yaml'
    srv = {'bundle': 'models/panda_reach_sac', 'autostart': True,
           'command_type': 'trajectory',
           'command_topic': f'/{robot}_position_trajectory_controller/joint_trajectory'}
    sim = {'robot': robot, 'fidelity': 'franka', 'command_type': 'trajectory',
           'goals_file': 'config/reach_goals.yaml', 'episodes': args.episodes}
    if args.lockstep:
        srv.update({'use_sim_time': True, 'trigger': 'state', 'backstop_s': 30.0})  # demo.py
        sim['publish_clock'] = True
    if args.lead_s:
        srv['lead_s'] = args.lead_s
    commands = {'server': serve_cmd(params_file, **srv), 'sim': sim_cmd(**sim)}
    t0 = time.monotonic()
    server = launch(commands['server'], out / f'reach_{robot}_server.log', env)
    mon.wait(lambda: mon.server.get('active') == 'true', 60, 'server active', [server])
    simp = launch(commands['sim'], out / f'reach_{robot}_sim.log', env)
    staller = None
    if args.stall:
        victims = {'server': [server], 'sim': [simp], 'both': [server, simp]}[args.stall]
        staller = Staller(victims, args.stall_s, args.stall_every_s)
    try:
        mon.wait(lambda: len(mon.results) >= args.episodes or simp.poll() is not None,
                 120 + 12 * args.episodes, f'{args.episodes} episodes', [server])
        if staller is not None:
            staller.close()
        time.sleep(1.2)
        diag = dict(mon.server)
    finally:
        if staller is not None:
            staller.close()
        stop(server)
        stop(simp)
    results = mon.results[:args.episodes]
    s = summarize(results)
    return {'scenario': 'reach', 'robot': robot, 'lockstep': args.lockstep,
            'lead_s': args.lead_s or 0.02,
            'commands': {k: ' '.join(v[1:]).replace(str(BIN) + '/', '') for k, v in
                         commands.items()},
            **{k: s[k] for k in ('episodes', 'held_1cm', 'held_2cm', 'held_5cm', 'reached_2cm',
                                 'settle_time_s_median', 'settle_time_s_max', 'unsettled',
                                 'time_to_goal_s_median', 'time_to_goal_s_max',
                                 'final_distance_median', 'final_distance_max',
                                 'last_second_distance_mean_median',
                                 'last_second_path_median', 'path_ratio_median',
                                 'final_joint_speed_median', 'final_joint_speed_max')},
            'reflexes': sum(r['reflexes'] for r in results),
            'episodes_with_reflex': sum(1 for r in results if r['reflex']),
            'reflex_names': sorted({r['reflex'] for r in results if r['reflex']}),
            'reflex_episodes': [{k: r.get(k) for k in ('episode', 'reflex', 'reflex_at_s',
                                                       'reflex_violation', 'rejected',
                                                       'reset_ignored', 'silent_steps',
                                                       'reflex_log')}
                                for r in results if r['reflex'] or r.get('rejected')],
            'rejected': sum(r['rejected'] for r in results),
            'reset_ignored': sum(r.get('reset_ignored', 0) for r in results),
            'per_episode': {k: [r.get(k) for r in results] for k in (
                'held_2cm', 'reached_2cm', 'min_distance', 'final_distance', 'settle_time_s',
                'last_second_path', 'time_to_goal_s', 'reflexes',
                'rejected', 'reset_ignored')},
            'stalls': None if staller is None else {
                'who': args.stall, 'stall_s': args.stall_s, 'every_s': args.stall_every_s,
                'count': staller.count},
            'late_withheld': (int(float(diag['late_withheld'])) if 'late_withheld' in diag
                              else None),  # a server from before it existed
            'late_messages': int(float(diag.get('late_messages', 'nan'))),
            'latency_ms_p50': float(diag.get('latency_ms_p50_total', 'nan')),
            'latency_ms_p99': float(diag.get('latency_ms_p99_total', 'nan')),
            'wall_s': round(time.monotonic() - t0, 1)}


class Staller:
    """Stop processes (SIGSTOP) for `stall_s` every `every_s`: a host that stalls.

    The server alone is a robot PC's hiccup (the robot runs on); both at once, or the sim
    alone, test that the sim's 1 ms grid stays what a real robot would have done.
    """

    def __init__(self, procs: Sequence[subprocess.Popen], stall_s: float, every_s: float
                 ) -> None:
        self.procs, self.stall_s, self.every_s = list(procs), stall_s, every_s
        self.count = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _signal(self, sig: int) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.kill(p.pid, sig)

    def _run(self) -> None:
        while not self._done.wait(self.every_s):
            self._signal(signal.SIGSTOP)
            self.count += 1
            time.sleep(self.stall_s)
            self._signal(signal.SIGCONT)

    def close(self) -> None:
        """Stop stalling (the processes run on)."""
        self._done.set()
        self._thread.join()
        self._signal(signal.SIGCONT)


# --------------------------------------------------------------------------------------------
# faults mid-motion
# --------------------------------------------------------------------------------------------
def stop_time_bounds(robot: str, qd: np.ndarray, tail: bool = False) -> tuple[float, float]:
    """(time-optimal stop at 100 % of the limits, the shaper's) [s].

    The shaper's: a stop it plans (`brake_*` fractions), or with `tail` the braking tail of
    the last message a dead server sent (the tracking fractions).
    """
    from rl_control.contract.shaper import ShaperConfig

    cfg = ShaperConfig()
    shaper = ((cfg.acceleration_fraction, cfg.jerk_fraction) if tail else
              (cfg.brake_acceleration_fraction, cfg.brake_jerk_fraction))
    from ruckig import (
        ControlInterface,
        InputParameter,
        Result,
        Ruckig,
        Synchronization,
        Trajectory,
    )

    from rl_control.robots.profiles import get_profile

    prof = get_profile(robot)
    out = []
    for acc, jerk in ((1.0, 1.0), shaper):
        inp = InputParameter(7)
        inp.control_interface = ControlInterface.Velocity
        inp.synchronization = Synchronization.No
        inp.current_position = [0.0] * 7
        inp.current_velocity = [float(v) for v in qd]
        inp.current_acceleration = [0.0] * 7
        inp.target_velocity = [0.0] * 7
        inp.target_acceleration = [0.0] * 7
        inp.max_velocity = (prof.qd_max * 2).tolist()
        inp.max_acceleration = (prof.qdd_max * acc).tolist()
        inp.max_jerk = (prof.qddd_max * jerk).tolist()
        traj = Trajectory(7)
        assert Ruckig(7).calculate(inp, traj) in (Result.Working, Result.Finished)
        out.append(traj.duration)
    return out[0], out[1]


def torque_bundle(out_dir: Path) -> Path:
    """An effort bundle built here: a PD toward a fixed pose (tanh-saturated), not trained."""
    from rl_control.bundle.io import save_bundle
    from rl_control.contract.spec import ActionSpec, ObservationSpec, RobotContract
    from rl_control.robots.profiles import PANDA

    names = PANDA.joint_names
    obs = ObservationSpec(names, ('joint_pos', 'joint_vel', 'ee_pos', 'goal'))
    # gains a 25 Hz torque loop keeps stable on the light distal joints (kd * period < inertia)
    scale = np.array([6.0, 6.0, 2.0, 4.0, 1.0, 1.0, 0.5])   # |tau| <= scale [Nm]
    act = ActionSpec('joint_effort', names, scale, -PANDA.tau_max, PANDA.tau_max)
    contract = RobotContract(obs, act, 0.04)
    target = PANDA.home + np.array([0.6, -0.3, 0.5, 0.4, -0.5, 0.3, 0.6])
    kp = np.array([10.0, 10.0, 3.0, 6.0, 1.0, 1.0, 0.5]) / scale  # action units: tanh(W obs + b)
    kd = np.array([3.0, 3.0, 0.8, 1.5, 0.3, 0.3, 0.1]) / scale
    w = np.zeros((7, obs.size))
    w[:, :7] = -np.diag(kp)
    w[:, 7:14] = -np.diag(kd)
    b = kp * target

    class PD:
        def export_actor(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
            return ({'kind': 'mlp', 'layers': [[obs.size, 7]], 'activation': 'relu',
                     'output': 'tanh'}, {'l0.weight': w, 'l0.bias': b})

    meta = {'env_id': 'rl_control/PandaJointReach-v0', 'env_kwargs': {}, 'time_limit': None,
            'goal_env': True, 'obs_dim': obs.size, 'act_dim': 7, 'contract': contract,
            'obs_terms': [{'name': 'observation', 'size': obs.size - 3},
                          {'name': 'desired_goal', 'size': 3}],
            'action_low': [-1.0] * 7, 'action_high': [1.0] * 7}
    return save_bundle(out_dir, PD(), None, meta, {'algo': 'pd'}, None,
                       'bench/real_arm.py: PD torque policy (not trained)')


def fault_trial(kind: str, mode: str, mon: Monitor, server: dict[str, Any], env: dict[str, str],
                robot: str, out: Path, k: int) -> dict[str, Any]:
    from std_srvs.srv import SetBool, Trigger

    recover_if_reflexed(mon)
    episode = mon.state().get('episode', -1)
    mon.call(Trigger, '/sim_robot/reset_episode')
    t_reset = time.monotonic()
    try:  # a state of the new episode, moving
        moving = mon.wait(lambda: (lambda s: s if s.get('max_abs_qd', 0) > MOVING and
                                   s['mode'] == 'move' and s['episode'] > episode
                                   else None)(mon.state()), 10, 'moving', [server['proc']])
    except RuntimeError:
        st = mon.state()
        return {'kind': kind, 'trial': k, 'no_motion': True, 'mode_then': st.get('mode'),
                'reflex_then': st.get('reflex')}
    epoch = moving['ros_time'] - moving['time']
    qd = np.array(moving['qd'])
    if kind == 'states_stop':
        mon.call(SetBool, '/sim_robot/mute_joint_states', SetBool.Request(data=True))
        t_event = mon.wait(lambda: mon.state().get('muted_at'), 2, 'muted')
    elif kind == 'estop':
        t_event = mon.now() - epoch
        mon.call(Trigger, '/policy_server/estop')
    else:
        t_event = mon.now() - epoch
        server['proc'].send_signal(signal.SIGKILL)
        server['proc'].wait()
    before = [s for s in mon.states_since(t_event - 0.05) if s['time'] <= t_event]
    if before:
        qd = np.array(before[-1]['qd'])
    horizon = 3.0 if kind != 'server_kill' or mode == 'trajectory' else 6.0
    end = time.monotonic() + horizon
    rest = reflex = None
    while time.monotonic() < end:
        for s in mon.states_since(t_event):
            if s['mode'] == 'reflex' and reflex is None:
                reflex = (s['reflex'], s['reflex_time'] - t_event)
            if s['max_abs_qd'] < REST and rest is None:
                rest = s['time'] - t_event
        if rest is not None and (reflex is not None or time.monotonic() - end > -horizon + 0.5):
            break
        time.sleep(0.01)
    t_min, t_shaper = stop_time_bounds(robot, qd, tail=kind == 'server_kill')
    ref = _reference_brake(mon.states_since(t_event - 1e-9), t_event, robot,
                           tail=kind == 'server_kill')
    after = mon.state()
    row = {'kind': kind, 'trial': k, 'speed_at_fault': float(np.abs(qd).max()),
           'rest_s': rest, 'limits_stop_s': t_min, 'shaper_stop_s': t_shaper, **ref,
           'reflex': reflex[0] if reflex else None,
           'reflex_after_s': reflex[1] if reflex else None,
           'max_abs_qd_end': after.get('max_abs_qd'), 'since_reset_s': time.monotonic() - t_reset}
    # undo the fault (a reflex first: the server then re-anchors on the recovered arm)
    recover_if_reflexed(mon)
    if kind == 'states_stop':
        mon.call(SetBool, '/sim_robot/mute_joint_states', SetBool.Request(data=False))
    elif kind == 'estop':
        mon.call(Trigger, '/policy_server/reset')
    else:
        restart_server(server, mon, env, out, k)
    return row


def _reference_brake(states: list[dict[str, Any]], t_event: float, robot: str,
                     tail: bool = False) -> dict[str, float | None]:
    """When the commanded reference began to brake and came to rest, and what the limits imply.

    Brake start: the fastest reference sample between the fault and the reference at rest (the
    hold before it runs at the target). From there the limits' and the shaper's time-optimal
    stops are computed from that reference velocity, to set against the reference's own brake.
    """
    none = {'ref_brake_start_s': None, 'ref_rest_s': None, 'ref_brake_s': None,
            'ref_limits_stop_s': None, 'ref_shaper_stop_s': None}
    states = [s for s in states if 'qd_ref' in s]
    rest = next((i for i, s in enumerate(states) if np.abs(s['qd_ref']).max() < REST), None)
    if rest is None or rest == 0:
        return none
    peak = max(range(rest), key=lambda i: np.abs(states[i]['qd_ref']).max())
    t_min, t_shaper = stop_time_bounds(robot, np.array(states[peak]['qd_ref']), tail)
    start, end = states[peak]['time'] - t_event, states[rest]['time'] - t_event
    return {'ref_brake_start_s': start, 'ref_rest_s': end, 'ref_brake_s': end - start,
            'ref_limits_stop_s': t_min, 'ref_shaper_stop_s': t_shaper}


def recover_if_reflexed(mon: Monitor) -> None:
    from std_srvs.srv import Trigger

    for _ in range(5):  # a stream that keeps jumping raises the next reflex at once
        if mon.state().get('mode') != 'reflex':
            return
        try:
            mon.wait(lambda: mon.state().get('at_rest'), 5, 'at rest after the reflex')
        except RuntimeError:
            pass
        mon.call(Trigger, '/sim_robot/recover')
        time.sleep(0.1)


def restart_server(server: dict[str, Any], mon: Monitor, env: dict[str, str], out: Path,
                   k: int) -> None:
    mon.server = {}
    server['proc'] = launch(server['cmd'], out / f"{server['name']}_{k}.log", env)
    mon.wait(lambda: mon.server.get('active') == 'true', 60, 'server active again',
             [server['proc']])
    time.sleep(0.6)  # the ramp-in


def faults(args: argparse.Namespace, env: dict[str, str], mon: Monitor, out: Path
           ) -> dict[str, Any]:
    mode, robot = args.mode, args.robot
    params_file = 'config/policy_server_fr3.yaml' if robot == 'fr3' \
        else 'config/policy_server.yaml'
    srv: dict[str, Any] = {'autostart': True, 'command_type': mode,
                           'command_topic': controller_topic(robot, mode),
                           'bundle': 'models/panda_reach_sac'}
    if args.lead_s:
        srv['lead_s'] = args.lead_s
    sim: dict[str, Any] = {'robot': robot, 'fidelity': 'franka', 'command_type': mode,
                           'goals_file': 'config/reach_goals.yaml', 'episode_s': 60.0,
                           'robot_state_rate_hz': 200.0}
    if mode == 'effort':
        srv['bundle'] = str(torque_bundle(out / 'pd_torque_bundle'))
    server = {'cmd': serve_cmd(params_file, **srv), 'name': f'faults_{mode}_server'}
    simp = launch(sim_cmd(**sim), out / f'faults_{mode}_sim.log', env)
    server['proc'] = launch(server['cmd'], out / f"{server['name']}.log", env)
    rows = []
    try:
        mon.wait(lambda: mon.server.get('active') == 'true' and mon.state(), 60,
                 'server active', [server['proc'], simp])
        time.sleep(0.6)
        kinds = [('states_stop', args.repeats[0]), ('estop', args.repeats[1]),
                 ('server_kill', args.repeats[2])]
        for kind, n in kinds:
            for k in range(n):
                row = fault_trial(kind, mode, mon, server, env, robot, out, k)
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
        diag = dict(mon.server)
    finally:
        stop(server['proc'])
        stop(simp)
    summary: dict[str, Any] = {'scenario': 'faults', 'mode': mode, 'robot': robot,
                               'lead_s': args.lead_s or 0.02,
                               'late_messages_last_server': diag.get('late_messages')}
    for kind, _n in kinds:
        early = [x for x in rows if x['kind'] == kind and not x.get('no_motion')
                 and x['reflex'] and x['reflex_after_s'] < 0]
        r = [x for x in rows if x['kind'] == kind and not x.get('no_motion') and x not in early]
        rest = [x['rest_s'] for x in r if x['rest_s'] is not None]
        ratio = [x['rest_s'] / x['limits_stop_s'] for x in r if x['rest_s'] is not None]
        summary[kind] = {
            'trials': len(r), 'no_motion': sum(1 for x in rows if x['kind'] == kind
                                               and x.get('no_motion')),
            'reflex_before_fault': len(early),
            'reflexes': sum(1 for x in r if x['reflex']),
            'reflex_names': sorted({x['reflex'] for x in r if x['reflex']}),
            'reflex_after_s_median': _median([x['reflex_after_s'] for x in r
                                              if x['reflex_after_s'] is not None]),
            'at_rest': len(rest), 'rest_s_median': _median(rest),
            'rest_s_worst': max(rest) if rest else None,
            'limits_stop_s_median': _median([x['limits_stop_s'] for x in r]),
            'shaper_stop_s_median': _median([x['shaper_stop_s'] for x in r]),
            'rest_over_limits_median': _median(ratio),
            'rest_over_limits_worst': max(ratio) if ratio else None,
            'speed_at_fault_median': _median([x['speed_at_fault'] for x in r]),
            **_reference_summary(r)}
    summary['trials'] = rows
    return summary


def _reference_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The commanded reference's brake: start after the fault, duration, against the limits."""
    r = [x for x in rows if x.get('ref_brake_s') is not None]
    over = [x['ref_brake_s'] / x['ref_limits_stop_s'] for x in r if x['ref_limits_stop_s']]
    return {'ref_at_rest': len(r),
            'ref_brake_start_s_median': _median([x['ref_brake_start_s'] for x in r]),
            'ref_brake_s_median': _median([x['ref_brake_s'] for x in r]),
            'ref_brake_s_worst': max((x['ref_brake_s'] for x in r), default=None),
            'ref_limits_stop_s_median': _median([x['ref_limits_stop_s'] for x in r]),
            'ref_shaper_stop_s_median': _median([x['ref_shaper_stop_s'] for x in r]),
            'ref_brake_over_limits_median': _median(over),
            'ref_brake_over_limits_worst': max(over, default=None),
            'ref_rest_s_median': _median([x['ref_rest_s'] for x in r]),
            'ref_rest_s_worst': max((x['ref_rest_s'] for x in r), default=None)}


def _median(v: list[float]) -> float | None:
    return float(np.median(v)) if v else None


# --------------------------------------------------------------------------------------------
# unshaped streams: the policy's raw command at 25 Hz from a small node
# --------------------------------------------------------------------------------------------
class RawStream:
    """obs -> policy -> action_to_command, published raw at the bundle's rate (no shaping)."""

    def __init__(self, mon: Monitor, bundle: str, robot: str, topic: str) -> None:
        from geometry_msgs.msg import PointStamped
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray

        from rl_control.bundle.io import load_bundle
        from rl_control.contract import ObservationSpec, contract_from_yaml
        from rl_control.robots.profiles import get_profile
        from rl_control.ros import conversions as conv
        from rl_control.ros import qos

        spec, self.policy = load_bundle(bundle)
        c = contract_from_yaml(spec)
        self.names = list(get_profile(robot).joint_names)
        self.obs_spec = ObservationSpec(tuple(self.names), c.obs_spec.terms)
        self.act = c.act_spec
        self.conv = conv
        self.q = self.qd = None
        self.goal = None
        self.pub = mon.node.create_publisher(Float64MultiArray, topic, qos.COMMAND)
        mon.node.create_subscription(JointState, '/joint_states', self._on_state, qos.SENSOR)
        mon.node.create_subscription(PointStamped, '/policy_server/goal', self._on_goal,
                                     qos.GOAL)
        self.sent = 0
        self._stop = threading.Event()
        self.period = float(spec['control_period_s'])
        threading.Thread(target=self._run, daemon=True).start()

    def _on_state(self, msg: Any) -> None:
        names, q, qd, _ = self.conv.joint_state_arrays(msg)
        idx = [list(names).index(n) for n in self.names]
        self.q, self.qd = q[idx], qd[idx]

    def _on_goal(self, msg: Any) -> None:
        self.goal = self.conv.point_array(msg)[1]

    def _run(self) -> None:
        from rl_control.contract import action_to_command, build_observation

        t = time.monotonic()
        while not self._stop.is_set():
            if self.q is not None and self.goal is not None:
                obs = build_observation(self.obs_spec, self.names, self.q, self.qd, self.goal)
                cmd = action_to_command(self.act, self.policy.act(obs))
                self.pub.publish(self.conv.float64_multiarray(cmd))
                self.sent += 1
            t += self.period
            time.sleep(max(0.0, t - time.monotonic()))

    def close(self) -> None:
        self._stop.set()


def episodes_with(mon: Monitor, n: int, procs: Sequence[subprocess.Popen]
                  ) -> list[dict[str, Any]]:
    from std_srvs.srv import Trigger

    first = len(mon.results)
    mon.call(Trigger, '/sim_robot/reset_episode')
    out = []
    while len(out) < n:
        mon.wait(lambda: len(mon.results) > first + len(out), 30, 'an episode', procs)
        r = mon.results[first + len(out)]
        out.append(r)
        if r.get('reflex'):  # recover (the next episode's reset moves the arm home anyway)
            mon.call(Trigger, '/sim_robot/recover')
    return out


def stream_scenarios(args: argparse.Namespace, env: dict[str, str], mon: Monitor, out: Path,
                     mode: str) -> dict[str, Any]:
    robot = args.robot
    params_file = 'config/policy_server_fr3.yaml' if robot == 'fr3' \
        else 'config/policy_server.yaml'
    bundle = 'models/panda_reach_sac' if mode == 'velocity' \
        else str(torque_bundle(out / 'pd_torque_bundle'))
    limiters = (True,) if mode == 'velocity' else (True, False)
    runs = []
    for limiter in limiters:
        for source in ('server', 'raw_25hz'):
            mon.results.clear()
            sim = {'robot': robot, 'fidelity': 'franka', 'command_type': mode,
                   'goals_file': 'config/reach_goals.yaml', 'torque_rate_limiter': limiter,
                   'reset_guard_s': 0.0}
            name = f'{mode}_{source}_limiter{int(limiter)}'
            simp = launch(sim_cmd(**sim), out / f'{name}_sim.log', env)
            procs, raw = [simp], None
            try:
                if source == 'server':
                    srv = launch(serve_cmd(params_file, bundle=bundle, autostart=True,
                                           command_type=mode,
                                           command_topic=controller_topic(robot, mode)),
                                 out / f'{name}_server.log', env)
                    procs.append(srv)
                    mon.server = {}
                    mon.wait(lambda: mon.server.get('active') == 'true', 60, 'server', procs)
                    time.sleep(0.6)
                else:
                    raw = RawStream(mon, bundle, robot, f'/{mode}_controller/commands')
                    mon.wait(lambda: mon.results or mon.state(), 30, 'sim', procs)
                res = episodes_with(mon, args.episodes, procs)
            finally:
                if raw is not None:
                    raw.close()
                for p in reversed(procs):
                    stop(p)
            runs.append({'source': source, 'torque_rate_limiter': limiter,
                         'episodes': len(res),
                         'episodes_with_reflex': sum(1 for r in res if r['reflex']),
                         'reflexes': sum(r['reflexes'] for r in res),
                         'reflex_names': sorted({r['reflex'] for r in res if r['reflex']}),
                         'held_2cm': sum(r['held_2cm'] for r in res) / max(len(res), 1),
                         'reached_2cm': sum(r['reached_2cm'] for r in res) / max(len(res), 1)})
            print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    return {'scenario': f'{mode}-stream', 'robot': robot, 'runs': runs}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('scenario', choices=('reach', 'faults', 'naive-velocity', 'effort-stream'))
    ap.add_argument('--robot', choices=('panda', 'fr3'), default='fr3')
    ap.add_argument('--lockstep', action='store_true')
    ap.add_argument('--episodes', type=int, default=None)
    ap.add_argument('--mode', choices=('trajectory', 'velocity', 'effort'),
                    default='trajectory')
    ap.add_argument('--lead-s', type=float, default=0.0, help='policy_server lead_s (0: the '
                    "bundle's, 20 ms); more absorbs a loaded host's message latency")
    ap.add_argument('--stall', choices=('server', 'sim', 'both'), default=None,
                    help='reach: SIGSTOP these processes for --stall-s every --stall-every-s')
    ap.add_argument('--stall-s', type=float, default=0.3)
    ap.add_argument('--stall-every-s', type=float, default=2.3)
    ap.add_argument('--repeats', type=int, nargs=3, default=None,
                    metavar=('STATES_STOP', 'ESTOP', 'SERVER_KILL'))
    args = ap.parse_args(argv)
    if args.episodes is None:
        args.episodes = 100 if args.scenario == 'reach' else 10 \
            if args.scenario == 'naive-velocity' else 5
    if args.repeats is None:
        args.repeats = [20, 20, 10] if args.mode == 'trajectory' else [20, 20, 3]
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / 'real_arm_logs'
    out.mkdir(exist_ok=True)
    env = private_env()
    os.environ.update({k: env[k] for k in ('ROS_DOMAIN_ID', 'ROS_AUTOMATIC_DISCOVERY_RANGE',
                                            'ROS_LOCALHOST_ONLY')})
    mon = Monitor()
    t0 = time.monotonic()
    load0 = os.getloadavg()[0]
    try:
        if args.scenario == 'reach':
            result = reach(args, env, mon, out)
        elif args.scenario == 'faults':
            result = faults(args, env, mon, out)
        else:
            result = stream_scenarios(args, env, mon, out, 'velocity'
                                      if args.scenario == 'naive-velocity' else 'effort')
    finally:
        mon.close()
    result.update(wall_s=round(time.monotonic() - t0, 1),
                  load_avg=[round(load0, 2), round(os.getloadavg()[0], 2)])
    name = '_'.join(x for x in [args.scenario, args.robot,
                                args.mode if args.scenario == 'faults' else '',
                                'lockstep' if args.lockstep else '',
                                f'lead{args.lead_s:g}' if args.lead_s else '',
                                f'stall_{args.stall}' if args.stall else ''] if x)
    (RESULTS / f'real_arm_{name}.json').write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != 'trials'}), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
