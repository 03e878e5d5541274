"""`rl-control`: train, evaluate, and bring up the ROS node graph without `ros2 launch`.

Errors a person can fix (a bad config, a broken bundle, ROS not installed) are printed as one
line on stderr with exit status 2 (usage/config) or 1 (runtime), never as a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
from pathlib import Path
import re
import shlex
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rl_control.train.config import TrainConfig

EXIT_USAGE = 2

_ROS_COMMANDS = {
    'demo': ('rl_control.ros.demo', 'sim robot + policy server over DDS, shipped bundle'),
    'sim': ('rl_control.ros.sim_robot', 'the Franka-faithful simulated Panda/FR3 node'),
    'serve': ('rl_control.ros.policy_server', 'the policy server node for a bundle'),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (separate so tests and docs can inspect it)."""
    parser = argparse.ArgumentParser(
        prog='rl-control',
        description='Train actor-critic policies (SAC, TD3, DDPG, A2C, PPO) in simulation, '
                    'evaluate policy bundles, and serve them as ROS 2 nodes.',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='examples:\n'
               '  rl-control train --config config/pendulum_sac.yaml --out runs/pendulum\n'
               '  rl-control train --config config/pendulum_sac.yaml --set algo_kwargs.lr=3e-4\n'
               '  rl-control train --config config/pendulum_sac.yaml --out runs/pendulum '
               '--resume\n'
               '  rl-control train --config config/pendulum_sac.yaml --seeds 0 1 2 3 4 --json\n'
               '  rl-control sweep --config config/pendulum_sac.yaml --space SPACE.yaml '
               '--trials 16\n'
               '  rl-control eval runs/pendulum/bundle --episodes 20 --json\n'
               '  rl-control demo')
    sub = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')

    p = sub.add_parser('train', help='train from a YAML config (task x algorithm)',
                       description='Train per a config file; writes a run directory with '
                                   'progress.csv, TensorBoard logs (tb/), checkpoints/, the '
                                   'policy bundle (bundle/) and learning_curve.png.')
    p.add_argument('--config', required=True, metavar='PATH',
                   help='YAML config, e.g. config/pendulum_sac.yaml')
    p.add_argument('--set', dest='overrides', action='append', default=[],
                   metavar='KEY=VALUE',
                   help='override a config value with a dotted key, parsed as YAML '
                        '(repeatable), e.g. --set total_steps=5000 --set algo_kwargs.lr=1e-3')
    p.add_argument('--out', metavar='DIR',
                   help='run directory (default: runs/<config name>)')
    p.add_argument('--resume', action='store_true',
                   help='continue from <out>/checkpoints/latest (same result as an '
                        'uninterrupted run)')
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    p.add_argument('--check', action='store_true',
                   help='validate the config (and env id) and exit without training')
    p.add_argument('--seeds', type=int, nargs='+', metavar='SEED',
                   help='train these seeds in parallel on Ray (<out>/seed_<n>/), then report '
                        'the IQM and bootstrap 95%% CI of the final eval return (and success '
                        "rate); needs the 'sweep' extra")
    p.add_argument('--address', metavar='ADDR',
                   help='with --seeds: the Ray cluster to use (default: a local Ray on all '
                        'cores)')
    p.add_argument('--json', action='store_true',
                   help='with --seeds: print the report as one JSON object on the last '
                        'stdout line')

    p = sub.add_parser('sweep', help='hyperparameter sweep on Ray Tune (Optuna + ASHA)',
                       description='Search a config\'s hyperparameters: Optuna proposes, ASHA '
                                   'stops poor trials early, each trial is a run directory '
                                   'under --out. Metric: time to a confirmed target_return when '
                                   'the config has one, else the final eval return. Writes '
                                   'results.csv, sweep.png and best_config.yaml.',
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog='SPACE file (dotted config keys, as for --set):\n'
                              '  algo_kwargs.lr: {type: loguniform, low: 3.0e-4, high: 3.0e-3}\n'
                              '  algo_kwargs.tau: {type: uniform, low: 0.01, high: 0.1}\n'
                              '  algo_kwargs.learning_starts: {type: int, low: 200, high: 1000}\n'
                              '  algo_kwargs.hidden_sizes: {type: choice, values: [[64, 64], '
                              '[128, 128]]}')
    p.add_argument('--config', required=True, metavar='PATH', help='base YAML config')
    p.add_argument('--space', required=True, metavar='SPACE.yaml', help='the search space')
    p.add_argument('--trials', type=int, default=8, help='trials to run (default 8)')
    p.add_argument('--seeds-per-trial', type=int, default=1, metavar='K',
                   help="each trial trains the config's seed .. seed+K-1 (default 1)")
    p.add_argument('--address', metavar='ADDR',
                   help='Ray cluster address (default: a local Ray on all cores)')
    p.add_argument('--out', metavar='DIR', help='output folder (default runs/sweep_<config>)')
    p.add_argument('--set', dest='overrides', action='append', default=[],
                   metavar='KEY=VALUE', help='override a base config value (repeatable)')
    p.add_argument('--budget-s', type=float, default=600.0, metavar='S',
                   help='with a target_return: the wall-time budget of one seed; unsolved '
                        'seeds count at it (default 600)')
    p.add_argument('--no-early-stop', action='store_true', help='no ASHA: every trial runs out')
    p.add_argument('--no-base', action='store_true',
                   help="do not try the base config's own values first")
    p.add_argument('--search-seed', type=int, default=0, help="Optuna's seed (default 0)")
    p.add_argument('--cpus', type=int, metavar='N',
                   help='CPUs of the local Ray (default: all cores)')

    p = sub.add_parser('eval', help='evaluate a policy bundle (deterministic actions)',
                       description='Run a bundle for N episodes on its task (or --env) and '
                                   'report mean/std return and success rate.')
    p.add_argument('bundle', metavar='BUNDLE', help='bundle folder (with policy.yaml)')
    p.add_argument('--episodes', type=int, default=10, help='episodes (default 10)')
    p.add_argument('--env', metavar='ENV_ID', help="env id (default: the bundle's task)")
    p.add_argument('--seed', type=int, default=0,
                   help='episode i starts from seed SEED+i (default 0)')
    p.add_argument('--json', action='store_true',
                   help='print the result as one JSON object on the last stdout line')
    p.add_argument('--record', action='store_true',
                   help="write the result (and this command) into the bundle's policy.yaml "
                        'under `evaluations`')

    p = sub.add_parser('bench-reach', help='the standard Franka reach benchmark of a bundle',
                       description='100 fixed goals (config/reach_goals.yaml), 4 s each from '
                                   'rest at home, through the serving command path. Success = '
                                   'held: within the distance and at rest (fastest joint < 0.02 '
                                   'rad/s, end effector < 5 mm/s) over the last second; at 1, '
                                   "2 and 5 cm and the bundle's success distance. Also: time to "
                                   'settle, final and last-second distance, last-second path, '
                                   'path ratio, final joint speed, reached at some moment, '
                                   'reflexes.')
    p.add_argument('bundle', metavar='BUNDLE', help='bundle folder or run directory')
    p.add_argument('--engine', choices=('mujoco', 'pybullet', 'ros'), default='mujoco',
                   help='mujoco / pybullet: in process; ros: sim_robot + policy_server over '
                        'DDS (default mujoco)')
    p.add_argument('--robot', choices=('panda', 'fr3'), help="default: the bundle's robot")
    p.add_argument('--randomized', action='store_true',
                   help="the bundle's domain randomization (default: nominal dynamics)")
    p.add_argument('--goals', metavar='FILE', help='goal set (default config/reach_goals.yaml)')
    p.add_argument('--episodes', type=int, default=0, help='first N goals only (0: all)')
    p.add_argument('--json', action='store_true',
                   help='print the summary as one JSON object on the last stdout line')
    p.add_argument('--out', metavar='FILE', help='also write the summary and episodes (JSON)')
    p.add_argument('--plot', metavar='PNG',
                   help='also plot distance and joint speed over time, and the settle times')
    p.add_argument('--realtime', action='store_true',
                   help='ros engine: on the wall clock (default: lockstep on /clock)')
    _add_export_parsers(sub)

    p = sub.add_parser('gap', help='sim-to-real gap: a recording (or PyBullet) vs the MuJoCo '
                       'twin', description='Replays a recording (policy_server record_dir, '
                       'or a rosbag2 bag) through the MuJoCo twin, or with --sim2sim drives a '
                       'bundle on PyBullet and MuJoCo; reports per-joint tracking error, the '
                       'command-to-motion latency, a plot, and exits 1 past the thresholds.')
    p.add_argument('source', metavar='BAG_OR_BUNDLE', help='recording folder / rosbag2 bag, or '
                   'a bundle with --sim2sim')
    p.add_argument('--sim2sim', action='store_true', help='SOURCE is a bundle: PyBullet vs '
                   'MuJoCo')
    p.add_argument('--robot', choices=('panda', 'fr3'), help='default: from the joint names '
                   "(recording) or the bundle's robot")
    p.add_argument('--episodes', type=int, default=10, help='--sim2sim: goals (default 10)')
    p.add_argument('--out', metavar='DIR', default='runs/gap', help='report folder')
    p.add_argument('--rms-threshold', type=float, default=0.02,
                   help='per-joint RMS tracking error allowed [rad] (default 0.02)')
    p.add_argument('--success-gap', type=float, default=0.05,
                   help='--sim2sim: success difference allowed (default 0.05 = 5 points)')
    p.add_argument('--json', action='store_true', help='last stdout line: the report as JSON')

    for name, (_module, text) in _ROS_COMMANDS.items():
        p = sub.add_parser(name, help=f'{text} (needs ROS 2 Python packages)',
                           description=f'Runs {text}; arguments after the command go to it '
                                       '(try --help there).', add_help=False)
        p.add_argument('args', nargs=argparse.REMAINDER, help='arguments for the node')
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `rl-control` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in _ROS_COMMANDS:
        # Everything after the command belongs to the node (including --ros-args and --help);
        # argparse's REMAINDER cannot pass leading options through a subparser.
        return _ros(argv[0], argv[1:])
    args = build_parser().parse_args(argv)
    if args.command == 'train':
        return _train(args, argv)
    if args.command == 'sweep':
        return _sweep(args, argv)
    if args.command == 'eval':
        return _eval(args)
    if args.command == 'bench-reach':
        return _bench_reach(args)
    if args.command == 'gap':
        return _gap(args)
    if args.command == 'export':
        return _export(args)
    if args.command == 'import-sb3':
        return _import_sb3(args, argv)
    return _ros(args.command, args.args)


