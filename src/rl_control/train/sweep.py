"""`rl-control sweep`: hyperparameter search on Ray Tune (Optuna's TPE, ASHA early stopping).

A sweep is a base config (`--config`, `--set`) and a SPACE file mapping dotted config keys (the
`--set` names) to distributions:

    algo_kwargs.lr: {type: loguniform, low: 3.0e-4, high: 3.0e-3}
    algo_kwargs.tau: {type: uniform, low: 0.01, high: 0.1}
    algo_kwargs.learning_starts: {type: int, low: 200, high: 1000}     # inclusive; log: true
    algo_kwargs.hidden_sizes: {type: choice, values: [[64, 64], [128, 128]]}

The space is validated before Ray starts (`load_space`): a misspelt key, an unknown type, a
missing or extra field, bounds in the wrong order or a continuous type for an integer key is
one `ConfigError` naming the file and the key. Values themselves are checked where a trial
builds its config, so a value the config or the env rejects is that trial's error.

How a trial runs: Tune calls `_trial` in a Ray worker (one CPU per trial, more for async envs;
as many trials at once as the cluster has CPUs); it applies the sampled values to the base
config exactly as `--set` would, then trains seeds base seed .. base seed + K - 1 one after the
other, each an ordinary run directory (progress.csv, bundle, curve): `<out>/trial_007/` for
one seed, `<out>/trial_007/seed_<n>/` for several. Every evaluation is reported to Tune.

The metric (`metric` in results.csv): with a `target_return`, the mean over the trial's seeds
of the time to solve (`solve.py`: confirmed by 100 fresh episodes; an unsolved seed, a seed cut
short by ASHA and a seed never started all count at `--budget-s`), minimized; without one,
the mean final evaluation return, maximized. The Optuna searcher optimizes it (seeded; with
trials running in parallel the order of completions, so the proposals, can vary).

ASHA early stopping judges the same metric, as it would stand if the trial stopped now (a
running seed not yet solved at the budget), at equal progress: seed index + fraction of
total_steps, so trials are compared on the same seed at the same step; rungs at 1/4, 1/2, 1,
2 ... seeds, reduction factor 2 (a trial worse than the median of those already past a rung
stops there). With a target, a trial is thus stopped only when most trials that reached its
progress had solved more, or faster; unsolved trials tie and go on. A stopped trial is
`stopped` in the table, its metric as reported when it stopped.

The base config's own values are the first point evaluated (when they lie in the space), so
the best config found is never worse than the starting one on the sweep's own seeds.

Crashes: a trial whose config or training raises is reported by Tune as errored and the sweep
goes on (`max_failures=0`: a deterministic error would only repeat); the table shows `error`
and the exception's one-line message (also in `<trial dir>/error.txt`), and Optuna learns that
trial as failed.

Outputs in `--out`: results.csv (trial, status, metric, run_dir, one column per searched key,
then step, seeds done, seeds solved and the message), sweep.png (metric per trial, and against each
searched key), best_config.yaml (the base config with the best trial's values: a file
`rl-control train --config` accepts), tune/ (Tune's own experiment state).
"""
from __future__ import annotations

import csv
import dataclasses
from dataclasses import dataclass, field
import io
import json
import math
from pathlib import Path
import traceback
from typing import Any

import yaml

from rl_control.train.cluster import cpus_per_run, ray_session, require
from rl_control.train.config import (
    ConfigError,
    TrainConfig,
    apply_override,
    config_from_dict,
    load_config,
)
from rl_control.train.control import Callback
from rl_control.train.signals import STOP_FILE, stop_file_on_signals, watch_stop_file
from rl_control.train.solve import DEFAULT_BUDGET_S, SolveTracker, run_to_solve
from rl_control.train.space import Param, apply_values, base_point, load_space
from rl_control.train.sweep_report import cell, metric_label, plot_sweep

# ASHA: progress is measured in seeds (seed index + fraction of total_steps).
ASHA_GRACE = 0.25
ASHA_REDUCTION = 2


# -- one trial (runs in a Ray worker) ------------------------------------------------------------
@dataclass
class _TrialSpec:
    """What every trial shares (put in Ray's object store once, by `tune.with_parameters`)."""

    base_raw: dict[str, Any]
    source: str
    params: list[Param]
    seeds: list[int]
    budget_s: float
    out: str
    command: str
    target: float | None = None


