"""Wall time from launch to a solved Pendulum-v1 (return >= -200): rl_control vs SB3, two ratios.

Three peers per seed, each a fresh process pinned to one core with one torch thread, timed
from just before the interpreter is spawned (BENCH_T0; imports counted):
  rl_control    config/pendulum_sac.yaml (the project's default) as `rl-control train` runs it
  sb3_ours      SB3 with that config's hyperparameters and evaluation cadence (64x64, lr 1e-3,
                tau 0.05, batch 256, learning_starts 500; 10 deterministic episodes every 250
                steps)                                         -> ratio "implementation"
  sb3_zoo       SB3 with the RL-Zoo's Pendulum-v1 SAC (lr 1e-3, otherwise SB3's defaults),
                evaluated on the same cadence                  -> ratio "defaults"
Order per seed: sb3_zoo, rl_control, sb3_ours (reversed on odd seeds), so each ratio comes from
adjacent runs. Solved (bench/solve_check.py): the first training-time evaluation >= -200 whose
policy also scores >= -200 over a fresh 100 episodes (same check, same episode seeds, for both
libraries; its time is not counted). Reported per peer: the first crossing and the confirmed
crossing. A run that is not solved within `--max-steps` counts at the time its whole budget
took (never dropped). Median and worst seed. Held-out seeds 100-104: config/pendulum_sac.yaml
was tuned on seeds 0-4. Timing figures only mean something on a quiet machine: the load
average is recorded with every run.

    .venv/bin/python bench/time_to_solve.py --seeds 100 101 102 103 104
"""
from __future__ import annotations

import argparse
import os

from harness import median, run_child, save

PEERS = {
    'rl_control': ['bench/ours_peer.py', 'solve'],
    'sb3_ours': ['bench/sb3_peer.py', 'solve', '--preset', 'ours'],
    'sb3_zoo': ['bench/sb3_peer.py', 'solve', '--preset', 'zoo'],
}


def seconds(row: dict, key: str) -> float:
    """A run's time for `key` ('first_s' / 'solved_s'); its whole budget when never reached."""
    return row[key] if row[key] is not None else row['end_s']


def summarize(rows: list[dict]) -> dict:
    out: dict = {}
    for peer in PEERS:
        sel = [r for r in rows if r['peer'] == peer]
        if not sel:
            continue
        out[peer] = {k: {'median': median([seconds(r, k) for r in sel]),
                         'worst': max(seconds(r, k) for r in sel),
                         'per_seed': [round(seconds(r, k), 2) for r in sel],
                         'steps': [r[k.replace('_s', '_step')] for r in sel],
                         'unsolved': sum(r[k] is None for r in sel)}
                     for k in ('first_s', 'solved_s')}
    for name, peer in (('implementation', 'sb3_ours'), ('defaults', 'sb3_zoo')):
        if peer in out and 'rl_control' in out:
            out[f'ratio_{name}'] = {
                k: {'median': out[peer][k]['median'] / out['rl_control'][k]['median'],
                    'worst': out[peer][k]['worst'] / out['rl_control'][k]['worst']}
                for k in ('first_s', 'solved_s')}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--seeds', type=int, nargs='+', default=[100, 101, 102, 103, 104])
    p.add_argument('--peers', nargs='+', default=list(PEERS), choices=list(PEERS))
    p.add_argument('--max-steps', type=int, default=20000)
    p.add_argument('--eval-every', type=int, default=250,
                   help="SB3's evaluation cadence (rl_control: its config's, 250)")
    p.add_argument('--threshold', type=float, default=-200.0)
    p.add_argument('--check-episodes', type=int, default=100)
    p.add_argument('--cpu', type=int, default=0)
    a = p.parse_args()
    rows = []
    for n, seed in enumerate(a.seeds):
        order = [q for q in ('sb3_zoo', 'rl_control', 'sb3_ours') if q in a.peers]
        for peer in (order if n % 2 == 0 else order[::-1]):
            args = [*PEERS[peer], '--seed', str(seed), '--steps', str(a.max_steps),
                    '--threshold', str(a.threshold), '--check-episodes', str(a.check_episodes)]
            if peer != 'rl_control':
                args += ['--eval-every', str(a.eval_every)]
            load = os.getloadavg()[0]
            res = run_child(args, cpu=a.cpu, timeout=3600)
            rows.append({'peer': peer, 'seed': seed, 'load1_before': load, **res})
            print(f'seed {seed} {peer:10s} first crossing {res["first_s"]} s (step '
                  f'{res["first_step"]}), confirmed {res["solved_s"]} s (step '
                  f'{res["solved_step"]}), checks {[c[1] for c in res["checks"]]}, '
                  f'load {load:.1f}', flush=True)
    summary = summarize(rows)
    for peer in PEERS:
        if peer in summary:
            s = summary[peer]
            print(f'{peer:10s} first crossing median {s["first_s"]["median"]:.1f} s (worst '
                  f'{s["first_s"]["worst"]:.1f}); confirmed median '
                  f'{s["solved_s"]["median"]:.1f} s (worst {s["solved_s"]["worst"]:.1f}); '
                  f'unsolved {s["solved_s"]["unsolved"]}')
    for name in ('implementation', 'defaults'):
        r = summary.get(f'ratio_{name}')
        if r:
            print(f'ratio {name}: confirmed median {r["solved_s"]["median"]:.2f}x, worst '
                  f'{r["solved_s"]["worst"]:.2f}x; first crossing median '
                  f'{r["first_s"]["median"]:.2f}x, worst {r["first_s"]["worst"]:.2f}x')
    loads = [r['load1_before'] for r in rows]
    print(f'load average (1 min) before the runs: {min(loads):.1f}-{max(loads):.1f}')
    save('time_to_solve', {'args': vars(a), 'rows': rows, 'summary': summary,
                           'load1_range': [min(loads), max(loads)]})


if __name__ == '__main__':
    main()
