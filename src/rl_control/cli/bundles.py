"""`rl-control bench-reach | bench-pick | gap | export | import-sb3`: done with a bundle."""
from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path
import shlex
import sys

from rl_control.cli.common import EXIT_USAGE, fail, flush_c_stdio


def cmd_bench_reach(args: argparse.Namespace) -> int:
    """`rl-control bench-reach`: the standard reach benchmark of a bundle."""
    from rl_control.bundle import BundleError, load_bundle
    from rl_control.envs import reach_bench
    from rl_control.envs.reach_metrics import load_goals, report_lines

    try:
        spec, policy = load_bundle(args.bundle)
        goals = load_goals(args.goals or reach_bench.default_goals_file())
    except (BundleError, OSError, ValueError) as exc:
        return fail(str(exc), EXIT_USAGE)
    if args.episodes:
        goals = goals[:args.episodes]
    robot = args.robot or spec.get('robot') or 'panda'
    say = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    say(f'bench-reach: {args.bundle} on the {robot} profile ({args.engine}, '
        f'{"randomized" if args.randomized else "nominal"}), {len(goals)} goals')
    if args.engine == 'ros':
        try:  # by name, as the node commands: ros/ sits above the CLI
            ros_bench = importlib.import_module('rl_control.ros.reach_bench')
        except ModuleNotFoundError as exc:
            return fail(f'--engine ros needs ROS 2 Python packages ({exc.name} not found)', 1)
        try:
            out = ros_bench.run_over_ros(args.bundle, spec, robot, goals, args.randomized, say,
                                         realtime=args.realtime, state_topic=args.state_topic)
        except (ValueError, RuntimeError) as exc:
            return fail(str(exc), 1)
    else:
        def progress(i: int, n: int, r: dict) -> None:
            if i % 10 == 0 or i == n:
                say(f'  {i}/{n} episodes')

        try:
            out = reach_bench.run_in_process(
                spec, policy, args.engine, robot, args.randomized, goals, progress=progress,
                success_distance=float(spec.get('success_distance') or 0.02))
        except ValueError as exc:
            return fail(str(exc), EXIT_USAGE)
    s = out['summary']
    s['bundle'] = str(args.bundle)
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1))
    if args.plot:
        from rl_control.envs.reach_plot import plot_episodes

        plot_episodes(out['episodes'], float(s.get('success_distance') or 0.02),
                      float(spec.get('control_period_s') or 0.04), args.plot,
                      title=f'{args.bundle}: {args.engine}, {robot}')
    for line in report_lines(s):
        say(line)
    if args.json:
        flush_c_stdio()
        print(json.dumps(s), flush=True)
    return 0


def cmd_bench_pick(args: argparse.Namespace) -> int:
    """`rl-control bench-pick`: the pick-and-place benchmark (envs/pick_bench.py)."""
    from rl_control.bundle import BundleError, load_bundle
    from rl_control.envs import pick_bench

    spec = policy = None
    try:
        if args.policy != pick_bench.SCRIPTED:
            spec, policy = load_bundle(args.policy)
        cubes, goals = pick_bench.load_episodes(args.episodes_file
                                                or pick_bench.default_episodes_file())
    except BundleError as exc:
        return fail(f"bench-pick {args.policy}: {exc} (POLICY: a bundle folder or 'scripted')",
                    EXIT_USAGE)
    except (OSError, ValueError) as exc:
        return fail(f'bench-pick {args.policy}: {exc}', EXIT_USAGE)
    if args.episodes:
        cubes, goals = cubes[:args.episodes], goals[:args.episodes]
    say = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    say(f'bench-pick: {args.policy} ({args.engine}, '
        f'{"randomized" if args.randomized else "nominal"}), {len(cubes)} episodes')

    def progress(i: int, n: int, r: dict) -> None:
        if i % 10 == 0 or i == n:
            say(f'  {i}/{n} episodes')

    try:
        if args.engine == 'ros':
            if args.randomized:
                raise ValueError('--engine ros runs nominal dynamics: sim_robot has no '
                                 'randomization')
            try:  # by name, as bench-reach does: ros/ sits above the CLI
                ros_bench = importlib.import_module('rl_control.ros.reach_bench')
            except ModuleNotFoundError as exc:
                return fail(f'--engine ros needs ROS 2 Python packages ({exc.name} not found)',
                            1)
            out = ros_bench.run_pick_over_ros(args.policy, spec, cubes, goals, say,
                                              args.realtime)
        else:
            out = pick_bench.run(spec, policy, cubes, goals, args.randomized, args.engine,
                                 progress=progress)
    except RuntimeError as exc:
        return fail(f'bench-pick {args.policy}: {exc}', 1)
    except ValueError as exc:
        return fail(f'bench-pick {args.policy}: {exc}', EXIT_USAGE)
    s = out['summary']
    s['policy'] = str(args.policy)
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1))
    if args.plot:
        pick_bench.plot(out['episodes'], s['success_distance'], 0.04, args.plot,
                        title=f'bench-pick {args.policy}: {args.engine}, {s["robot"]}, '
                              f'{"randomized" if args.randomized else "nominal"}')
    for line in pick_bench.report_lines(s):
        say(line)
    if args.json:
        flush_c_stdio()
        print(json.dumps(s), flush=True)
    return 0


