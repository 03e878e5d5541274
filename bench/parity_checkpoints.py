"""Every evaluation checkpoint of the MuJoCo parity runs: Mann-Whitney per env and step, Holm.

bench/mujoco_parity.py's report reads two budgets (30k, 50k); this reads every checkpoint of the
same run files (10k..50k), with the exact two-sided Mann-Whitney U test of
`rl_control.train.aggregate` and Holm's step-down correction over all the tests shown, so that a
difference at one checkpoint is weighed against how many were looked at:

    .venv/bin/python bench/parity_checkpoints.py [--name mujoco_parity]
"""
from __future__ import annotations

import argparse
import json
import sys

from harness import RESULTS, ROOT
import numpy as np

sys.path.insert(0, str(ROOT / 'src'))
from rl_control.train.aggregate import holm, mann_whitney  # noqa: E402

ENVS = ('HalfCheetah-v5', 'Hopper-v5')


def checkpoints(name: str) -> list[dict]:
    """One row per env and evaluation step with both libraries' returns and the test."""
    rows = []
    for env in ENVS:
        runs = {impl: [json.loads(f.read_text())
                       for f in sorted((RESULTS / name).glob(f'{env}_{impl}_s*.json'))]
                for impl in ('ours', 'sb3')}
        if not runs['ours'] or not runs['sb3']:
            continue
        for k, e in enumerate(runs['ours'][0]['evals']):
            ours = [r['evals'][k]['mean'] for r in runs['ours'] if len(r['evals']) > k]
            sb3 = [r['evals'][k]['mean'] for r in runs['sb3'] if len(r['evals']) > k]
            rows.append({'env': env, 'step': e['step'], 'ours': ours, 'sb3': sb3,
                         **mann_whitney(ours, sb3)})
    for row, adj in zip(rows, holm([r['p'] for r in rows]), strict=True):
        row['holm_p'] = float(adj)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--name', default='mujoco_parity', help='bench/results/<name>/: the runs')
    rows = checkpoints(p.parse_args().name)
    print('| env | steps | runs ours/SB3 | median ours | median SB3 | p | Holm p '
          '| P(ours > SB3) |\n|---|---|---|---|---|---|---|---|')
    for r in rows:
        print(f"| {r['env']} | {r['step']:,} | {len(r['ours'])}/{len(r['sb3'])} | "
              f"{np.median(r['ours']):.0f} | {np.median(r['sb3']):.0f} | {r['p']:.3f} | "
              f"{r['holm_p']:.3f} | {r['prob_a_better']:.2f} |")


if __name__ == '__main__':
    main()
