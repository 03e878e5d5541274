"""SAC on HalfCheetah-v5 and Hopper-v5, rl_control against SB3 at identical settings: statistics.

The question (issue 20): does rl_control's SAC learn the MuJoCo robots as SB3's does? Per env and
library: seeds 100-107 (no config was tuned on them), one 50k-step run per seed at identical
settings (`config/{halfcheetah,hopper}_sac.yaml`: SB3's defaults plus the RL-Zoo's
learning_starts 10000; SB3 is given the same values, bench/mujoco_peer.py), each run a child
process with one torch thread, evaluated by ONE function for both libraries (10 deterministic
episodes through `gym.make(env_id)` with its own TimeLimit, the same episode seeds on both sides)
every 10k steps. The report reads the evaluations at 30k and at 50k steps and gives, per env and
budget: every seed, the median and the worst seed, the IQM with its stratified-bootstrap 95% CI,
the IQM ratio ours/SB3 with a bootstrap CI (each library's runs resampled apart), and the
two-sided Mann-Whitney U test with its exact p-value (rl_control.train.aggregate). Parity, as
the issue defines it: at 50k, IQM ratio >= 0.9 with the CI's lower bound >= 0.75, on both envs.

Each finished run is kept as bench/results/mujoco_parity/<env>_<impl>_s<seed>.json (with the
git commit of the code that ran it) and skipped when the command runs again; a killed run
leaves no file and starts again from scratch. SB3's runs go first (`--impls`): a defect found
in rl_control meanwhile only asks for rl_control's side again (`--impls ours --force`);
`--interleave` goes seed by seed instead, so that a batch stopped early leaves pairs.
`--report` only rebuilds the table and the plot. Long runs: nice them, one at a time:

    setsid nohup nice -n 19 .venv/bin/python bench/mujoco_parity.py --jobs 1 \\
        > bench/results/mujoco_parity.log 2>&1 &
"""
from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
import json
import queue
import statistics
import subprocess
import sys

from harness import RESULTS, ROOT, run_child, save
import numpy as np

sys.path.insert(0, str(ROOT / 'src'))  # this checkout's rl_control, as the children get it
from rl_control.train.aggregate import iqm_ratio_ci, mann_whitney, summarize  # noqa: E402

RUNS = RESULTS / 'mujoco_parity'
ENVS = ('HalfCheetah-v5', 'Hopper-v5')
NAMES = {'ours': 'rl_control', 'sb3': 'SB3'}
PROBES = ('alpha', 'q_mean', 'logp_exact', 'logp_eps', 'saturated', 'mean_log_std')


def run_path(env: str, impl: str, seed: int):
    return RUNS / f'{env}_{impl}_s{seed}.json'


def code_version() -> str:
    """The commit the runs were made with, '+dirty' when the work tree had changes."""
    def git(*args: str) -> str:
        return subprocess.run(['git', *args], cwd=ROOT, capture_output=True, text=True,
                              check=False).stdout.strip()
    dirty = git('status', '--porcelain', '--untracked-files=no', 'src', 'bench')
    return git('rev-parse', '--short', 'HEAD') + ('+dirty' if dirty else '')


def at(run: dict, step: int, key: str = 'mean') -> float:
    """A run's evaluation row value at `step`."""
    for row in run['evals']:
        if row['step'] == step:
            return float(row.get(key, float('nan')))
    raise KeyError(f"{run['env']} {run['impl']} seed {run['seed']}: no evaluation at {step}")


def compare(runs: list[dict], env: str, step: int) -> dict:
    """The statistics of one env at one budget (see the module docstring)."""
    out: dict = {'env': env, 'step': step}
    scores = {}
    for impl in ('ours', 'sb3'):
        sel = sorted((r for r in runs if r['env'] == env and r['impl'] == impl),
                     key=lambda r: r['seed'])
        x = np.array([at(r, step) for r in sel])
        scores[impl] = x
        if x.size == 0:
            continue
        out[impl] = {'seeds': [r['seed'] for r in sel], 'returns': x.round(1).tolist(),
                     'median': float(statistics.median(x)), 'worst': float(x.min()),
                     **summarize(x),
                     'probes': {k: float(np.median([at(r, step, k) for r in sel]))
                                for k in PROBES}}
    if scores['ours'].size and scores['sb3'].size:
        out['ratio'] = iqm_ratio_ci(scores['ours'], scores['sb3'])
        out['test'] = mann_whitney(scores['ours'], scores['sb3'])
    return out