def cmd_gap(args: argparse.Namespace) -> int:
    """`rl-control gap`: a recording (or PyBullet) against the MuJoCo twin."""
    from rl_control.envs import gap

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        if args.sim2sim:
            from rl_control.bundle import BundleError, load_bundle
            from rl_control.envs.reach_bench import default_goals_file
            from rl_control.envs.reach_metrics import load_goals

            try:
                spec, policy = load_bundle(args.source)
            except BundleError as exc:
                return fail(str(exc), EXIT_USAGE)
            goals = load_goals(default_goals_file())[:args.episodes]
            robot = args.robot or spec.get('robot') or 'panda'
            trace, extra = gap.sim_to_sim(spec, policy, goals, robot)
            title = f'PyBullet vs MuJoCo: {args.source}'
        else:
            trace, extra = gap.from_recording(args.source, args.robot), {}
            title = f'recording vs MuJoCo twin: {args.source}'
    except (OSError, ValueError) as exc:
        return fail(str(exc), EXIT_USAGE)
    report = {**trace.report(args.rms_threshold), **extra}
    if 'success_gap' in report:
        report['ok'] = bool(report['ok'] and all(abs(v) <= args.success_gap
                                                 for v in report['success_gap'].values()))
        report['success_gap_threshold'] = args.success_gap
    png = gap.plot(trace, out / 'gap.png', title)
    (out / 'gap.json').write_text(json.dumps(report, indent=1))
    print(f'thresholds: per-joint RMS <= {args.rms_threshold} rad'
          + (f', success gap <= {args.success_gap}' if args.sim2sim else ''))
    for name, rms in zip(report['joints'], report['rms_rad'], strict=True):
        print(f'  {name:14s} RMS {rms:.5f} rad' + ('  PAST THRESHOLD' if rms > args.rms_threshold
                                                   else ''))
    print(f'  latency (recording behind twin): {report["latency_s"]} s; twin reflexes: '
          f'{report["twin_reflexes"]}')
    if 'success_gap' in report:
        print(f'  success gap (MuJoCo - PyBullet): {report["success_gap"]}')
    for note in report['notes']:
        print(f'  note: {note}')
    print(f'{"OK" if report["ok"] else "PAST THRESHOLD"}: report {out / "gap.json"}, plot {png}')
    if args.json:
        print(json.dumps(report), flush=True)
    return 0 if report['ok'] else 1


def cmd_export(args: argparse.Namespace) -> int:
    """`rl-control export`: the actor in another format (ONNX)."""
    from rl_control.bundle.io import BundleError
    from rl_control.bundle.onnx import export_onnx

    try:
        done = export_onnx(args.bundle, args.out, args.opset)
    except BundleError as exc:
        return fail(str(exc), EXIT_USAGE)
    where = 'recorded in policy.yaml (exports.onnx)' if done.recorded else \
        'standalone copy: the bundle is unchanged'
    check = 'not checked: onnxruntime is not installed' if done.max_error is None else \
        f'onnxruntime = numpy to {done.max_error:.1e}'
    print(f'{done.path}: ONNX opset {args.opset}, {where}; {check}')
    return 0


def cmd_import_sb3(args: argparse.Namespace, argv: list[str]) -> int:
    """`rl-control import-sb3`: a Stable-Baselines3 model becomes a bundle."""
    from rl_control.interop.sb3 import Sb3ImportError, import_sb3

    command = 'rl-control ' + ' '.join(shlex.quote(a) for a in argv)
    try:
        result = import_sb3(args.model, args.env, args.out, vecnormalize=args.vecnormalize,
                            command=command, trust_pickle=args.trust_pickle)
    except Sb3ImportError as exc:
        return fail(str(exc), EXIT_USAGE)
    for note in result.notes:
        print(f'note: {note}', file=sys.stderr)
    print(f'{result.bundle}: {result.algorithm} actor for {args.env} '
          f'(matches SB3 predict to {result.max_error:.1e} on {result.checked} observations)')
    return 0
