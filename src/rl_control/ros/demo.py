"""`rl-control demo`: a simulated Franka driven by a policy bundle, over real DDS.

Starts `sim_robot` (the Franka-faithful robot: 1 kHz libfranka limit checks and reflexes, a
joint_trajectory_controller as ros2_controllers runs it, MuJoCo tracking; `--robot panda|fr3`)
and `policy_server` (trajectory commands, the robot's parameter file config/policy_server.yaml
or config/policy_server_fr3.yaml) as separate processes on a private ROS domain
(localhost-only discovery), both on their default topics. The server's `autostart` walks the
lifecycle configure -> activate; once its ramp-in is over the demo starts a fresh episode and
collects K episode results from `/sim_robot/episode_result`, one per goal of
config/reach_goals.yaml in order, each starting at rest at the profile's home. It prints the
held success (within and at rest over each 4 s episode's last second), the time to settle, the
reflexes the robot raised
and the trajectory messages it rejected (with `--json` the LAST stdout line is one JSON
object), writes `demo_episodes.png` and `demo_results.json` into `--out`, and stops
everything: SIGINT to the children (the server brakes to rest first), then SIGKILL after a
timeout. Children also get SIGTERM from the kernel if this process dies (PR_SET_PDEATHSIG), so
no node outlives the demo, even on SIGKILL.

`--namespace /robot1` runs the pair under that namespace (`-r __ns:=`, and in lockstep its own
/clock, `-r /clock:=/robot1/clock`), so several demos can share a domain as several robots;
`--record DIR` makes the server record the session (`record_dir`) for `rl-control gap DIR`.
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence
import json
import os
from pathlib import Path
import random
import re
import signal
import subprocess
import sys
import time
from typing import Any

DEFAULT_EPISODES = 10
GOALS_FILE = 'reach_goals.yaml'


def ros_args(params: dict[str, Any], params_file: str | None = None) -> list[str]:
    """`--ros-args [--params-file F] -p name:=value ...` (lists/bools in YAML syntax).

    The file comes first: rcl lets whichever source comes LAST win, and `-p` must override it.
    """
    out = ['--ros-args'] + (['--params-file', params_file] if params_file else [])
    for k, v in params.items():
        if isinstance(v, bool):
            s = 'true' if v else 'false'
        elif isinstance(v, list | tuple):
            s = '[' + ', '.join(json.dumps(x) for x in v) + ']'
        else:
            s = str(v) or "''"  # rcl cannot parse `-p name:=` (an empty value)
        out += ['-p', f'{k}:={s}']
    return out


def _load_prctl() -> Any:
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: the finally blocks still clean up
        return None


# Resolved here, in the parent: between fork and exec (where the parent's other threads, e.g.
# DDS, may hold locks) the child must do as little as possible, so it only makes this call.
_PRCTL = _load_prctl()


def _die_with_parent() -> None:
    """Child side of fork: SIGTERM when the parent dies (PR_SET_PDEATHSIG = 1)."""
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGTERM)


def start_node(module: str, params: dict[str, Any], log_path: str | Path | None = None,
               env: dict[str, str] | None = None, extra_ros: Sequence[str] = (),
               params_file: str | None = None) -> subprocess.Popen:
    """Start `python -m module --ros-args -p ...` in its own session, output to `log_path`.

    `extra_ros` are further ROS arguments (`-p name:=value`, `-r from:=to`).
    """
    cmd = [sys.executable, '-u', '-m', module, *ros_args(params, params_file), *extra_ros]
    out: Any = subprocess.DEVNULL
    if log_path is not None:
        out = open(log_path, 'w')  # noqa: SIM115 - owned by the child for its lifetime
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,  # noqa: PLW1509
                            start_new_session=True, preexec_fn=_die_with_parent)
    proc.log_path = log_path  # type: ignore[attr-defined]
    if log_path is not None:
        out.close()  # the child holds its own descriptor
    return proc


def stop_process(proc: subprocess.Popen, timeout: float = 5.0) -> int | None:
    """SIGINT, wait up to `timeout`, then SIGKILL; returns the exit code."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5.0)
        except ProcessLookupError:
            pass
    return proc.returncode


def private_env(domain_id: int | None = None) -> dict[str, str]:
    """os.environ with a private ROS domain and localhost-only discovery."""
    env = dict(os.environ)
    env['ROS_DOMAIN_ID'] = str(domain_id if domain_id is not None
                               else random.SystemRandom().randint(101, 199))
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    env['ROS_LOCALHOST_ONLY'] = '1'
    env.setdefault('OMP_NUM_THREADS', '1')
    env.setdefault('PYTHONUNBUFFERED', '1')
    return env