def _fail(message: str, status: int) -> int:
    print(f'rl-control: error: {message}', file=sys.stderr)
    return status


def _train(args: argparse.Namespace, argv: list[str]) -> int:
    from rl_control.train.config import ConfigError, load_config

    try:
        cfg = load_config(args.config, args.overrides)
    except ConfigError as exc:
        return _fail(str(exc), EXIT_USAGE)
    if args.check:
        print(f'{args.config}: OK ({cfg.algo} on {cfg.env}, {cfg.total_steps} steps)')
        return 0
    out = Path(args.out) if args.out else Path('runs') / Path(args.config).stem
    if args.seeds is not None:
        return _train_seeds(args, argv, cfg, out)
    from rl_control.train.learn import NonFiniteError, ResumeError, RunLockError, train

    command = 'rl-control ' + ' '.join(shlex.quote(a) for a in argv)
    print(f'training {cfg.algo} on {cfg.env} for {cfg.total_steps} steps -> {out}', flush=True)
    try:
        result = train(cfg, out, resume=args.resume, progress=not args.no_progress,
                       command=command)
    except (ResumeError, RunLockError, NonFiniteError) as exc:
        return _fail(str(exc), 1 if isinstance(exc, NonFiniteError) else EXIT_USAGE)
    if result.signal:  # one line, exit 0: the run is kept
        print(f'stopped by {result.signal} at step {result.steps}: bundle {result.bundle_dir}, '
              f'checkpoint {result.checkpoint} (continue with --resume)', flush=True)
        return 0
    last = result.last_eval or {}
    print(f'done: {result.steps} steps in {result.wall_s:.1f} s; last eval return '
          f'{last.get("eval_mean_return", float("nan")):.1f} ± '
          f'{last.get("eval_std_return", float("nan")):.1f}'
          + (' (target reached)' if result.reached_target else ''))
    print(f'  bundle:      {result.bundle_dir}')
    print(f'  progress:    {out / "progress.csv"}')
    if result.curve_png:
        print(f'  curve:       {result.curve_png}')
    if cfg.tensorboard:
        print(f'  tensorboard: tensorboard --logdir {out / "tb"}')
    print(f'  checkpoints: {out / "checkpoints"}')
    return 0


