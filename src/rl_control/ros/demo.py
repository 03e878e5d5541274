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

The demo is its process supervisor (here), its monitor node (ros/demo_monitor.py) and its
report (ros/demo_report.py); the processes are ros/processes.py's.

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
import signal
import subprocess
import sys
import time
from typing import Any

from rl_control.robots.profiles import ROBOT_NAMES
from rl_control.ros.demo_monitor import DemoMonitor
from rl_control.ros.demo_report import episode_line, write_report
from rl_control.ros.processes import private_env, start_node, stop_process

DEFAULT_EPISODES = 10
GOALS_FILE = 'reach_goals.yaml'
TASKS = {  # --task: the default bundle, the episode file, the episode length [s]
    'reach': ('panda_reach_sac', GOALS_FILE, 4.0),
    'pick_place': ('panda_pick_place_sac', 'pick_episodes.yaml', 6.0),
}
"""`--task pick_place`: sim_robot plays the pick-and-place cell (hand, table, cube; the cube
and goal of each episode from config/pick_episodes.yaml, the benchmark's) and publishes the
finger joints on the server's `joint_states`; the report is the task's (envs/pick_metrics.py)."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options of `rl-control demo`."""
    ap = argparse.ArgumentParser(prog='rl-control demo', description=__doc__.split('\n')[0])
    ap.add_argument('--task', choices=sorted(TASKS), default='reach',
                    help='reach (default) or pick_place (the hand, a cube, config/'
                    'pick_episodes.yaml)')
    ap.add_argument('--bundle', default='', help='policy bundle folder (default: the installed '
                    'models/panda_reach_sac, or models/panda_pick_place_sac with --task '
                    'pick_place)')
    ap.add_argument('--robot', choices=sorted(ROBOT_NAMES), default='panda',
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


def node_params(args: argparse.Namespace, bundle: str, goals: str, period: float
                ) -> tuple[dict[str, Any], dict[str, Any], list[str], list[str]]:
    """sim_robot's and policy_server's parameters, and their extra ROS arguments."""
    sim: dict[str, Any] = {'robot': args.robot, 'fidelity': 'franka',
                           'command_type': 'trajectory', 'goals_file': goals, 'seed': args.seed,
                           'control_period_s': period, 'task': args.task,
                           'episode_s': TASKS[args.task][2]}
    if args.task != 'reach':  # the fingers where the server listens (docs/pick_place.md)
        sim['gripper_state_topic'] = 'joint_states'
    srv: dict[str, Any] = {'bundle': bundle, 'autostart': True, 'command_type': 'trajectory'}
    if args.lockstep:
        sim['publish_clock'] = True
        # the steady-clock backstop would take a slow step of a loaded host for a dead /clock
        # and brake; that extra message reaches the sim after it moved on: late (a reflex)
        srv.update({'use_sim_time': True, 'trigger': 'state', 'backstop_s': 30.0})
    if args.record:
        srv['record_dir'] = os.path.abspath(args.record)
    ns = namespace(args)
    extra = ['-r', f'__ns:={ns}'] if ns else []
    if ns and args.lockstep:
        extra += ['-r', f'/clock:={ns}/clock']
    return (sim, srv, extra + [x for item in args.sim_param for x in ('-p', item)],
            extra + [x for item in args.server_param for x in ('-p', item)])


def namespace(args: argparse.Namespace) -> str:
    """`--namespace` as an absolute namespace ('' for none)."""
    return '/' + args.namespace.strip('/') if args.namespace.strip('/') else ''


def supervise(args: argparse.Namespace, bundle: str, params_file: str, goals: str,
              period: float, out: Path, env: dict[str, str], say: Any
              ) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Start both nodes, count the episodes, stop both; (results, server diagnostics)."""
    sim, srv, extra_sim, extra_srv = node_params(args, bundle, goals, period)
    timeout = args.timeout or 60.0 + 1.5 * TASKS[args.task][2] * args.episodes
    procs: list[subprocess.Popen] = []
    monitor: DemoMonitor | None = None
    t0 = time.monotonic()
    try:
        procs.append(start_node('rl_control.ros.sim_robot', sim, out / 'sim_robot.log', env,
                                extra_sim))
        # the robot's parameter file, then the demo's own parameters
        server = start_node('rl_control.ros.policy_server', srv, out / 'policy_server.log',
                            env, extra_srv, params_file=params_file)
        procs.append(server)
        monitor = DemoMonitor(namespace(args))
        if not monitor.spin_until(lambda: monitor.diag.get('active') == 'true', 60.0, procs):
            raise RuntimeError(f'policy_server did not become active; see {server.log_path}')
        # a fresh episode once the ramp-in is over, so every counted episode is a full one
        monitor.spin_until(lambda: False, 0.6, procs)
        first = monitor.reset_episode()
        say(f'demo: server active after {time.monotonic() - t0:.1f} s; counting episodes '
            f'from {first}')
        counted: list[dict[str, Any]] = []

        def collected() -> bool:
            while monitor.results:
                r = monitor.results.pop(0)
                if r['episode'] >= first:
                    counted.append(r)
                    say(episode_line(len(counted), args.episodes, r, args.task))
            return len(counted) >= args.episodes

        if not monitor.spin_until(collected, timeout, procs):
            raise RuntimeError(f'only {len(counted)} of {args.episodes} episodes in '
                               f'{timeout:.0f} s')
        monitor.spin_until(lambda: False, 1.1, procs)  # one more diagnostics message
        return counted[:args.episodes], dict(monitor.diag)
    finally:
        for p in reversed(procs):  # the server first: it brakes to rest on SIGINT
            stop_process(p)
        if monitor is not None:
            monitor.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; exit code 0 when the episodes were collected (whatever the success)."""
    args = parse_args(argv)
    from rl_control.bundle.io import load_bundle_spec
    from rl_control.ros.paths import config_file, default_bundle, server_params_file

    default, goals_name, _ = TASKS[args.task]
    bundle = os.path.abspath(args.bundle or default_bundle(default))
    try:
        spec, _ = load_bundle_spec(bundle)
    except Exception as exc:  # noqa: BLE001 - a clear message instead of a traceback
        print(f'rl-control demo: cannot use bundle {bundle}: {exc}\n'
              '  (train one with `rl-control train`, or pass --bundle PATH)', file=sys.stderr)
        return 2
    task = spec.get('task_name') or 'reach'
    if task != args.task:
        print(f'rl-control demo: bundle {bundle} is for task {task!r}, not --task {args.task}',
              file=sys.stderr)
        return 2
    goals = config_file(goals_name)
    params_file = server_params_file(args.robot)
    if goals is None or params_file is None:
        print(f'rl-control demo: config/{goals_name} or the policy_server parameter file is '
              'not installed', file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = private_env(args.domain_id)
    os.environ.update({k: env[k] for k in ('ROS_DOMAIN_ID', 'ROS_AUTOMATIC_DISCOVERY_RANGE',
                                            'ROS_LOCALHOST_ONLY')})
    period = float(spec.get('control_period_s') or 0.04)
    ns = namespace(args)
    say = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    say(f'demo: ROS_DOMAIN_ID={env["ROS_DOMAIN_ID"]}, {args.robot} (franka fidelity, '
        f'trajectory commands), bundle {bundle}, {args.episodes} episodes'
        f'{" (lockstep)" if args.lockstep else ""}{f" under {ns}" if ns else ""}; logs in '
        f'{out}/')
    old_term = signal.signal(signal.SIGTERM, lambda s, f: (_ for _ in ()).throw(
        KeyboardInterrupt()))
    # Ctrl-C must reach the cleanup even when SIGINT was inherited as ignored (background jobs
    # of a non-interactive shell), so the handler is set explicitly.
    old_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    t0 = time.monotonic()
    try:
        results, diag = supervise(args, bundle, params_file, goals, period, out, env, say)
    except KeyboardInterrupt:
        say('demo: interrupted')
        return 130
    except RuntimeError as exc:
        print(f'rl-control demo: {exc}', file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGINT, old_int)
    summary = write_report(results, diag, out, period,
                           f'rl-control demo: {args.robot}, {Path(bundle).name}', say,
                           robot=args.robot, bundle=bundle, lockstep=bool(args.lockstep),
                           task=args.task,
                           namespace=ns, wall_s=round(time.monotonic() - t0, 2))
    if args.json:
        print(json.dumps(summary), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