@dataclass
class _TrialState:
    """Per-seed outcomes so far, for the running metric reported to Tune."""

    spec: _TrialSpec
    index: int
    total_steps: int
    done: list[dict[str, Any]] = field(default_factory=list)

    def metric(self, running: bool = False, current: float | None = None) -> float:
        """Mean over the seeds: finished ones as they ended, a `running` one at `current`.

        Time to solve: a running seed not yet solved (`current` None) and seeds not started
        count at the budget, so the value is what the trial scores if it is stopped now.
        Return: the mean of the finished seeds' final returns and the running one's latest.
        """
        k = len(self.spec.seeds)
        if self.spec.target is not None:
            times = [d['time_s'] for d in self.done]
            if running:
                times.append(self.spec.budget_s if current is None else current)
            times += [self.spec.budget_s] * (k - len(times))
            return float(sum(times) / k)
        returns = [d['final_return'] for d in self.done]
        if running and current is not None:
            returns.append(current)
        return float(sum(returns) / len(returns)) if returns else float('nan')

    def report(self, progress: float, eval_return: float, running: bool, status: str,
               step: int, run_dir: Path | str, current: float | None = None) -> None:
        """One Tune result (ASHA reads progress and metric; Optuna reads the final metric)."""
        from ray import tune

        tune.report({'progress': progress, 'eval_return': eval_return,
                     'metric': self.metric(running, current), 'status': status,
                     'trial': self.index, 'step': step, 'run_dir': str(run_dir),
                     'seeds_done': len(self.done),
                     'solved_seeds': sum(bool(d.get('solved')) for d in self.done)})


class _Reporter(Callback):
    """Reports each evaluation during a run to Tune (after the SolveTracker has judged it).

    Not the run's last evaluation (at total_steps, or the one that solved it, or past the
    budget): a report can be answered by ASHA's stop, which ends the trial inside the report,
    and that must not cut off the run's final checkpoint and bundle. The seed's outcome is
    reported once its run has returned (`_trial`).
    """

    def __init__(self, state: _TrialState, seed_index: int, run_dir: Path,
                 tracker: SolveTracker | None) -> None:
        self.state, self.i, self.run_dir, self.tracker = state, seed_index, run_dir, tracker

    def on_eval(self, info: dict[str, Any]) -> None:
        """One Tune result per evaluation that the run continues after."""
        if info['step'] >= self.state.total_steps:
            return
        if self.tracker is not None and (self.tracker.result.solved
                                         or info['wall_s'] > self.state.spec.budget_s):
            return
        current = None if self.tracker is not None else info['eval_mean_return']
        self.state.report(self.i + info['step'] / self.state.total_steps,
                          info['eval_mean_return'], True, 'running', info['step'],
                          self.run_dir, current)


def _trial(config: dict[str, Any], spec: _TrialSpec) -> None:
    """The Tune trainable: one trial = the sampled values on the base config, K seeds."""
    from ray import tune

    name = Path(tune.get_context().get_trial_dir()).name  # trial_007 (_trial_dirname)
    index = int(name.rsplit('_', 1)[-1])
    root = Path(spec.out) / name
    stop = Path(spec.out) / STOP_FILE
    if stop.exists():
        return  # the sweep was interrupted (signals.py): start nothing new
    values = {p.key: p.decode(config[p.key]) for p in spec.params}
    k = len(spec.seeds)
    try:
        raw = apply_values(spec.base_raw, values, spec.source)
        cfg = config_from_dict(raw, source=f'{spec.source} (trial {index})')
        state = _TrialState(spec, index, cfg.total_steps)
        for i, seed in enumerate(spec.seeds):
            run_dir = root if k == 1 else root / f'seed_{seed}'
            done = _train_seed(spec, state, i, dataclasses.replace(cfg, seed=seed), run_dir)
            state.done.append(done)
            status = 'running' if i < k - 1 else 'done'
            if i < k - 1 and stop.exists():  # interrupted: the other seeds never start
                status = 'stopped'
            elif status == 'done' and spec.target is not None:
                solved = sum(d['solved'] for d in state.done)
                status = 'solved' if solved == k else 'unsolved'
            if status != 'running':
                summary = {'trial': index, 'status': status, 'metric': state.metric(),
                           'values': values, 'seeds': state.done, 'run_dir': str(root)}
                (root / 'trial.json').write_text(json.dumps(summary, indent=1))
            state.report(float(i + 1), done['final_return'], False, status, done['steps'],
                         root)
            if status == 'stopped':
                break
    except Exception as exc:
        root.mkdir(parents=True, exist_ok=True)
        (root / 'error.txt').write_text(one_line(exc) + '\n\n' + traceback.format_exc())
        raise


