"""The update-only floor: one SAC gradient step (sampling + update), rl_control vs SB3 train().

Same settings on both sides: batch 256, twin critics, automatic entropy, CPU, one torch thread,
Pendulum-v1's sizes by default (obs 3, act 1), for each net size in `--hidden` (default 64x64,
the project's Pendulum config, and 256x256, SB3's default). Both run in one process, in
interleaved rounds of `--steps` gradient steps (order alternating), so drift on a shared
machine hits both alike; the minimum over rounds is the floor (the median is printed too).
`--clock cpu` measures process CPU time instead of wall time: on a loaded machine it does not
count the time the process waits for a core (it still sees cache contention). `--ops` also
counts the ATen operators one gradient step dispatches, and how many are matrix products (the
torch profiler, load-independent): on a CPU, small nets cost per operator, not per FLOP.

    OMP_NUM_THREADS=1 taskset -c 0 .venv/bin/python bench/sac_update_speed.py --rounds 20
"""
from __future__ import annotations

import argparse
from collections.abc import Callable
import os
import statistics
import time

import numpy as np
import torch

from rl_control.algos.buffers import ReplayBuffer
from rl_control.algos.sac import SAC, SACConfig


def ours(obs_dim: int, act_dim: int, bs: int, hidden: list[int]) -> Callable[[int], None]:
    agent = SAC(obs_dim, act_dim, SACConfig(batch_size=bs, hidden_sizes=tuple(hidden)), seed=0)
    buf = ReplayBuffer(obs_dim, act_dim, 10_000, seed=0)
    rng = np.random.default_rng(0)
    n = 4000
    buf.add(rng.normal(size=(n, obs_dim)), rng.uniform(-1, 1, (n, act_dim)),
            rng.normal(size=n), rng.normal(size=(n, obs_dim)), np.zeros(n), np.zeros(n))

    def run(steps: int) -> None:
        for _ in range(steps):
            agent.update(buf.sample(bs))
    return run


def sb3(obs_dim: int, act_dim: int, bs: int, hidden: list[int]) -> Callable[[int], None]:
    import gymnasium as gym
    from stable_baselines3 import SAC as SB3SAC

    class Dummy(gym.Env):
        observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
        action_space = gym.spaces.Box(-1, 1, (act_dim,), np.float32)

        def reset(self, seed=None, options=None):
            return np.zeros(obs_dim, np.float32), {}

        def step(self, a):
            return np.zeros(obs_dim, np.float32), 0.0, False, False, {}

    model = SB3SAC('MlpPolicy', Dummy(), batch_size=bs, device='cpu', seed=0,
                   policy_kwargs=dict(net_arch=list(hidden)))
    rng = np.random.default_rng(0)
    for _ in range(4000):
        model.replay_buffer.add(rng.normal(size=(1, obs_dim)), rng.normal(size=(1, obs_dim)),
                                rng.uniform(-1, 1, (1, act_dim)), rng.normal(size=1),
                                np.zeros(1), [{}])
    model._setup_learn(1000)

    def run(steps: int) -> None:
        # As SB3's learn() calls it at train_freq 1: one train() per gradient step.
        for _ in range(steps):
            model.train(gradient_steps=1, batch_size=bs)
    return run


def count_ops(run: Callable[[int], None], steps: int = 10) -> dict:
    """ATen operators per gradient step (all, and matrix products), from the torch profiler."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run(steps)
    events = prof.key_averages()
    mm = ('aten::mm', 'aten::addmm', 'aten::bmm', 'aten::baddbmm')
    return {'aten_ops': sum(e.count for e in events if e.key.startswith('aten::')) / steps,
            'matmuls': sum(e.count for e in events if e.key in mm) / steps}


def measure(a: argparse.Namespace, hidden: list[int]) -> dict:
    clock = time.process_time if a.clock == 'cpu' else time.perf_counter
    runs = {'rl_control': ours(a.obs_dim, a.act_dim, a.batch, hidden),
            'sb3': sb3(a.obs_dim, a.act_dim, a.batch, hidden)}
    times: dict[str, list[float]] = {k: [] for k in runs}
    for run in runs.values():
        run(10)  # warm-up
    names = list(runs)
    for r in range(a.rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            t0 = clock()
            runs[name](a.steps)
            times[name].append((clock() - t0) / a.steps * 1e3)
    out = {k: {'min_ms': min(v), 'median_ms': statistics.median(v)} for k, v in times.items()}
    if a.ops:
        for name, run in runs.items():
            out[name].update(count_ops(run))
    out['speedup_min'] = out['sb3']['min_ms'] / out['rl_control']['min_ms']
    out['speedup_median'] = out['sb3']['median_ms'] / out['rl_control']['median_ms']
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--obs-dim', type=int, default=3)
    p.add_argument('--act-dim', type=int, default=1)
    p.add_argument('--hidden', nargs='+', default=['64,64', '256,256'])
    p.add_argument('--rounds', type=int, default=20)
    p.add_argument('--steps', type=int, default=20, help='gradient steps per round')
    p.add_argument('--batch', type=int, default=256)
    p.add_argument('--clock', choices=['wall', 'cpu'], default='wall')
    p.add_argument('--ops', action='store_true', help='also count ATen operators per step')
    a = p.parse_args()
    torch.set_num_threads(1)
    results = {}
    for h in a.hidden:
        hidden = [int(x) for x in h.split(',')]
        load = os.getloadavg()[0]
        res = measure(a, hidden)
        res['load1_before'], res['load1_after'] = load, os.getloadavg()[0]
        results['x'.join(map(str, hidden))] = res
        print(f'{"x".join(map(str, hidden)):>8}: rl_control min {res["rl_control"]["min_ms"]:6.3f}'
              f' (median {res["rl_control"]["median_ms"]:6.3f}) ms, SB3 train() min '
              f'{res["sb3"]["min_ms"]:6.3f} (median {res["sb3"]["median_ms"]:6.3f}) ms per '
              f'gradient step: {res["speedup_min"]:.2f}x (median {res["speedup_median"]:.2f}x); '
              f'{a.clock} clock, load {load:.1f}-{res["load1_after"]:.1f}', flush=True)
        if a.ops:
            print(f'{"":>8}  ATen ops per step: rl_control {res["rl_control"]["aten_ops"]:.0f} '
                  f'({res["rl_control"]["matmuls"]:.0f} matmuls), SB3 '
                  f'{res["sb3"]["aten_ops"]:.0f} ({res["sb3"]["matmuls"]:.0f} matmuls)')
    from harness import save
    save('sac_update_speed', {'args': vars(a), 'results': results})


if __name__ == '__main__':
    main()
