"""Learning-quality benchmarks: train configs over seeds and report deterministic eval returns.

Suites (each run is `rl-control train` in a child process; runs go 2 at a time on 2 cores):
  pendulum   SAC, TD3, DDPG on Pendulum-v1, 20k env steps, 3 seeds: mean eval return at 20k
             (target >= -200 averaged over seeds).
  panda_her  SAC+HER on PandaReach-v3: success rate by 10k env steps (target >= 0.95).
  a2c_dense  A2C on PandaReachDense-v3: eval return curve against a random policy.
  ppo        PPO: config/pendulum_ppo.yaml (RL-Zoo settings, 1e5 steps; held-out seeds 100-102)
             and config/panda_joint_reach_dense_ppo.yaml (seeds 100, 101): final eval return
             (median and worst seed) and success; one curve panel per env.

    .venv/bin/python bench/learning.py pendulum --seeds 0 1 2
Writes bench/results/<suite>.json and bench/results/<suite>.png.
"""
from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
import csv
import json
import math
from pathlib import Path
import subprocess
import sys

from harness import RESULTS, ROOT, child_env, save
import numpy as np

SUITES: dict[str, list[tuple[str, str, list[str]]]] = {
    # (label, config, extra --set overrides)
    'pendulum': [('sac', 'config/pendulum_sac.yaml',
                  ['total_steps=20000', 'target_return=null']),
                 ('td3', 'config/pendulum_td3.yaml', ['total_steps=20000']),
                 ('ddpg', 'config/pendulum_ddpg.yaml', ['total_steps=20000'])],
    'panda_her': [('sac_her', 'config/panda_reach_her_sac.yaml',
                   ['total_steps=10000', 'eval.every=1000', 'eval.episodes=50'])],
    'a2c_dense': [('a2c', 'config/panda_reach_dense_a2c.yaml',
                   ['total_steps=200000', 'eval.every=10000', 'checkpoint_every=null'])],
    'ppo': [('ppo_pendulum', 'config/pendulum_ppo.yaml', ['checkpoint_every=null']),
            ('ppo_panda_dense', 'config/panda_joint_reach_dense_ppo.yaml',
             ['checkpoint_every=null'])],
}
# Seeds a suite entry runs when --seeds is not given (default: 0 1 2). Held-out seeds: the
# configs and tests were tuned on seeds 0-5.
DEFAULT_SEEDS: dict[str, list[int]] = {'ppo_pendulum': [100, 101, 102],
                                       'ppo_panda_dense': [100, 101]}


def config_env(config: str) -> str:
    """The env id a config trains on (for the random-policy floor and the plot panels)."""
    import yaml
    return yaml.safe_load((ROOT / config).read_text())['env']


def read_progress(path: Path) -> list[dict[str, float]]:
    """Rows of progress.csv that carry an evaluation."""
    with path.open() as f:
        rows = [r for r in csv.DictReader(f) if r.get('eval_mean_return') not in ('', None)]
    return [{k: float(v) for k, v in r.items() if v not in ('', None)} for r in rows]


def run_one(label: str, config: str, sets: list[str], seed: int, out: Path) -> dict:
    """Train one config/seed with the CLI; return its eval history."""
    cmd = [sys.executable, '-m', 'rl_control.cli', 'train', '--config', config,
           '--out', str(out), '--set', f'seed={seed}']
    for s in sets:
        cmd += ['--set', s]
    env = child_env()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f'{" ".join(cmd)} failed:\n{proc.stderr[-3000:]}')
    return {'label': label, 'seed': seed, 'history': read_progress(out / 'progress.csv')}


def random_return(env_id: str, episodes: int = 20) -> float:
    """Mean return of a uniform random policy, the floor a learning curve must clear."""
    from rl_control.envs.factory import make_env
    env = make_env(env_id, seed=123)
    total = []
    for ep in range(episodes):
        env.reset(seed=ep)
        ret, done = 0.0, False
        while not done:
            _, r, term, trunc, _ = env.step(env.action_space.sample())
            ret, done = ret + float(r), term or trunc
        total.append(ret)
    return float(np.mean(total))


