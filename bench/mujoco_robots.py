"""Hopper-v5 and HalfCheetah-v5, SAC and TD3: rl_control and SB3 side by side (on demand).

Same env-step budget (default 100k), same seeds, identical hyperparameters (SB3's defaults with
the RL-Zoo's MuJoCo settings: learning_starts 10000, and for TD3 Gaussian noise 0.1, 400x300,
lr 1e-3, batch 256; `config/{hopper,halfcheetah}_{sac,td3}.yaml`), the same evaluation function
(10 deterministic episodes every 10k steps and after the last, same episode seeds both sides;
bench/mujoco_peer.py). Each run is a child process with one torch thread, pinned to one core;
`--jobs 2` runs two at a time, one per core. Finished runs are kept as
bench/results/mujoco/<algo>_<env>_<impl>_s<seed>_<steps>.json and skipped when the command is
run again, so a long table can be built over several sittings; `--report` only rebuilds the
table (`--at 30000` reads the evaluation at that step instead of the last).

    nice -n 10 .venv/bin/python bench/mujoco_robots.py --algos sac --envs HalfCheetah-v5 \\
        --seeds 100 101 102 --jobs 2

Published 1M-step returns are quoted beside ours for orientation only (ours are 100k).
"""
from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
import csv
import json
import queue
import statistics

from harness import RESULTS, run_child, save
import numpy as np

RUNS = RESULTS / 'mujoco'
# 1M-step results others published (NOT comparable to a 100k budget; quoted for orientation).
# RL-Zoo: benchmark.md of DLR-RM/rl-baselines3-zoo, one trained agent (v3 envs), mean ± std
# over ~150 evaluation episodes. CleanRL: docs/rl-algorithms/{sac,td3}.md, 3 seeds, episodic
# training return (SAC on -v2 envs, TD3 on -v4 envs).
PUBLISHED_1M = {
    ('sac', 'HalfCheetah-v5'): 'RL-Zoo 9535 ± 100; CleanRL 9635 ± 1424',
    ('sac', 'Hopper-v5'): 'RL-Zoo 2326 ± 1130; CleanRL 2310 ± 343',
    ('td3', 'HalfCheetah-v5'): 'RL-Zoo 9656 ± 970; CleanRL 9583 ± 126',
    ('td3', 'Hopper-v5'): 'RL-Zoo 3606 ± 4; CleanRL 3135 ± 360',
}


def run_path(algo: str, env: str, impl: str, seed: int, steps: int):
    return RUNS / f'{algo}_{env}_{impl}_s{seed}_{steps}.json'


def at_step(run: dict, step: int | None) -> float:
    """The evaluation mean at `step` (None: the last evaluation)."""
    if step is None:
        return run['evals'][-1]['mean']
    for row in run['evals']:
        if row['step'] == step:
            return row['mean']
    raise KeyError(f'no evaluation at step {step}')


def summarize(runs: list[dict], step: int | None) -> list[dict]:
    """One row per (algo, env, impl): per-seed returns, mean, std, median, worst."""
    rows = []
    keys = dict.fromkeys((r['algo'], r['env'], r['impl']) for r in runs)
    for algo, env, impl in keys:
        sel = sorted((r for r in runs if (r['algo'], r['env'], r['impl']) == (algo, env, impl)),
                     key=lambda r: r['seed'])
        rets = [at_step(r, step) for r in sel]
        rows.append({'algo': algo, 'env': env, 'impl': impl, 'seeds': [r['seed'] for r in sel],
                     'returns': rets, 'mean': float(np.mean(rets)),
                     'std': float(np.std(rets)), 'median': float(statistics.median(rets)),
                     'worst': float(np.min(rets)),
                     'wall_s': [round(r['wall_s']) for r in sel],
                     'load1_end': [round(r.get('load1_end', float('nan')), 1) for r in sel]})
    return rows


def markdown(rows: list[dict], step_label: str) -> str:
    out = [f'| algo | env | impl | eval return at {step_label}: mean ± std (worst) | per seed '
           '| published at 1M |', '|---|---|---|---|---|---|']
    for r in rows:
        seeds = ' / '.join(f'{x:.0f}' for x in r['returns'])
        out.append(f"| {r['algo']} | {r['env']} | {r['impl']} | **{r['mean']:.0f}** ± "
                   f"{r['std']:.0f} ({r['worst']:.0f}) | {seeds} (seeds "
                   f"{', '.join(map(str, r['seeds']))}) | "
                   f"{PUBLISHED_1M.get((r['algo'], r['env']), '')} |")
    return '\n'.join(out)