def _train_seeds(args: argparse.Namespace, argv: list[str], cfg: TrainConfig, out: Path) -> int:
    from rl_control.train.cluster import MissingExtra
    from rl_control.train.seeds import format_report, run_seeds

    if args.resume:
        return _fail('--resume and --seeds do not go together (resume one seed\'s run '
                     'directory with --out <out>/seed_<n> --set seed=<n> --resume)', EXIT_USAGE)
    command = 'rl-control ' + ' '.join(shlex.quote(a) for a in argv)
    say = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    say(f'training {cfg.algo} on {cfg.env} for {cfg.total_steps} steps, seeds '
        f'{" ".join(map(str, args.seeds))} on Ray -> {out}/seed_<n>')
    try:
        report = run_seeds(cfg, args.seeds, out, address=args.address, command=command,
                           say=say)
    except MissingExtra as exc:
        return _fail(str(exc), 1)
    except ValueError as exc:
        return _fail(str(exc), EXIT_USAGE)
    say(format_report(report))
    if args.json:
        _flush_c_stdio()
        print(json.dumps(report), flush=True)
    return 1 if report['failed'] else 0


def _sweep(args: argparse.Namespace, argv: list[str]) -> int:
    from rl_control.train.cluster import MissingExtra
    from rl_control.train.config import ConfigError
    from rl_control.train.sweep import run_sweep
    from rl_control.train.sweep_report import format_table

    out = Path(args.out) if args.out else Path('runs') / f'sweep_{Path(args.config).stem}'
    command = 'rl-control ' + ' '.join(shlex.quote(a) for a in argv)
    try:
        result = run_sweep(args.config, args.space, args.trials, out,
                           seeds_per_trial=args.seeds_per_trial, address=args.address,
                           overrides=args.overrides, budget_s=args.budget_s,
                           include_base=not args.no_base, early_stop=not args.no_early_stop,
                           search_seed=args.search_seed, cpus=args.cpus, command=command)
    except ConfigError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except MissingExtra as exc:
        return _fail(str(exc), 1)
    print(format_table(result))
    print(f'  results:     {result.results_csv}')
    print(f'  plot:        {result.plot}')
    if result.best is None:
        return _fail('no trial finished without an error: no best config', 1)
    print(f'  best:        trial {result.best["trial"]}, metric {result.best["metric"]:.4g} '
          f'-> {result.best_config}')
    return 0


