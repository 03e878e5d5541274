"""`rl-control train --seeds ...`: one config, several seeds in parallel on Ray, one report.

Each seed is an ordinary run (`learn.train`) in a Ray task of its own (one CPU, more for async
envs), writing `<out>/seed_<n>/`; as many run at once as the cluster has CPUs. A seed whose run
raises is reported (seed, message) and left out of the aggregate; the others still count.

The report (`aggregate.py`, as rliable): the IQM of the seeds' final evaluation returns and its
stratified-bootstrap 95 % CI, the same for the final success rate where the env reports one;
`seeds.json` (what `--json` prints), `seeds.csv` (one row per seed) and `seeds.png` (each
seed's eval curve and, per evaluation step, the IQM across seeds with its CI band; a run that
stopped early, e.g. at its target, holds its last value).
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path
import time
from typing import Any

import numpy as np

from rl_control.train import aggregate
from rl_control.train.cluster import cpus_per_run, ray_session, require
from rl_control.train.config import TrainConfig
from rl_control.train.signals import stop_file_on_signals

_CURVE_REPS = 2000  # bootstrap resamples per point of the plotted band (the headline: 50,000)


def _run_one(cfg: TrainConfig, run_dir: str, command: str, stop_file: str) -> dict[str, Any]:
    """One seed (runs in a Ray worker); what the report needs, history included.

    The driver's SIGINT/SIGTERM reaches the run through `stop_file` (signals.py).
    """
    from rl_control.train.learn import TrainControl, train
    from rl_control.train.signals import watch_stop_file

    t0 = time.perf_counter()
    control = TrainControl()
    unwatch = watch_stop_file(stop_file, control)
    try:
        result = train(cfg, run_dir, progress=False, command=command, control=control)
    finally:
        unwatch()
    last = result.last_eval or {}
    return {'seed': cfg.seed, 'run_dir': run_dir, 'final_return': last.get('eval_mean_return'),
            'success_rate': last.get('success_rate'), 'steps': result.steps,
            'wall_s': time.perf_counter() - t0, 'reached_target': result.reached_target,
            'stopped_by': result.signal,
            'history': [{'step': r['step'], 'eval_mean_return': r['eval_mean_return'],
                         'success_rate': r.get('success_rate')} for r in result.history]}


def run_seeds(cfg: TrainConfig, seeds: list[int], out: str | Path, address: str | None = None,
              cpus: int | None = None, command: str = 'rl-control train',
              say: Any = print) -> dict[str, Any]:
    """Train `cfg` once per seed on Ray, then aggregate and write the report (module doc)."""
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f'--seeds: expected distinct seeds, got {seeds}')
    require('rl-control train --seeds')
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    runs: list[dict[str, Any]] = []
    with ray_session(address, cpus) as ray, stop_file_on_signals(out, say) as stop:
        task = ray.remote(num_cpus=cpus_per_run(cfg))(_run_one)
        pending = {task.remote(dataclasses.replace(cfg, seed=s), str(out / f'seed_{s}'),
                               f'{command}  # seed {s}', str(stop)): s for s in seeds}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)  # signals run between
            if not done:
                continue
            seed = pending.pop(done[0])
            try:
                run = ray.get(done[0])
            except Exception as exc:  # a RayTaskError wrapping the run's own exception
                cause = getattr(exc, 'cause', None) or exc
                run = {'seed': seed, 'run_dir': str(out / f'seed_{seed}'),
                       'error': f'{type(cause).__name__}: {" ".join(str(cause).split())}'}
                say(f'seed {seed}: error: {run["error"]}')
            else:
                sr, ret = run['success_rate'], run['final_return']
                say(f'seed {seed}: final eval return '
                    + ('none' if ret is None else f'{ret:.2f}')
                    + ('' if sr is None else f', success {sr:.2f}')
                    + f' after {run["steps"]} steps in {run["wall_s"]:.0f} s'
                    + (f' (stopped by {run["stopped_by"]})' if run['stopped_by'] else ''))
            runs.append(run)
    runs.sort(key=lambda r: seeds.index(r['seed']))
    report = aggregate_runs(runs, cfg)
    write_report(report, runs, out)
    return report


def aggregate_runs(runs: list[dict[str, Any]], cfg: TrainConfig) -> dict[str, Any]:
    """IQM and CI of the final returns (and success rates) of the runs that finished."""
    ok = [r for r in runs if 'error' not in r and r['final_return'] is not None]
    report: dict[str, Any] = {'env': cfg.env, 'algo': cfg.algo, 'total_steps': cfg.total_steps,
                              'eval_episodes': cfg.eval.episodes, 'iqm': None, 'ci95': None,
                              'success_iqm': None, 'success_ci95': None,
                              'method': 'IQM, stratified bootstrap 95% percentile CI, '
                                        f'{aggregate.BOOTSTRAP_REPS} resamples '
                                        '(Agarwal et al., NeurIPS 2021)'}
    if ok:
        s = aggregate.summarize(np.array([r['final_return'] for r in ok]))
        report.update(iqm=s['iqm'], ci95=s['ci95'])
        rates = [r['success_rate'] for r in ok]
        if all(x is not None for x in rates):
            s = aggregate.summarize(np.array(rates))
            report.update(success_iqm=s['iqm'], success_ci95=s['ci95'])
    report['seeds'] = [{k: r.get(k) for k in ('seed', 'final_return', 'success_rate', 'run_dir',
                                              'steps', 'wall_s', 'error')} for r in runs]
    report['failed'] = [r['seed'] for r in runs if 'error' in r]
    return report


def write_report(report: dict[str, Any], runs: list[dict[str, Any]], out: Path) -> None:
    """seeds.json, seeds.csv and seeds.png in `out`."""
    (out / 'seeds.json').write_text(json.dumps(report, indent=1))
    columns = ['seed', 'final_return', 'success_rate', 'steps', 'wall_s', 'run_dir', 'error']
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction='ignore')
    writer.writeheader()
    for r in report['seeds']:
        writer.writerow({k: '' if r.get(k) is None else r[k] for k in columns})
    (out / 'seeds.csv').write_text(buf.getvalue())
    report['plot'] = str(plot_seeds(report, runs, out / 'seeds.png'))


def _curves(runs: list[dict[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values[run, step]) on the union of eval steps; forward-filled, NaN before."""
    steps = np.array(sorted({h['step'] for r in runs for h in r['history']}), float)
    values = np.full((len(runs), len(steps)), np.nan)
    for i, r in enumerate(runs):
        hist = [(h['step'], h[key]) for h in r['history'] if h.get(key) is not None]
        j = 0
        last = np.nan
        for k, step in enumerate(steps):
            while j < len(hist) and hist[j][0] <= step:
                last = hist[j][1]
                j += 1
            values[i, k] = last
    return steps, values