def plot(runs: list[dict]) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    panels = list(dict.fromkeys((r['algo'], r['env']) for r in runs))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, (algo, env) in zip(axes[0], panels, strict=True):
        for impl, color in (('ours', '#1f6fb4'), ('sb3', '#d62728')):
            sel = [r for r in runs if (r['algo'], r['env'], r['impl']) == (algo, env, impl)]
            for i, r in enumerate(sel):
                steps = [e['step'] for e in r['evals']]
                ax.plot(steps, [e['mean'] for e in r['evals']], color=color, alpha=0.7,
                        label=f"{'rl_control' if impl == 'ours' else 'SB3'} ({len(sel)} seeds)"
                        if i == 0 else None)
        ax.set_title(f'{algo.upper()} {env}')
        ax.set_xlabel('env steps')
        ax.set_ylabel('deterministic eval return')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / 'mujoco_robots.png', dpi=80)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--algos', nargs='+', default=['sac', 'td3'], choices=['sac', 'td3'])
    p.add_argument('--envs', nargs='+', default=['HalfCheetah-v5', 'Hopper-v5'])
    p.add_argument('--impls', nargs='+', default=['ours', 'sb3'], choices=['ours', 'sb3'])
    p.add_argument('--seeds', type=int, nargs='+', default=[100, 101, 102])
    p.add_argument('--steps', type=int, default=100_000)
    p.add_argument('--eval-every', type=int, default=10_000)
    p.add_argument('--jobs', type=int, default=1, help='runs at a time (one core each)')
    p.add_argument('--at', type=int, default=None, help='report the evaluation at this step')
    p.add_argument('--report', action='store_true', help='only rebuild the table')
    p.add_argument('--force', action='store_true', help='rerun runs already on disk')
    a = p.parse_args()
    RUNS.mkdir(parents=True, exist_ok=True)
    jobs = [(algo, env, impl, seed) for algo in a.algos for env in a.envs for seed in a.seeds
            for impl in a.impls]
    todo = [j for j in jobs if a.force or not run_path(*j, a.steps).is_file()]
    cores: queue.Queue[int] = queue.Queue()
    for c in range(a.jobs):
        cores.put(c)

    def one(job: tuple[str, str, str, int]) -> None:
        algo, env, impl, seed = job
        core = cores.get()
        try:
            print(f'start {algo} {env} {impl} seed {seed} on core {core}', flush=True)
            res = run_child(['bench/mujoco_peer.py', '--impl', impl, '--algo', algo, '--env',
                             env, '--seed', str(seed), '--steps', str(a.steps),
                             '--eval-every', str(a.eval_every)], cpu=core, timeout=12 * 3600,
                            log=run_path(*job, a.steps).with_suffix('.log'))
            run_path(*job, a.steps).write_text(json.dumps(res))
            print(f'done {algo} {env} {impl} seed {seed}: final eval '
                  f'{res["evals"][-1]["mean"]:.0f} after {res["wall_s"]:.0f} s', flush=True)
        except Exception as exc:  # noqa: BLE001 - report it; the other runs go on
            print(f'FAILED {algo} {env} {impl} seed {seed}: {exc}', flush=True)
        finally:
            cores.put(core)

    if not a.report and todo:
        with ThreadPoolExecutor(a.jobs) as pool:
            list(pool.map(one, todo))
    runs = [json.loads(run_path(*j, a.steps).read_text()) for j in jobs
            if run_path(*j, a.steps).is_file()]
    if not runs:
        print('no finished runs')
        return
    rows = summarize(runs, a.at)
    label = f'{a.at:,} steps' if a.at else f'{a.steps:,} steps'
    print(markdown(rows, label))
    name = 'mujoco_robots' + (f'_at{a.at}' if a.at else '')
    with (RESULTS / f'{name}.csv').open('w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['algo', 'env', 'impl', 'seed', 'step', 'eval_return'])
        for r in runs:
            for e in r['evals']:
                w.writerow([r['algo'], r['env'], r['impl'], r['seed'], e['step'],
                            round(e['mean'], 2)])
    plot(runs)
    save(name, {'steps': a.steps, 'at': a.at, 'summary': rows})


if __name__ == '__main__':
    main()
