"""Time to solve of two configs side by side on held-out seeds (a sweep's best vs the shipped one).

The metric is the sweep's own (`rl_control.train.solve`): wall time to the first evaluation
whose mean return reaches the config's target_return AND that 100 fresh episodes confirm;
unsolved runs count at --budget-s. Each run is a fresh child process pinned to one core with
one thread; configs alternate per seed (A B A B ...) so drift on this shared machine hits both;
the load average is recorded before and after.

    .venv/bin/python bench/sweep_check.py config/pendulum_sac.yaml \
        bench/results/sweep_pendulum_sac/best_config.yaml --seeds 100 101 102 103 104
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import sys
import tempfile
import time

sys.path.insert(0, str(Path(__file__).resolve().parent))


def child(config: str, seed: int, budget_s: float) -> dict:
    """One run to a confirmed solve; times from the run's start and from process start."""
    t_start = time.time()
    from rl_control.train.config import load_config
    from rl_control.train.solve import run_to_solve

    cfg = load_config(config, [f'seed={seed}', 'tensorboard=false'])
    with tempfile.TemporaryDirectory() as tmp:
        t_run = time.time()
        result, solve = run_to_solve(cfg, Path(tmp) / 'run', budget_s)
    t0 = float(os.environ.get('BENCH_T0', t_start))
    out = solve.to_dict()
    out.update(config=config, seed=seed, steps=result.steps,
               from_process_start_s=(t_run - t0) + solve.time_s if solve.solved else None)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('configs', nargs='*', metavar='CONFIG', help='two configs')
    ap.add_argument('--seeds', type=int, nargs='+', default=[100, 101, 102, 103, 104])
    ap.add_argument('--budget-s', type=float, default=60.0)
    ap.add_argument('--cpu', type=int, default=0, help='core to pin children to (-1: none)')
    ap.add_argument('--name', default='sweep_check')
    ap.add_argument('--child', nargs=2, metavar=('CONFIG', 'SEED'))
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]), args.budget_s)))
        return
    if len(args.configs) != 2:
        ap.error('give two configs')

    from harness import run_child, save
    import numpy as np

    from rl_control.train.aggregate import summarize

    load_before = os.getloadavg()
    rows = []
    for seed in args.seeds:
        for config in args.configs:
            res = run_child([__file__, '--child', config, str(seed), '--budget-s',
                             str(args.budget_s)], cpu=None if args.cpu < 0 else args.cpu)
            rows.append(res)
            print(f'seed {seed} {config}: '
                  + (f'solved at step {res["step"]} in {res["time_s"]:.1f} s (confirmed '
                     f'{res["confirm_return"]:.1f}; {res["candidates"]} candidate(s))'
                     if res['solved'] else f'unsolved after {res["steps"]} steps'),
                  flush=True)
    load_after = os.getloadavg()
    summary = {}
    for config in args.configs:
        mine = [r for r in rows if r['config'] == config]
        times = np.array([r['time_s'] for r in mine])
        steps = [r['step'] for r in mine]
        s = summarize(times)
        summary[config] = {'times_s': times.tolist(), 'steps': steps,
                           'median_s': float(np.median(times)), 'mean_s': float(times.mean()),
                           'iqm_s': s['iqm'], 'ci95_s': s['ci95'],
                           'solved': sum(r['solved'] for r in mine)}
        print(f'{config}: time to solve median {np.median(times):.1f} s, IQM {s["iqm"]:.1f} s '
              f'[{s["ci95"][0]:.1f}, {s["ci95"][1]:.1f}], solved {summary[config]["solved"]}/'
              f'{len(mine)}; steps {steps}')
    print(f'load average before {load_before}, after {load_after}')
    save(args.name, {'seeds': args.seeds, 'budget_s': args.budget_s, 'rows': rows,
                     'summary': summary, 'loadavg_before': load_before,
                     'loadavg_after': load_after})


if __name__ == '__main__':
    main()