def percentile(values: Sequence[float], q: float) -> float:
    """Percentile without numpy import at module level (NaN when empty)."""
    import numpy as np

    return float(np.percentile(values, q)) if len(values) else float('nan')


def spin_until(node: Any, pred: Any, timeout: float, procs: Sequence[subprocess.Popen] = ()
               ) -> bool:
    """Spin `node` until pred() or timeout; RuntimeError early if a child process died."""
    import rclpy

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f'{p.args[3]} exited with {p.returncode}; log: '
                                   f'{getattr(p, "log_path", None)}')
        rclpy.spin_once(node, timeout_sec=0.05)
    return pred()


class _Monitor:
    """The demo's own rclpy node: episode results, diagnostics, the episode-reset client."""

    def __init__(self, ns: str = '') -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        import rclpy
        from rclpy.node import Node
        from rclpy.signals import SignalHandlerOptions
        from std_msgs.msg import String
        from std_srvs.srv import Trigger

        from rl_control.ros import qos
        from rl_control.ros.conversions import diagnostic_values

        self.rclpy = rclpy
        rclpy.init(args=[], signal_handler_options=SignalHandlerOptions.NO)
        self.node = Node('rl_control_demo', namespace=ns or '/')
        self.server_status = f'{ns}/policy_server: policy'
        self.results: list[dict[str, Any]] = []
        self.diag: dict[str, str] = {}
        self._values = diagnostic_values
        self.node.create_subscription(String, f'{ns}/sim_robot/episode_result', self._on_result,
                                      qos.RESULTS)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag,
                                      qos.DIAGNOSTICS)
        self.reset_client = self.node.create_client(Trigger, f'{ns}/sim_robot/reset_episode')
        self.Trigger = Trigger

    def _on_result(self, msg: Any) -> None:
        self.results.append(json.loads(msg.data))

    def _on_diag(self, msg: Any) -> None:
        for st in msg.status:
            if st.name == self.server_status:
                self.diag = self._values(st)

    def spin_until(self, pred: Any, timeout: float, procs: Sequence[subprocess.Popen] = ()
                   ) -> bool:
        """Spin until pred() or timeout; RuntimeError early if a child process died."""
        return spin_until(self.node, pred, timeout, procs)

    def reset_episode(self, timeout: float = 10.0) -> int:
        """Ask the sim for a fresh episode; returns its episode number."""
        if not self.reset_client.wait_for_service(timeout_sec=timeout):
            raise RuntimeError(f'{self.reset_client.srv_name} not available')
        fut = self.reset_client.call_async(self.Trigger.Request())
        self.rclpy.spin_until_future_complete(self.node, fut, timeout_sec=timeout)
        if not fut.done():
            raise RuntimeError(f'{self.reset_client.srv_name} did not answer')
        m = re.search(r'episode (\d+)', fut.result().message)
        return int(m.group(1)) if m else 0

    def close(self) -> None:
        self.node.destroy_node()
        if self.rclpy.ok():
            self.rclpy.shutdown()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options of `rl-control demo`."""
    ap = argparse.ArgumentParser(prog='rl-control demo', description=__doc__.split('\n')[0])
    ap.add_argument('--bundle', default='', help='policy bundle folder (default: the installed '
                    'models/panda_reach_sac)')
    ap.add_argument('--robot', choices=('panda', 'fr3'), default='panda',
                    help='robot profile of the simulated arm and of the server (default panda)')
    ap.add_argument('--episodes', type=int, default=DEFAULT_EPISODES,
                    help=f'episodes, one per goal of config/{GOALS_FILE} in order '
                         f'(default {DEFAULT_EPISODES})')
    ap.add_argument('--json', action='store_true', help='last stdout line: a JSON summary')
    ap.add_argument('--out', default='runs/demo', help='folder for the plot, results, logs')
    ap.add_argument('--lockstep', action='store_true', help='sim publishes /clock and steps '
                    'one control period per command (server on sim time, trigger: state)')
    ap.add_argument('--seed', type=int, default=0, help='seed of the sim (start noise when no '
                    'goals file is used)')
    ap.add_argument('--domain-id', type=int, default=None, help='ROS_DOMAIN_ID (default: a '
                    'random private one in 101..199)')
    ap.add_argument('--timeout', type=float, default=0.0, help='give up after this many '
                    'seconds (default: 60 + 6 s per episode)')
    ap.add_argument('--namespace', default='', help='run sim_robot and policy_server under '
                    'this namespace (e.g. /robot1): several robots on one domain')
    ap.add_argument('--record', default='', metavar='DIR', help='the server records the '
                    'session here (record_dir) for `rl-control gap DIR`')
    ap.add_argument('--server-param', action='append', default=[], metavar='NAME:=VALUE',
                    help='extra policy_server parameter (repeatable)')
    ap.add_argument('--sim-param', action='append', default=[], metavar='NAME:=VALUE',
                    help='extra sim_robot parameter (repeatable), e.g. fidelity:=ideal')
    return ap.parse_args(argv)


def summarize_episodes(results: list[dict[str, Any]], diag: dict[str, str]) -> dict[str, Any]:
    """The demo's numbers: reach success at 1/2/5 cm, reflexes, rejections, server figures."""
    from rl_control.envs.reach_metrics import summarize

    def num(key: str) -> float:
        try:
            return float(diag.get(key, 'nan'))
        except ValueError:
            return float('nan')

    out = summarize(results)
    out.update({
        'success_rate': out['success'],
        'reflexes': sum(int(r.get('reflexes') or 0) for r in results),
        'episodes_with_reflex': sum(1 for r in results if r.get('reflex')),
        'reflex_names': sorted({r['reflex'] for r in results if r.get('reflex')}),
        'rejected': sum(int(r.get('rejected') or 0) for r in results),
        'reset_ignored': sum(int(r.get('reset_ignored') or 0) for r in results),
        'latency_ms_p50': num('latency_ms_p50_total'),
        'latency_ms_p99': num('latency_ms_p99_total'),
        'loop_rate_hz': num('rate_hz'),
        'late_messages': int(num('late_messages')) if diag.get('late_messages') else 0,
        'clamped': int(num('clamped')) if diag.get('clamped') else 0,
    })
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; exit code 0 when the episodes were collected (whatever the success)."""
    args = parse_args(argv)
    from rl_control.ros.paths import config_file, default_bundle, server_params_file

    bundle = os.path.abspath(args.bundle or default_bundle())
    try:
        from rl_control.bundle.io import load_bundle_spec

        spec, _ = load_bundle_spec(bundle)
    except Exception as exc:  # noqa: BLE001 - a clear message instead of a traceback
        print(f'rl-control demo: cannot use bundle {bundle}: {exc}\n'
              '  (train one with `rl-control train`, or pass --bundle PATH)', file=sys.stderr)
        return 2
    goals = config_file(GOALS_FILE)
    params_file = server_params_file(args.robot)
    if goals is None or params_file is None:
        print(f'rl-control demo: config/{GOALS_FILE} or the policy_server parameter file is '
              'not installed', file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = private_env(args.domain_id)
    os.environ.update({k: env[k] for k in ('ROS_DOMAIN_ID', 'ROS_AUTOMATIC_DISCOVERY_RANGE',
                                            'ROS_LOCALHOST_ONLY')})
    period = float(spec.get('control_period_s') or 0.04)
    sim_params: dict[str, Any] = {'robot': args.robot, 'fidelity': 'franka',
                                  'command_type': 'trajectory', 'goals_file': goals,
                                  'seed': args.seed, 'control_period_s': period}
    srv_params: dict[str, Any] = {'bundle': bundle, 'autostart': True,
                                  'command_type': 'trajectory'}
    if args.lockstep:
        sim_params['publish_clock'] = True
        # the steady-clock backstop would take a slow step of a loaded host for a dead /clock
        # and brake; that extra message reaches the sim after it moved on: late (a reflex)
        srv_params.update({'use_sim_time': True, 'trigger': 'state', 'backstop_s': 30.0})
    if args.record:
        srv_params['record_dir'] = os.path.abspath(args.record)
    ns = '/' + args.namespace.strip('/') if args.namespace.strip('/') else ''
    extra = ['-r', f'__ns:={ns}'] if ns else []
    if ns and args.lockstep:
        extra += ['-r', f'/clock:={ns}/clock']
    extra_srv = extra + [x for item in args.server_param for x in ('-p', item)]
    extra_sim = extra + [x for item in args.sim_param for x in ('-p', item)]
    timeout = args.timeout or 60.0 + 6.0 * args.episodes
    say = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    say(f'demo: ROS_DOMAIN_ID={env["ROS_DOMAIN_ID"]}, {args.robot} (franka fidelity, '
        f'trajectory commands), bundle {bundle}, {args.episodes} episodes'
        f'{" (lockstep)" if args.lockstep else ""}{f" under {ns}" if ns else ""}; logs in '
        f'{out}/')

    procs: list[subprocess.Popen] = []
    monitor: _Monitor | None = None
    old_term = signal.signal(signal.SIGTERM, lambda s, f: (_ for _ in ()).throw(
        KeyboardInterrupt()))
    # Ctrl-C must reach the cleanup even when SIGINT was inherited as ignored (background jobs
    # of a non-interactive shell), so the handler is set explicitly.
    old_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    t0 = time.monotonic()
    try:
        procs.append(start_node('rl_control.ros.sim_robot', sim_params, out / 'sim_robot.log',
                                env, extra_sim))
        # the robot's parameter file, then the demo's own parameters
        srv = start_node('rl_control.ros.policy_server', srv_params,
                         out / 'policy_server.log', env, extra_srv, params_file=params_file)
        procs.append(srv)
        monitor = _Monitor(ns)
        if not monitor.spin_until(lambda: monitor.diag.get('active') == 'true', 60.0, procs):
            raise RuntimeError(f'policy_server did not become active; see {srv.log_path}')
        # a fresh episode once the ramp-in is over, so every counted episode is a full one
        monitor.spin_until(lambda: False, 0.6, procs)
        first = monitor.reset_episode()
        say(f'demo: server active after {time.monotonic() - t0:.1f} s; counting episodes '
            f'from {first}')

        def counted() -> list[dict[str, Any]]:
            return [r for r in monitor.results if r['episode'] >= first]

        def report() -> bool:
            n = len(counted())
            if n > report.n:  # type: ignore[attr-defined]
                report.n = n  # type: ignore[attr-defined]
                r = counted()[-1]
                settle = r['settle_time_s']
                say(f"  episode {n}/{args.episodes}: {'held' if r['held'] else 'NOT held'}"
                    f" (final {1000 * r['final_distance']:.1f} mm, "
                    + (f'settled after {settle:.2f} s' if settle is not None else 'never settled')
                    + f", last second path {1000 * r['last_second_path']:.1f} mm)"
                    + (f", REFLEX {r['reflex']}" if r.get('reflex') else '')
                    + (f", {r['rejected']} rejected" if r.get('rejected') else ''))
            return n >= args.episodes

        report.n = 0  # type: ignore[attr-defined]
        if not monitor.spin_until(report, timeout, procs):
            raise RuntimeError(f'only {len(counted())} of {args.episodes} episodes in '
                               f'{timeout:.0f} s')
        monitor.spin_until(lambda: False, 1.1, procs)  # one more diagnostics message
        results = counted()[:args.episodes]
        diag = dict(monitor.diag)
    except KeyboardInterrupt:
        say('demo: interrupted')
        return 130
    except RuntimeError as exc:
        print(f'rl-control demo: {exc}', file=sys.stderr)
        return 1
    finally:
        for p in reversed(procs):  # the server first: it brakes to rest on SIGINT
            stop_process(p)
        if monitor is not None:
            monitor.close()
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGINT, old_int)

    from rl_control.envs.reach_metrics import report_lines
    from rl_control.envs.reach_plot import plot_episodes

    threshold = float(results[0].get('success_distance') or 0.02)
    summary = {**summarize_episodes(results, diag), 'robot': args.robot, 'bundle': bundle,
               'lockstep': bool(args.lockstep), 'namespace': ns,
               'plot': str(out / 'demo_episodes.png'),
               'wall_s': round(time.monotonic() - t0, 2)}
    plot_episodes(results, threshold, period, out / 'demo_episodes.png',
                  title=f'rl-control demo: {args.robot}, {Path(bundle).name}')
    (out / 'demo_results.json').write_text(json.dumps(
        {'summary': summary, 'server_diagnostics': diag, 'episodes': results}, indent=1))
    say(f"demo: {len(results)} goals, {results[0]['samples'] * period:.0f} s episodes:")
    for line in report_lines(summary):
        say(f'  {line}')
    say(f"demo: {summary['reflexes']} reflexes"
        + (f" ({', '.join(summary['reflex_names'])})" if summary['reflex_names'] else '')
        + f", {summary['rejected']} rejected messages; state->command latency p50 "
        f"{summary['latency_ms_p50']:.2f} ms, p99 {summary['latency_ms_p99']:.2f} ms; plot "
        f"{summary['plot']}")
    if args.json:
        print(json.dumps(summary), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