def _train_seed(spec: _TrialSpec, state: _TrialState, i: int, cfg: TrainConfig,
                run_dir: Path) -> dict[str, Any]:
    from rl_control.train.learn import TrainControl, train

    command = f'{spec.command}  # trial {state.index}, seed {cfg.seed}'
    control = TrainControl()  # the driver's SIGINT/SIGTERM arrives through the stop file
    unwatch = watch_stop_file(Path(spec.out) / STOP_FILE, control)
    try:
        if spec.target is None:
            result = train(cfg, run_dir, progress=False, command=command, control=control,
                           callbacks=[_Reporter(state, i, run_dir, None)])
            return {'seed': cfg.seed, 'run_dir': str(run_dir), 'steps': result.steps,
                    'final_return': (result.last_eval or {}).get('eval_mean_return')}
        tracker = SolveTracker(cfg, spec.target, spec.budget_s)
        result, solve = run_to_solve(cfg, run_dir, spec.budget_s, command=command,
                                     tracker=tracker, control=control,
                                     callbacks=[_Reporter(state, i, run_dir, tracker)])
    finally:
        unwatch()
    return {'seed': cfg.seed, 'run_dir': str(run_dir), 'steps': result.steps,
            'final_return': (result.last_eval or {}).get('eval_mean_return'),
            'solved': solve.solved, 'time_s': solve.time_s, 'solve': solve.to_dict()}


def one_line(exc: BaseException) -> str:
    """`Type: message` on one line (what the results table shows for an errored trial)."""
    text = ' '.join(str(exc).split())
    return f'{type(exc).__name__}: {text}' if text else type(exc).__name__


def _trial_dirname(trial: Any) -> str:
    # Tune's experiment_tag starts with the trial's creation counter (1-based).
    return f'trial_{int(str(trial.experiment_tag).split("_")[0]) - 1:03d}'


# -- the driver ----------------------------------------------------------------------------------
@dataclass
class SweepResult:
    """The table, the best row and where the outputs went."""

    rows: list[dict[str, Any]]
    best: dict[str, Any] | None
    out: Path
    results_csv: Path
    plot: Path | None
    best_config: Path | None
    mode: str
    params: list[Param]


def run_sweep(config: str | Path, space: str | Path, trials: int, out: str | Path,
              seeds_per_trial: int = 1, address: str | None = None,
              overrides: list[str] | tuple[str, ...] = (), budget_s: float = DEFAULT_BUDGET_S,
              include_base: bool = True, early_stop: bool = True, search_seed: int = 0,
              cpus: int | None = None, points: list[dict[str, Any]] | None = None,
              command: str = 'rl-control sweep', say: Any = print) -> SweepResult:
    """Run a sweep (module docstring).

    `points`: extra configs (dotted key -> value) to try first, after the base config's own.
    """
    if trials < 1 or seeds_per_trial < 1:
        raise ConfigError('--trials and --seeds-per-trial must be >= 1')
    if budget_s <= 0:
        raise ConfigError(f'--budget-s must be > 0, got {budget_s}')
    base = load_config(config, overrides)
    base_raw = yaml.safe_load(Path(config).read_text())  # valid: load_config read it
    for item in overrides:
        apply_override(base_raw, item, str(config))
    params = load_space(space, base)
    todo = []
    if include_base:
        point = base_point(params, base)
        if point is None:
            say('sweep: the base config\'s values are not all in the space; not tried first')
        else:
            todo.append(point)
    for extra in points or []:
        encoded = {}
        for p in params:
            if p.key not in extra or p.encode(extra[p.key]) is None:
                raise ConfigError(f'point {extra}: {p.key}: missing or outside the space')
            encoded[p.key] = p.encode(extra[p.key])
        todo.append(encoded)
    require('rl-control sweep', ('ray', 'optuna'))
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    target = base.target_return
    mode = 'min' if target is not None else 'max'
    spec = _TrialSpec(base_raw, str(config), params,
                      [base.seed + i for i in range(seeds_per_trial)], float(budget_s),
                      str(out), command, target)
    with ray_session(address, cpus), stop_file_on_signals(out, say):
        grid = _fit(spec, trials, mode, todo, early_stop, search_seed, cpus_per_run(base))
        rows = _rows(grid, spec)
    return _write_outputs(rows, spec, mode, out, trials, command)


