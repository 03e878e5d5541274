"""Child process: Stable-Baselines3 SAC on Pendulum-v1, the peer rl_control is measured against.

Modes:
  throughput  SB3 SAC defaults (256x256, batch 256, lr 3e-4, learning_starts 100, 1 grad step per
              env step); prints env steps/s over `--steps` env steps of `learn()`.
  solve       RL-Zoo's Pendulum SAC (lr 1e-3, otherwise defaults); evaluates 10 deterministic
              episodes every 1000 steps and prints the wall time from process start (BENCH_T0)
              until the mean eval return first reaches `--threshold`.
"""
import argparse
import json
import os
import time

T0 = float(os.environ.get('BENCH_T0', time.time()))

import gymnasium as gym  # noqa: E402
from stable_baselines3 import SAC  # noqa: E402
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback  # noqa: E402
from stable_baselines3.common.monitor import Monitor  # noqa: E402
import torch  # noqa: E402


class _StopAtThreshold(BaseCallback):
    def __init__(self, threshold: float, record: dict):
        super().__init__()
        self.threshold, self.record = threshold, record

    def _on_step(self) -> bool:
        ret = self.parent.last_mean_reward
        self.record['evals'].append([self.num_timesteps, float(ret), time.time() - T0])
        if ret >= self.threshold:
            self.record['solved_s'] = time.time() - T0
            self.record['solved_step'] = self.num_timesteps
            return False
        return True


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument('mode', choices=['throughput', 'solve'])
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--steps', type=int, default=1000)
    p.add_argument('--threshold', type=float, default=-200.0)
    a = p.parse_args()
    torch.set_num_threads(1)
    env = gym.make('Pendulum-v1')
    if a.mode == 'throughput':
        # Timed: building the agent + `steps` env steps (the same span ours_peer.py times).
        t = time.perf_counter()
        model = SAC('MlpPolicy', env, seed=a.seed, device='cpu', verbose=0)
        model.learn(total_timesteps=a.steps)
        dt = time.perf_counter() - t
        print(json.dumps({'impl': 'sb3', 'steps': a.steps, 'wall_s': dt,
                          'steps_per_s': a.steps / dt}))
        return
    model = SAC('MlpPolicy', env, learning_rate=1e-3, seed=a.seed, device='cpu', verbose=0)
    record: dict = {'evals': [], 'solved_s': None, 'solved_step': None}
    eval_env = Monitor(gym.make('Pendulum-v1'))
    cb = EvalCallback(eval_env, n_eval_episodes=10, eval_freq=1000, deterministic=True,
                      verbose=0, callback_after_eval=_StopAtThreshold(a.threshold, record))
    model.learn(total_timesteps=a.steps, callback=cb)
    print(json.dumps({'impl': 'sb3', 'seed': a.seed, **record}))


if __name__ == '__main__':
    main()