def _eval(args: argparse.Namespace) -> int:
    from rl_control.bundle.io import BundleError, load_bundle

    if args.episodes <= 0:
        return _fail('--episodes must be > 0', EXIT_USAGE)
    try:
        spec, policy = load_bundle(args.bundle)
    except BundleError as exc:
        return _fail(str(exc), EXIT_USAGE)
    task = spec.get('task') or {}
    env_id = args.env or task['env_id']
    from rl_control.train.config import ConfigError, check_env_id
    from rl_control.train.evaluation import evaluate

    try:
        check_env_id(env_id, '--env')
    except ConfigError as exc:
        return _fail(str(exc), EXIT_USAGE)
    env_kwargs = task.get('env_kwargs') or {}
    try:
        result = evaluate(policy.act, env_id, args.episodes, seed=args.seed,
                          env_kwargs=env_kwargs, time_limit=task.get('time_limit'))
    except TypeError as exc:
        bad = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
        if bad is None or env_id == task.get('env_id'):
            raise
        return _fail(f"--env {env_id} does not take the option {bad.group(1)!r} of the "
                     f"bundle's env {task.get('env_id')} (env_kwargs {env_kwargs}); evaluate "
                     f'on an env that takes them, or on {task.get("env_id")}', EXIT_USAGE)
    summary = result.to_dict()
    summary['env_id'] = env_id
    summary['bundle'] = str(args.bundle)
    if args.record:
        from rl_control.bundle.io import record_evaluation

        record_evaluation(args.bundle, summary,
                          f'rl-control eval {args.bundle} --env {env_id} '
                          f'--episodes {args.episodes} --seed {args.seed}')
    if args.json:
        _flush_c_stdio()  # pybullet printf()s on stdout; the JSON must come out last
        print(json.dumps(summary), flush=True)
    else:
        sr = summary['success_rate']
        print(f'{env_id}: {summary["episodes"]} episodes, return {summary["mean_return"]:.2f} '
              f'± {summary["std_return"]:.2f}'
              + ('' if sr is None else f', success rate {sr:.2f}'))
    return 0