def _fit(spec: _TrialSpec, trials: int, mode: str, points: list[dict[str, Any]],
         early_stop: bool, search_seed: int, cpus: int) -> Any:
    import logging
    import os

    import optuna
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search.optuna import OptunaSearch

    # The legacy reporter prints nothing at verbose=0 (the new one still prints a banner).
    os.environ.setdefault('RAY_AIR_NEW_OUTPUT', '0')
    # SIGINT stops each trial's run cleanly (run_sweep's stop file), not Tune's trial kill.
    os.environ['TUNE_DISABLE_SIGINT_HANDLER'] = '1'
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    searcher = OptunaSearch(metric='metric', mode=mode, seed=search_seed,
                            points_to_evaluate=points or None)
    k = len(spec.seeds)
    scheduler = ASHAScheduler(time_attr='progress', metric='metric', mode=mode, max_t=k,
                              grace_period=min(ASHA_GRACE, k), reduction_factor=ASHA_REDUCTION) \
        if early_stop else FIFOScheduler()
    trainable = tune.with_resources(tune.with_parameters(_trial, spec=spec), {'cpu': cpus})
    tuner = tune.Tuner(
        trainable, param_space={p.key: p.domain() for p in spec.params},
        tune_config=tune.TuneConfig(num_samples=trials, search_alg=searcher,
                                    scheduler=scheduler, reuse_actors=True,
                                    trial_dirname_creator=_trial_dirname),
        run_config=tune.RunConfig(name='tune', storage_path=str(Path(spec.out)), verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=0)))
    # Tune logs each errored trial's traceback; the table reports it in one line instead.
    tune_logger = logging.getLogger('ray.tune')
    level = tune_logger.level
    tune_logger.setLevel(logging.CRITICAL)
    try:
        return tuner.fit()
    finally:
        tune_logger.setLevel(level)


def _rows(grid: Any, spec: _TrialSpec) -> list[dict[str, Any]]:
    rows = []
    for result in grid:
        if result.config is None or result.path is None:  # interrupted before it started
            continue
        name = Path(result.path).name
        index = int(name.rsplit('_', 1)[-1])
        metrics = result.metrics or {}
        values = {p.key: p.decode(result.config[p.key]) for p in spec.params}
        row: dict[str, Any] = {'trial': index, 'status': metrics.get('status', 'stopped'),
                               'metric': metrics.get('metric'),
                               'run_dir': metrics.get('run_dir') or str(Path(spec.out) / name),
                               **values, 'step': metrics.get('step'),
                               'seeds_done': metrics.get('seeds_done'),
                               'solved_seeds': metrics.get('solved_seeds'), 'message': ''}
        if result.error is not None:
            cause = getattr(result.error, 'cause', None) or result.error
            row.update(status='error', metric=None, message=one_line(cause))
        elif row['status'] == 'running':  # cut short by ASHA: counted as reported
            row['status'] = 'stopped'
        if row['metric'] is not None and not math.isfinite(row['metric']):
            row['metric'] = None
        rows.append(row)
    return sorted(rows, key=lambda r: r['trial'])


def _write_outputs(rows: list[dict[str, Any]], spec: _TrialSpec, mode: str, out: Path,
                   trials: int, command: str) -> SweepResult:
    keys = [p.key for p in spec.params]
    columns = ['trial', 'status', 'metric', 'run_dir', *keys, 'step', 'seeds_done',
               'solved_seeds', 'message']
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns)
    writer.writeheader()
    for r in rows:
        writer.writerow({c: cell(r.get(c)) for c in columns})
    results_csv = out / 'results.csv'
    results_csv.write_text(buf.getvalue())
    ranked = [r for r in rows if r['status'] != 'error' and r['metric'] is not None]
    best = None
    if ranked:
        sign = 1.0 if mode == 'min' else -1.0
        best = min(ranked, key=lambda r: (sign * r['metric'], r['trial']))
    best_config = _write_best_config(best, spec, mode, out, trials, command) if best else None
    plot = plot_sweep(rows, spec.params, mode, out / 'sweep.png', best, metric_label(spec))
    return SweepResult(rows, best, out, results_csv, plot, best_config, mode, spec.params)


def _write_best_config(best: dict[str, Any], spec: _TrialSpec, mode: str, out: Path,
                       trials: int, command: str) -> Path:
    values = {p.key: best[p.key] for p in spec.params}
    raw = apply_values(spec.base_raw, values, spec.source)
    header = [f'# Best of {trials} trials of: {command}',
              f'# trial {best["trial"]} ({best["status"]}): {metric_label(spec)} = '
              f'{best["metric"]:.6g} on seeds {", ".join(map(str, spec.seeds))}',
              f'# base config: {spec.source}; searched: '
              + ', '.join(f'{k}={json.dumps(v)}' for k, v in values.items())]
    path = out / 'best_config.yaml'
    path.write_text('\n'.join(header) + '\n' + yaml.safe_dump(raw, sort_keys=False))
    load_config(path)  # what `rl-control train --config` will do: must accept it
    return path
