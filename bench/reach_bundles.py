"""Train the shipped reach bundles on several seeds, benchmark every seed, ship the median.

For each seed: `rl-control train --config CONFIG --set seed=S` (one core, one thread), then
`rl-control bench-reach` on each engine (mujoco, pybullet: in process; ros: sim_robot +
policy_server over DDS in lockstep), all on the 100 goals of config/reach_goals.yaml. Every
seed's row is kept (failed runs too) in bench/results/reach_<name>.csv with the time from
process start to the first evaluation at >= 0.95 (held) success. An engine named
`ENGINE+rand` runs bench-reach `--randomized` (the bundle's domain randomization) on ENGINE.
`--ship models/NAME` copies the MEDIAN seed's bundle (by held success at the bundle's success
distance on MuJoCo, then final distance; the typical seed, not the best) and records in its
policy.yaml which seeds there were and why this one.

    .venv/bin/python bench/reach_bundles.py --config config/franka_reach_sac.yaml \
        --name panda_reach_sac --seeds 100 101 102 --ship models/panda_reach_sac
"""
from __future__ import annotations

import argparse
import csv
import json
import os
from pathlib import Path
import shutil
import subprocess
import sys
import time

import yaml

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, '-m', 'rl_control.cli']
# bench-reach summary figures kept per engine (see envs/reach_metrics.py for their meaning)
KEYS = ('success', 'held_1cm', 'held_2cm', 'held_5cm', 'reached_2cm', 'settle_time_s_median',
        'settle_time_s_max', 'unsettled', 'final_distance_median', 'final_distance_max',
        'last_second_distance_mean_median', 'last_second_path_median', 'path_ratio_median',
        'final_joint_speed_median', 'final_joint_speed_max', 'time_to_goal_s_median',
        'reflexes')


def run(cmd: list[str], log: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS='1', MPLBACKEND='Agg')
    with open(log, 'w') as f:
        return subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=f,
                              text=True, check=False)


def first_success(progress: Path, target: float = 0.95) -> float | None:
    """Wall time (from process start) of the first evaluation at >= target success."""
    with open(progress) as f:
        for row in csv.DictReader(f):
            if row.get('success_rate') and float(row['success_rate']) >= target:
                return float(row['wall_s'])
    return None


def bench(a: argparse.Namespace, run_dir: Path, result: Path, engine: str) -> dict:
    """`rl-control bench-reach` on one engine; its summary ({} when it failed)."""
    if a.reuse and result.exists():
        return json.loads(result.read_text())['summary']
    name, _, rand = engine.partition('+')
    bcmd = [*CLI, 'bench-reach', str(run_dir), '--engine', name, '--json', '--out',
            str(result)] + (['--randomized'] if rand else [])
    if a.robot:
        bcmd += ['--robot', a.robot]
    res = run(bcmd, result.with_suffix('.log'))
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith('{')]
    return json.loads(lines[-1]) if res.returncode == 0 and lines else {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--config', required=True)
    ap.add_argument('--name', required=True, help='result name, e.g. panda_reach_sac')
    ap.add_argument('--seeds', type=int, nargs='+', default=[100, 101, 102])
    ap.add_argument('--set', action='append', default=[], help='extra config overrides')
    ap.add_argument('--robot', default=None, help='bench-reach --robot (default: bundle)')
    ap.add_argument('--engines', nargs='+', default=['mujoco', 'pybullet', 'ros'])
    ap.add_argument('--out', default='runs/reach_bundles')
    ap.add_argument('--ship', default=None, help='copy the median seed bundle here')
    ap.add_argument('--reuse', action='store_true',
                    help='keep what an earlier run of the same name left: a trained seed is '
                         'not retrained, an engine with its JSON is not rerun')
    a = ap.parse_args()
    out = ROOT / a.out / a.name
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in a.seeds:
        run_dir = out / f'seed_{seed}'
        row_file = out / f'seed_{seed}_row.json'
        cmd = [*CLI, 'train', '--config', a.config, '--set', f'seed={seed}', '--out',
               str(run_dir), '--no-progress'] + [x for s in a.set for x in ('--set', s)]
        if a.reuse and row_file.exists() and (run_dir / 'bundle').exists():
            row = json.loads(row_file.read_text())
        else:
            t0 = time.time()
            train = run(cmd, out / f'seed_{seed}_train.log')
            row = {'seed': seed, 'train_rc': train.returncode,
                   'train_wall_s': time.time() - t0, 'time_to_0.95_s': None,
                   'command': ' '.join(cmd[2:])}
        if row['train_rc'] == 0:
            row['time_to_0.95_s'] = first_success(run_dir / 'progress.csv')
            for engine in a.engines:
                summary = bench(a, run_dir, out / f'seed_{seed}_{engine}.json', engine)
                for k in KEYS:
                    row[f'{engine}_{k}'] = summary.get(k)
                if engine == 'ros':
                    row['ros_rejected'] = summary.get('rejected')
        row_file.write_text(json.dumps(row))
        rows.append(row)
        print(json.dumps(row), flush=True)
    results = ROOT / 'bench' / 'results'
    results.mkdir(parents=True, exist_ok=True)
    keys = sorted({k for r in rows for k in r}, key=lambda k: (k != 'seed', k))
    with open(results / f'reach_{a.name}.csv', 'w', newline='') as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    ok = [r for r in rows if r['train_rc'] == 0 and r.get('mujoco_success') is not None]
    if not ok:
        sys.exit('no seed trained and benchmarked')
    ranked = sorted(ok, key=lambda r: (r['mujoco_success'],
                                       -(r['mujoco_final_distance_median'] or 1e9)))
    median = ranked[(len(ranked) - 1) // 2]
    print(f"median seed: {median['seed']} (of {[r['seed'] for r in rows]})")
    if a.ship:
        dst = ROOT / a.ship
        if dst.exists():
            shutil.rmtree(dst)
        shutil.copytree(out / f"seed_{median['seed']}" / 'bundle', dst)
        spec_path = dst / 'policy.yaml'
        spec = yaml.safe_load(spec_path.read_text())
        spec['shipped'] = {
            'why': 'the median seed by held success on MuJoCo (then final distance), not the '
                   'best', 'seed': median['seed'], 'seeds': [r['seed'] for r in rows],
            'results': f'bench/results/reach_{a.name}.csv',
            'command': 'python bench/reach_bundles.py ' + ' '.join(sys.argv[1:])}
        from rl_control.bundle.atomic import atomic_write_text
        from rl_control.bundle.io import dump_yaml
        atomic_write_text(spec_path, dump_yaml(spec))
        print(f'shipped {dst}')


if __name__ == '__main__':
    main()