def _bench_reach(args: argparse.Namespace) -> int:
    from rl_control.bundle import BundleError, load_bundle
    from rl_control.envs import reach_bench
    from rl_control.envs.reach_metrics import load_goals, report_lines

    try:
        spec, policy = load_bundle(args.bundle)
        goals = load_goals(args.goals or reach_bench.default_goals_file())
    except (BundleError, OSError, ValueError) as exc:
        return _fail(str(exc), EXIT_USAGE)
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
            return _fail(f'--engine ros needs ROS 2 Python packages ({exc.name} not found)', 1)
        try:
            out = ros_bench.run_over_ros(args.bundle, spec, robot, goals, args.randomized, say,
                                         realtime=args.realtime)
        except (ValueError, RuntimeError) as exc:
            return _fail(str(exc), 1)
    else:
        def progress(i: int, n: int, r: dict) -> None:
            if i % 10 == 0 or i == n:
                say(f'  {i}/{n} episodes')

        try:
            out = reach_bench.run_in_process(
                spec, policy, args.engine, robot, args.randomized, goals, progress=progress,
                success_distance=float(spec.get('success_distance') or 0.02))
        except ValueError as exc:
            return _fail(str(exc), EXIT_USAGE)
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
        _flush_c_stdio()
        print(json.dumps(s), flush=True)
    return 0


def _add_export_parsers(sub: argparse._SubParsersAction) -> None:
    """`export` and `import-sb3`: the deploy formats (README, "Deploy formats")."""
    p = sub.add_parser('export', help="write a bundle's actor in another format (ONNX)",
                       description='Write the actor with its observation normalization as an '
                                   'ONNX graph (input: the raw contract observation, float32, '
                                   'any batch size; output: the action in [-1, 1]). Inside the '
                                   'bundle it is recorded in policy.yaml (exports.onnx), so '
                                   'the server can run it with `-p backend:=onnx`.')
    p.add_argument('bundle', metavar='BUNDLE', help='bundle folder (with policy.yaml)')
    p.add_argument('--format', required=True, choices=('onnx',), help='target format')
    p.add_argument('--out', metavar='FILE',
                   help='output file (default: BUNDLE/actor.onnx); a file outside the bundle '
                        'is a standalone copy and leaves policy.yaml as it is')
    p.add_argument('--opset', type=int, default=17, help='ONNX opset (default 17)')

    p = sub.add_parser('import-sb3', help='turn a Stable-Baselines3 model into a bundle',
                       description='Convert a Stable-Baselines3 SAC, TD3, DDPG or PPO model '
                                   "(MLP policy) trained on ENV_ID into a policy bundle: the "
                                   "env's contract, the deterministic actor, and the "
                                   'observation normalization of a VecNormalize file. The '
                                   "bundle's actions are checked against SB3's "
                                   'predict(deterministic=True) before it is written. Nothing '
                                   'in the files is executed (docs/deploy_formats.md; the '
                                   'bundle holds no pickle).')
    p.add_argument('model', metavar='MODEL.zip', help='a model saved by SB3 `model.save`')
    p.add_argument('--env', required=True, metavar='ENV_ID',
                   help='the env id it was trained on, e.g. rl_control/PandaJointReach-v0')
    p.add_argument('--vecnormalize', metavar='FILE',
                   help='the VecNormalize statistics it was trained with (`vec_env.save`)')
    p.add_argument('--trust-pickle', action='store_true', help='unpickle a VecNormalize file '
                   'the safe reader refuses (it can execute code: trusted files only)')
    p.add_argument('--out', required=True, metavar='BUNDLE', help='bundle folder to write')


