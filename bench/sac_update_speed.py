"""Time one SAC gradient step (minibatch sampling + update): rl_control vs SB3's SAC.train().

Same settings: 256x256 nets, batch 256, twin critics, auto entropy, CPU, one torch thread.
Both run in one process, in interleaved rounds, so machine load hits both alike; the minimum
over rounds is the least disturbed estimate.
    .venv/bin/python bench/sac_update_speed.py --obs-dim 17 --act-dim 6 --rounds 15
"""
from __future__ import annotations

import argparse
from collections.abc import Callable
import statistics
import time

import numpy as np
import torch

from rl_control.algos.buffers import ReplayBuffer
from rl_control.algos.sac import SAC, SACConfig


def ours(obs_dim: int, act_dim: int, bs: int) -> Callable[[int], None]:
    agent = SAC(obs_dim, act_dim, SACConfig(batch_size=bs), seed=0)
    buf = ReplayBuffer(obs_dim, act_dim, 10_000, seed=0)
    rng = np.random.default_rng(0)
    n = 4000
    buf.add(rng.normal(size=(n, obs_dim)), rng.uniform(-1, 1, (n, act_dim)),
            rng.normal(size=n), rng.normal(size=(n, obs_dim)), np.zeros(n), np.zeros(n))

    def run(steps: int) -> None:
        for _ in range(steps):
            agent.update(buf.sample(bs))
    return run


def sb3(obs_dim: int, act_dim: int, bs: int) -> Callable[[int], None]:
    import gymnasium as gym
    from stable_baselines3 import SAC as SB3SAC

    class Dummy(gym.Env):
        observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
        action_space = gym.spaces.Box(-1, 1, (act_dim,), np.float32)

        def reset(self, seed=None, options=None):
            return np.zeros(obs_dim, np.float32), {}

        def step(self, a):
            return np.zeros(obs_dim, np.float32), 0.0, False, False, {}

    model = SB3SAC('MlpPolicy', Dummy(), batch_size=bs, device='cpu', seed=0)
    rng = np.random.default_rng(0)
    for _ in range(4000):
        model.replay_buffer.add(rng.normal(size=(1, obs_dim)), rng.normal(size=(1, obs_dim)),
                                rng.uniform(-1, 1, (1, act_dim)), rng.normal(size=1),
                                np.zeros(1), [{}])
    model._setup_learn(1000)

    def run(steps: int) -> None:
        model.train(gradient_steps=steps, batch_size=bs)
    return run


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument('--obs-dim', type=int, default=17)
    p.add_argument('--act-dim', type=int, default=6)
    p.add_argument('--rounds', type=int, default=15)
    p.add_argument('--steps', type=int, default=20, help='gradient steps per round')
    p.add_argument('--batch', type=int, default=256)
    a = p.parse_args()
    torch.set_num_threads(1)
    runs = {'rl_control': ours(a.obs_dim, a.act_dim, a.batch),
            'sb3': sb3(a.obs_dim, a.act_dim, a.batch)}
    times: dict[str, list[float]] = {k: [] for k in runs}
    for run in runs.values():
        run(10)  # warm-up
    for _ in range(a.rounds):
        for name, run in runs.items():
            t0 = time.perf_counter()
            run(a.steps)
            times[name].append((time.perf_counter() - t0) / a.steps * 1e3)
    for name, ts in times.items():
        print(f'{name:>10}: min {min(ts):6.2f}  median {statistics.median(ts):6.2f} ms/step')
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f'speedup (min): {min(times["sb3"]) / min(times["rl_control"]):.2f}x  '
          f'(median): {med["sb3"] / med["rl_control"]:.2f}x')


if __name__ == '__main__':
    main()