def plot_seeds(report: dict[str, Any], runs: list[dict[str, Any]], png: Path) -> Path:
    """Per-seed eval curves and the IQM across seeds with its 95 % CI band."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    ok = [r for r in runs if 'error' not in r and r['history']]
    panels = [('eval_mean_return', 'eval return (deterministic)', report['iqm'],
               report['ci95'])]
    if report.get('success_iqm') is not None:
        panels.append(('success_rate', 'success rate', report['success_iqm'],
                       report['success_ci95']))
    fig, axes = plt.subplots(1, len(panels), figsize=(7 * len(panels), 4.5), dpi=110,
                             squeeze=False)
    for ax, (key, label, final_iqm, ci) in zip(axes[0], panels, strict=True):
        if ok:
            steps, values = _curves(ok, key)
            for r, row in zip(ok, values, strict=True):
                ax.plot(steps, row, linewidth=0.9, alpha=0.55, label=f'seed {r["seed"]}')
            mid, low, high = [], [], []
            for col in values.T:
                col = col[np.isfinite(col)]
                lo = hi = center = np.nan
                if col.size:
                    center = aggregate.iqm(col)
                    lo, hi = aggregate.stratified_bootstrap_ci(col, reps=_CURVE_REPS)
                mid.append(center)
                low.append(lo)
                high.append(hi)
            ax.fill_between(steps, low, high, color='k', alpha=0.15, linewidth=0,
                            label='95% CI (bootstrap)')
            ax.plot(steps, mid, color='k', linewidth=2.2, label='IQM across seeds')
        title = f'{report["algo"].upper()} on {report["env"]}: {label}'
        if final_iqm is not None:
            title += f'\nfinal IQM {final_iqm:.3g}, 95% CI [{ci[0]:.3g}, {ci[1]:.3g}]' \
                     f' ({len(ok)} seeds)'
        ax.set_title(title, fontsize=10)
        ax.set_xlabel('environment steps')
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, frameon=False, ncol=2)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
    return png


def format_report(report: dict[str, Any]) -> str:
    """Human-readable lines (what the CLI prints without --json)."""
    lines = []
    for r in report['seeds']:
        if r.get('error'):
            lines.append(f'  seed {r["seed"]}: error: {r["error"]}')
            continue
        sr = r['success_rate']
        lines.append(f'  seed {r["seed"]}: final return {r["final_return"]:.2f}'
                     + ('' if sr is None else f', success {sr:.2f}') + f'  ({r["run_dir"]})')
    if report['iqm'] is not None:
        lo, hi = report['ci95']
        lines.append(f'IQM final eval return {report["iqm"]:.2f}, 95% CI [{lo:.2f}, {hi:.2f}]')
    if report['success_iqm'] is not None:
        lo, hi = report['success_ci95']
        lines.append(f'IQM final success rate {report["success_iqm"]:.3f}, 95% CI '
                     f'[{lo:.3f}, {hi:.3f}]')
    lines.append(f'report: {report.get("plot")}')
    return '\n'.join(lines)