def parity(rows: list[dict], step: int) -> dict:
    """The issue's verdict at `step`: IQM ratio >= 0.9 and its CI's lower bound >= 0.75."""
    verdict = {}
    for r in rows:
        if r['step'] != step or 'ratio' not in r:
            continue
        ok = (r['ratio']['ratio'] >= 0.9 and r['ratio']['ci95'][0] >= 0.75
              and r['ratio']['denominator_nonpositive'] == 0)
        verdict[r['env']] = {'met': bool(ok), 'n': [r['ours']['n'], r['sb3']['n']]}
    return verdict


def markdown(rows: list[dict]) -> str:
    head = ('| env | steps | library | per seed | median | worst | IQM [95% CI] '
            '| IQM ratio ours/SB3 [95% CI] | Mann-Whitney p (P(ours > SB3)) |')
    lines = [head, '|' + '---|' * 9]
    for r in rows:
        for impl in ('ours', 'sb3'):
            if impl not in r:
                continue
            s = r[impl]
            cmp_ = ''
            if impl == 'ours' and 'ratio' in r:
                q = r['ratio']
                cmp_ = (f"**{q['ratio']:.2f}** [{q['ci95'][0]:.2f}, {q['ci95'][1]:.2f}]"
                        if q['denominator_nonpositive'] == 0 else
                        f"n/a (SB3's IQM <= 0 in {100 * q['denominator_nonpositive']:.0f}% "
                        'of resamples)')
                cmp_ += f" | {r['test']['p']:.3f} ({r['test']['prob_a_better']:.2f})"
            else:
                cmp_ = ' | '
            lines.append(f"| {r['env']} | {r['step']:,} | {NAMES[impl]} | "
                         f"{' / '.join(f'{v:.0f}' for v in s['returns'])} | "
                         f"{s['median']:.0f} | {s['worst']:.0f} | **{s['iqm']:.0f}** "
                         f"[{s['ci95'][0]:.0f}, {s['ci95'][1]:.0f}] | {cmp_} |")
    return '\n'.join(lines)


def probes_markdown(rows: list[dict]) -> str:
    """Medians over seeds of the learner probes (bench/mujoco_peer.py's Recorder)."""
    lines = ['| env | steps | library | ' + ' | '.join(PROBES) + ' |', '|' + '---|' * 9]
    for r in rows:
        for impl in ('ours', 'sb3'):
            if impl in r:
                p = r[impl]['probes']
                lines.append(f"| {r['env']} | {r['step']:,} | {NAMES[impl]} | "
                             + ' | '.join(f'{p[k]:.3g}' for k in PROBES) + ' |')
    return '\n'.join(lines)