def _export(args: argparse.Namespace) -> int:
    from rl_control.bundle.io import BundleError
    from rl_control.bundle.onnx import export_onnx

    try:
        done = export_onnx(args.bundle, args.out, args.opset)
    except BundleError as exc:
        return _fail(str(exc), EXIT_USAGE)
    where = 'recorded in policy.yaml (exports.onnx)' if done.recorded else \
        'standalone copy: the bundle is unchanged'
    check = 'not checked: onnxruntime is not installed' if done.max_error is None else \
        f'onnxruntime = numpy to {done.max_error:.1e}'
    print(f'{done.path}: ONNX opset {args.opset}, {where}; {check}')
    return 0


def _import_sb3(args: argparse.Namespace, argv: list[str]) -> int:
    from rl_control.interop.sb3 import Sb3ImportError, import_sb3

    command = 'rl-control ' + ' '.join(shlex.quote(a) for a in argv)
    try:
        result = import_sb3(args.model, args.env, args.out, vecnormalize=args.vecnormalize,
                            command=command, trust_pickle=args.trust_pickle)
    except Sb3ImportError as exc:
        return _fail(str(exc), EXIT_USAGE)
    for note in result.notes:
        print(f'note: {note}', file=sys.stderr)
    print(f'{result.bundle}: {result.algorithm} actor for {args.env} '
          f'(matches SB3 predict to {result.max_error:.1e} on {result.checked} observations)')
    return 0


def _gap(args: argparse.Namespace) -> int:
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
                return _fail(str(exc), EXIT_USAGE)
            goals = load_goals(default_goals_file())[:args.episodes]
            robot = args.robot or spec.get('robot') or 'panda'
            trace, extra = gap.sim_to_sim(spec, policy, goals, robot)
            title = f'PyBullet vs MuJoCo: {args.source}'
        else:
            trace, extra = gap.from_recording(args.source, args.robot), {}
            title = f'recording vs MuJoCo twin: {args.source}'
    except (OSError, ValueError) as exc:
        return _fail(str(exc), EXIT_USAGE)
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


def _flush_c_stdio() -> None:
    sys.stdout.flush()
    try:
        import ctypes
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass


def _ros(command: str, node_args: list[str]) -> int:
    module_name = _ROS_COMMANDS[command][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return _fail(f'`{command}` is not available in this installation ({module_name} '
                         'is missing)', 1)
        if exc.name and (exc.name.startswith('rclpy') or exc.name.endswith('_msgs')
                         or exc.name.startswith('rmw')):
            return _fail(f'`{command}` needs ROS 2 Python packages ({exc.name} not found): '
                         "source a ROS 2 distro or `pip install -e '.[ros]'`", 1)
        raise
    fn = module.main
    if inspect.signature(fn).parameters:
        status = fn(node_args)
    else:  # a ros2-style main() that reads sys.argv itself
        sys.argv = [f'rl-control {command}', *node_args]
        status = fn()
    return int(status or 0)


if __name__ == '__main__':  # pragma: no cover
    os.environ.setdefault('MPLBACKEND', 'Agg')
    sys.exit(main())