def plot(suite: str, runs: list[dict], random_rets: dict[str, float]) -> Path:
    """Mean ± std eval return over seeds per algorithm, one panel per env, random floor."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    envs = list(dict.fromkeys(r['env'] for r in runs))
    fig, axes = plt.subplots(1, len(envs), figsize=(6 * len(envs), 3.8), squeeze=False)
    for ax, env_id in zip(axes[0], envs, strict=True):
        env_runs = [r for r in runs if r['env'] == env_id]
        for label in dict.fromkeys(r['label'] for r in env_runs):
            hs = [r['history'] for r in env_runs if r['label'] == label]
            n = min(len(h) for h in hs)
            steps = np.array([hs[0][i]['step'] for i in range(n)])
            rets = np.array([[h[i]['eval_mean_return'] for i in range(n)] for h in hs])
            ax.plot(steps, rets.mean(0), label=f'{label} ({len(hs)} seeds)')
            ax.fill_between(steps, rets.mean(0) - rets.std(0), rets.mean(0) + rets.std(0),
                            alpha=0.2)
        if env_id in random_rets:
            ax.axhline(random_rets[env_id], color='gray', ls='--', label='random policy')
        ax.set_xlabel('env steps')
        ax.set_ylabel('deterministic eval return')
        ax.set_title(env_id)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f'rl_control: {suite}')
    path = RESULTS / f'{suite}.png'
    fig.tight_layout()
    fig.savefig(path, dpi=80 if len(envs) > 1 else 120)
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('suite', choices=sorted(SUITES))
    p.add_argument('--seeds', type=int, nargs='+', default=None,
                   help='seeds for every entry (default: the entry\'s own, else 0 1 2)')
    p.add_argument('--jobs', type=int, default=2)
    a = p.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    jobs = [(label, cfg, sets, seed, RESULTS / 'runs' / f'{a.suite}_{label}_s{seed}')
            for label, cfg, sets in SUITES[a.suite]
            for seed in (a.seeds or DEFAULT_SEEDS.get(label, [0, 1, 2]))]
    with ThreadPoolExecutor(a.jobs) as pool:
        runs = list(pool.map(lambda j: run_one(*j), jobs))
    envs = {label: config_env(cfg) for label, cfg, _ in SUITES[a.suite]}
    for r in runs:
        r['env'] = envs[r['label']]
    summary = {}
    for label in dict.fromkeys(r['label'] for r in runs):
        finals = [r['history'][-1] for r in runs if r['label'] == label]
        rets = [f['eval_mean_return'] for f in finals]
        succ = [f['success_rate'] for f in finals
                if 'success_rate' in f and not math.isnan(f['success_rate'])]
        summary[label] = {'final_step': finals[0]['step'], 'mean_return': float(np.mean(rets)),
                          'median_return': float(np.median(rets)),
                          'worst_return': float(np.min(rets)), 'per_seed': rets,
                          'seeds': [r['seed'] for r in runs if r['label'] == label],
                          'success_rate': float(np.mean(succ)) if succ else None,
                          'success_per_seed': succ or None,
                          'wall_s': [f['wall_s'] for f in finals]}
        print(f'{label}: eval return at {int(finals[0]["step"])} steps = median '
              f'{np.median(rets):.1f}, worst {np.min(rets):.1f} (seeds: '
              f'{", ".join(f"{x:.1f}" for x in rets)})'
              + (f', success {", ".join(f"{x:.2f}" for x in succ)}' if succ else ''))
    random_rets = {}
    for env_id in dict.fromkeys(envs.values()):
        random_rets[env_id] = random_return(env_id)
        print(f'random policy on {env_id}: {random_rets[env_id]:.1f}')
    png = plot(a.suite, runs, random_rets)
    out = save(a.suite, {'summary': summary, 'random_return': random_rets, 'runs': runs})
    print(f'wrote {out} and {png}')
    print(json.dumps(summary))


if __name__ == '__main__':
    main()
