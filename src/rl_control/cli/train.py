"""`rl-control train | sweep | eval`: runs from configs, and a bundle's evaluation."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
import re
import shlex
import sys
from typing import TYPE_CHECKING

from rl_control.cli.common import EXIT_USAGE, fail, flush_c_stdio

if TYPE_CHECKING:
    from rl_control.train.config import TrainConfig


def cmd_train(args: argparse.Namespace, argv: list[str]) -> int:
    """`rl-control train`: one run (or `--seeds` on Ray) from a config."""
    from rl_control.train.config import ConfigError, load_config

    try:
        cfg = load_config(args.config, args.overrides)
    except ConfigError as exc:
        return fail(str(exc), EXIT_USAGE)
    if args.check:
        print(f'{args.config}: OK ({cfg.algo} on {cfg.env}, {cfg.total_steps} steps)')
        return 0
    out = Path(args.out) if args.out else Path('runs') / Path(args.config).stem
    if args.seeds is not None:
        return cmd_train_seeds(args, argv, cfg, out)
    from rl_control.train.learn import NonFiniteError, ResumeError, RunLockError, train

    command = 'rl-control ' + ' '.join(shlex.quote(a) for a in argv)
    print(f'training {cfg.algo} on {cfg.env} for {cfg.total_steps} steps -> {out}', flush=True)
    try:
        result = train(cfg, out, resume=args.resume, progress=not args.no_progress,
                       command=command)
    except (ResumeError, RunLockError, NonFiniteError) as exc:
        return fail(str(exc), 1 if isinstance(exc, NonFiniteError) else EXIT_USAGE)
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


def cmd_train_seeds(args: argparse.Namespace, argv: list[str], cfg: TrainConfig,
                    out: Path) -> int:
    """`train --seeds`: the seeds in parallel on Ray, then their IQM report."""
    from rl_control.train.cluster import MissingExtra
    from rl_control.train.seeds import format_report, run_seeds

    if args.resume:
        return fail('--resume and --seeds do not go together (resume one seed\'s run '
                     'directory with --out <out>/seed_<n> --set seed=<n> --resume)', EXIT_USAGE)
    command = 'rl-control ' + ' '.join(shlex.quote(a) for a in argv)
    say = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    say(f'training {cfg.algo} on {cfg.env} for {cfg.total_steps} steps, seeds '
        f'{" ".join(map(str, args.seeds))} on Ray -> {out}/seed_<n>')
    try:
        report = run_seeds(cfg, args.seeds, out, address=args.address, command=command,
                           say=say)
    except MissingExtra as exc:
        return fail(str(exc), 1)
    except ValueError as exc:
        return fail(str(exc), EXIT_USAGE)
    say(format_report(report))
    if args.json:
        flush_c_stdio()
        print(json.dumps(report), flush=True)
    return 1 if report['failed'] else 0


def cmd_sweep(args: argparse.Namespace, argv: list[str]) -> int:
    """`rl-control sweep`: a hyperparameter search on Ray Tune."""
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
        return fail(str(exc), EXIT_USAGE)
    except MissingExtra as exc:
        return fail(str(exc), 1)
    print(format_table(result))
    print(f'  results:     {result.results_csv}')
    print(f'  plot:        {result.plot}')
    if result.best is None:
        return fail('no trial finished without an error: no best config', 1)
    print(f'  best:        trial {result.best["trial"]}, metric {result.best["metric"]:.4g} '
          f'-> {result.best_config}')
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """`rl-control eval`: a bundle on its task (or `--env`), deterministic actions."""
    from rl_control.bundle.io import BundleError, load_bundle

    if args.episodes <= 0:
        return fail('--episodes must be > 0', EXIT_USAGE)
    try:
        spec, policy = load_bundle(args.bundle)
    except BundleError as exc:
        return fail(str(exc), EXIT_USAGE)
    task = spec.get('task') or {}
    env_id = args.env or task['env_id']
    from rl_control.train.config import ConfigError, check_env_id
    from rl_control.train.evaluation import evaluate

    try:
        check_env_id(env_id, '--env')
    except ConfigError as exc:
        return fail(str(exc), EXIT_USAGE)
    env_kwargs = task.get('env_kwargs') or {}
    try:
        result = evaluate(policy.act, env_id, args.episodes, seed=args.seed,
                          env_kwargs=env_kwargs, time_limit=task.get('time_limit'))
    except TypeError as exc:
        bad = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
        if bad is None or env_id == task.get('env_id'):
            raise
        return fail(f"--env {env_id} does not take the option {bad.group(1)!r} of the "
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
        flush_c_stdio()  # pybullet printf()s on stdout; the JSON must come out last
        print(json.dumps(summary), flush=True)
    else:
        sr = summary['success_rate']
        print(f'{env_id}: {summary["episodes"]} episodes, return {summary["mean_return"]:.2f} '
              f'± {summary["std_return"]:.2f}'
              + ('' if sr is None else f', success rate {sr:.2f}'))
    return 0
