"""Env steps/s against n_envs, sync vs async vector envs (rl_control.envs.factory.make_vec_env).

Random actions (seeded), SAME_STEP autoreset, the vector env exactly as training builds it;
each (env, kind, n_envs) is timed in a fresh child process, not pinned (async workers need
their own cores), one thread each; configurations alternate within a repeat and the median
over repeats is reported, with the load average before and after (this machine is shared).

    .venv/bin/python bench/env_scaling.py --steps 2000 --repeats 3
    .venv/bin/python bench/env_scaling.py --child rl_control/FrankaReach-v1 async 4 --steps 2000

On a 2-core machine expect async to help little: 2 workers can at best halve the env time, and
the main process (actions, IPC) shares the same 2 cores; 4 workers on 2 cores only add
switching. The async gain grows with cores and with the cost of one env step.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import sys
import time

sys.path.insert(0, str(Path(__file__).resolve().parent))

ENVS = ('rl_control/FrankaReach-v1', 'rl_control/PandaJointReach-v0')
KINDS = ('sync', 'async')
N_ENVS = (1, 2, 4)


def child(env_id: str, kind: str, n: int, steps: int, seed: int = 0) -> dict:
    """Build the vector env, warm up, then time `steps` vector steps (n * steps env steps)."""
    import numpy as np

    from rl_control.envs.factory import make_vec_env

    t0 = time.perf_counter()
    envs = make_vec_env(env_id, n, seed, kind=kind)
    envs.reset(seed=seed)
    build_s = time.perf_counter() - t0
    rng = np.random.default_rng(seed)
    shape = (n, *envs.single_action_space.shape)
    for _ in range(20):
        envs.step(rng.uniform(-1, 1, shape).astype(np.float32))
    actions = rng.uniform(-1, 1, (steps, *shape)).astype(np.float32)
    t0 = time.perf_counter()
    for a in actions:
        envs.step(a)
    wall = time.perf_counter() - t0
    envs.close()
    return {'env_id': env_id, 'kind': kind, 'n_envs': n, 'vector_steps': steps,
            'wall_s': wall, 'env_steps_per_s': n * steps / wall, 'build_s': build_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--steps', type=int, default=2000, help='vector steps per timed run')
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--envs', nargs='+', default=list(ENVS))
    ap.add_argument('--n-envs', type=int, nargs='+', default=list(N_ENVS))
    ap.add_argument('--child', nargs=3, metavar=('ENV', 'KIND', 'N'))
    args = ap.parse_args()
    if args.child:
        env_id, kind, n = args.child
        print(json.dumps(child(env_id, kind, int(n), args.steps)))
        return

    from harness import median, run_child, save

    runs: dict[str, list[float]] = {}
    load_before = os.getloadavg()
    for r in range(args.repeats):
        for env_id in args.envs:
            for n in args.n_envs:
                for kind in KINDS:
                    res = run_child([__file__, '--child', env_id, kind, str(n), '--steps',
                                     str(args.steps)], cpu=None)
                    key = f'{env_id}|{kind}|{n}'
                    runs.setdefault(key, []).append(res['env_steps_per_s'])
                    print(f'repeat {r}: {env_id:28s} {kind:5s} n_envs={n}: '
                          f'{res["env_steps_per_s"]:8.0f} env steps/s '
                          f'(build {res["build_s"]:.2f} s)', flush=True)
    load_after = os.getloadavg()
    med = {k: median(v) for k, v in runs.items()}
    lines = ['| env | n_envs | sync env steps/s | async env steps/s | async / sync |',
             '|---|---|---|---|---|']
    for env_id in args.envs:
        for n in args.n_envs:
            s, a = med[f'{env_id}|sync|{n}'], med[f'{env_id}|async|{n}']
            lines.append(f'| `{env_id}` | {n} | {s:.0f} | {a:.0f} | {a / s:.2f}x |')
    table = '\n'.join(lines)
    payload = {'steps': args.steps, 'repeats': args.repeats, 'cpus': os.cpu_count(),
               'loadavg_before': load_before, 'loadavg_after': load_after, 'runs': runs,
               'median': med, 'table': table}
    path = save('env_scaling', payload)
    print(table)
    print(f'{os.cpu_count()} cores; load average before {load_before}, after {load_after} '
          f'-> {path}')


if __name__ == '__main__':
    main()