def plot(runs: list[dict], envs: list[str], name: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(envs), figsize=(5.5 * len(envs), 3.8), squeeze=False)
    for ax, env in zip(axes[0], envs, strict=True):
        for impl, color in (('ours', '#1f6fb4'), ('sb3', '#d62728')):
            sel = [r for r in runs if r['env'] == env and r['impl'] == impl]
            if not sel:
                continue
            steps = [e['step'] for e in sel[0]['evals']]
            for r in sel:
                ax.plot([e['step'] for e in r['evals']], [e['mean'] for e in r['evals']],
                        color=color, alpha=0.25, lw=0.8)
            curves = np.array([[e['mean'] for e in r['evals']] for r in sel
                               if [e['step'] for e in r['evals']] == steps])
            med = np.median(curves, axis=0)
            ax.plot(steps, med, color=color, lw=2.2,
                    label=f'{NAMES[impl]}: median of {len(curves)} seeds (thin: each seed)')
        ax.set_title(f'SAC {env}, identical settings')
        ax.set_xlabel('env steps')
        ax.set_ylabel('deterministic eval return (10 episodes)')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / f'{name}.png', dpi=80)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--envs', nargs='+', default=list(ENVS), choices=ENVS)
    p.add_argument('--impls', nargs='+', default=['sb3', 'ours'], choices=['ours', 'sb3'],
                   help='in this order (all runs of the first, then of the next)')
    p.add_argument('--interleave', action='store_true',
                   help='seed by seed instead: both libraries on both envs, then the next seed '
                        '(a batch stopped early leaves pairs)')
    p.add_argument('--seeds', type=int, nargs='+', default=list(range(100, 108)))
    p.add_argument('--steps', type=int, default=50_000)
    p.add_argument('--budgets', type=int, nargs='+', default=[30_000, 50_000])
    p.add_argument('--eval-every', type=int, default=10_000)
    p.add_argument('--jobs', type=int, default=1, help='runs at a time (one core each)')
    p.add_argument('--set', action='append', default=[],
                   help='config override for both libraries (smoke tests only)')
    p.add_argument('--report', action='store_true', help='only rebuild the table')
    p.add_argument('--force', action='store_true', help='rerun runs already on disk')
    p.add_argument('--name', default='mujoco_parity',
                   help='bench/results/<name>/ for the runs, <name>.{md,json,png} for the report')
    a = p.parse_args()
    global RUNS
    RUNS = RESULTS / a.name
    RUNS.mkdir(parents=True, exist_ok=True)
    jobs = [(env, impl, seed) for impl in a.impls for seed in a.seeds for env in a.envs]
    if a.interleave:
        jobs = [(env, impl, seed) for seed in a.seeds for env in a.envs for impl in a.impls]
    todo = [j for j in jobs if a.force or not run_path(*j).is_file()]
    cores: queue.Queue[int] = queue.Queue()
    for c in range(a.jobs):
        cores.put(c)

    def one(job: tuple[str, str, int]) -> None:
        env, impl, seed = job
        core = cores.get()
        try:
            code = code_version()
            print(f'start {env} {impl} seed {seed} on core {core} (code {code})', flush=True)
            args = ['bench/mujoco_peer.py', '--impl', impl, '--algo', 'sac', '--env', env,
                    '--seed', str(seed), '--steps', str(a.steps), '--eval-every',
                    str(a.eval_every)]
            for s in a.set:
                args += ['--set', s]
            res = run_child(args, cpu=core, timeout=24 * 3600,
                            log=run_path(*job).with_suffix('.log'))
            res['code'] = code
            run_path(*job).write_text(json.dumps(res))
            print(f'done {env} {impl} seed {seed}: ' + ', '.join(
                f"{e['step'] // 1000}k {e['mean']:.0f}" for e in res['evals'])
                + f" ({res['wall_s']:.0f} s)", flush=True)
        except Exception as exc:  # noqa: BLE001 - report it; the other runs go on
            print(f'FAILED {env} {impl} seed {seed}: {exc}', flush=True)
        finally:
            cores.put(core)

    if not a.report and todo:
        with ThreadPoolExecutor(a.jobs) as pool:
            list(pool.map(one, todo))
    runs = [json.loads(run_path(*j).read_text()) for j in jobs if run_path(*j).is_file()]
    if not runs:
        print('no finished runs')
        return
    rows = [compare(runs, env, step) for env in a.envs for step in a.budgets]
    final = max(a.budgets)
    verdict = parity(rows, final)
    text = (markdown(rows) + '\n\nLearner probes (median over seeds):\n\n' + probes_markdown(rows)
            + f'\n\nParity at {final:,} steps (IQM ratio >= 0.9, CI lower bound >= 0.75): '
            + ', '.join(f"{e}: {'met' if v['met'] else 'NOT met'} (n = {v['n'][0]} / "
                        f"{v['n'][1]})" for e, v in verdict.items()) + '\n')
    print(text)
    (RESULTS / f'{a.name}.md').write_text(text)
    plot(runs, a.envs, a.name)
    save(a.name, {'steps': a.steps, 'budgets': a.budgets, 'rows': rows,
                           'parity': verdict,
                           'codes': sorted({f"{r['impl']} {r.get('code')}" for r in runs})})


if __name__ == '__main__':
    main()
