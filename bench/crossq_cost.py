"""Cost of one CrossQ gradient step (sb3-contrib) against SAC's, on HalfCheetah-v5's sizes.

Why: CrossQ (Bhatt et al., ICLR 2024) would be worth adding only if it won on return per
wall-second here. Its critics are 1024 (sb3-contrib default) or 2048 (RL-Zoo MuJoCo) wide with
batch renormalization and see (s, a) and (s', a') in one batch of 2 x 256, so a gradient step
costs many times SAC's on a CPU. Same process, CPU time, one thread, minimum of 3 rounds.
Needs `pip install sb3-contrib==<the SB3 version>` (not a dependency of this package).

    OMP_NUM_THREADS=1 taskset -c 0 .venv/bin/python bench/crossq_cost.py
"""
import json
import os
import time

import gymnasium as gym
import numpy as np
import torch


def step_ms(model, steps: int = 6, rounds: int = 3) -> float:
    rng = np.random.default_rng(0)
    for _ in range(2000):
        model.replay_buffer.add(rng.normal(size=(1, 17)), rng.normal(size=(1, 17)),
                                rng.uniform(-1, 1, (1, 6)), rng.normal(size=1), np.zeros(1), [{}])
    model._setup_learn(10)
    model.train(gradient_steps=2, batch_size=256)
    best = float('inf')
    for _ in range(rounds):
        t = time.process_time()
        model.train(gradient_steps=steps, batch_size=256)
        best = min(best, (time.process_time() - t) / steps)
    return best * 1e3


def main() -> None:
    from sb3_contrib import CrossQ
    from stable_baselines3 import SAC
    torch.set_num_threads(1)
    env = gym.make('HalfCheetah-v5')
    models = {
        'crossq_rl_zoo (qf 2048x2048, policy_delay 3, lr 1e-3)': CrossQ(
            'MlpPolicy', env, learning_rate=1e-3, policy_delay=3, device='cpu', seed=0,
            policy_kwargs=dict(net_arch=dict(pi=[256, 256], qf=[2048, 2048]))),
        'crossq_default (qf 1024x1024)': CrossQ('MlpPolicy', env, device='cpu', seed=0),
        'sac_default (256x256)': SAC('MlpPolicy', env, device='cpu', seed=0),
    }
    out = {name: step_ms(m) for name, m in models.items()}
    for name, ms in out.items():
        print(f'{name}: {ms:.1f} ms per gradient step (CPU time)')
    print(json.dumps({'ms_per_gradient_step': out, 'load1': os.getloadavg()[0]}))


if __name__ == '__main__':
    main()
