"""Child process: Stable-Baselines3 SAC on Pendulum-v1, the peer rl_control is measured against.

Modes:
  throughput  `--preset defaults`: SB3's SAC defaults (256x256, batch 256, lr 3e-4,
              learning_starts 100, 1 gradient step per env step), or `--preset ours` (below),
              for `--steps` env steps, doing what `rl-control train` does with the matching
              config: 10 deterministic evaluation episodes every `--eval-every` steps
              (EvalCallback), TensorBoard logging, and the model saved at the end. Prints the
              loop's time; the whole process is timed by the parent (bench/sac_throughput.py).
  solve       `--preset ours`: SB3 with config/pendulum_sac.yaml's hyperparameters (64x64, lr
              1e-3, tau 0.05, batch 256, learning_starts 500, the rest SB3 defaults as in that
              config); `--preset zoo`: the RL-Zoo's Pendulum-v1 SAC (lr 1e-3, the rest SB3
              defaults). Both evaluate 10 deterministic episodes every `--eval-every` steps
              (EvalCallback) and follow bench/solve_check.py's protocol.
"""
import argparse
import json
import os
import tempfile
import time

T0 = float(os.environ.get('BENCH_T0', time.time()))

import gymnasium as gym  # noqa: E402
from stable_baselines3 import SAC  # noqa: E402
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback  # noqa: E402
from stable_baselines3.common.monitor import Monitor  # noqa: E402
import torch  # noqa: E402

# What config/pendulum_sac.yaml sets, in SB3's names; everything else is SB3's default there
# and here (gamma 0.99, buffer 1e6, train_freq 1, gradient_steps 1, auto entropy, 2 critics).
PRESETS = {
    'ours': dict(learning_rate=1e-3, tau=0.05, batch_size=256, learning_starts=500,
                 policy_kwargs=dict(net_arch=[64, 64])),
    'zoo': dict(learning_rate=1e-3),
}


class _Solve(BaseCallback):
    """After each EvalCallback evaluation: the shared solve protocol (stops when solved)."""

    def __init__(self, clock):
        super().__init__()
        self.clock = clock

    def _on_step(self) -> bool:
        return self.clock.on_eval(self.num_timesteps, self.parent.last_mean_reward,
                                  lambda x: self.model.predict(x, deterministic=True)[0])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument('mode', choices=['throughput', 'solve'])
    p.add_argument('--preset', choices=[*sorted(PRESETS), 'defaults'], default='ours',
                   help="hyperparameters ('defaults': SB3's own, throughput mode only)")
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--steps', type=int, default=1000)
    p.add_argument('--eval-every', type=int, default=250)
    p.add_argument('--threshold', type=float, default=-200.0)
    p.add_argument('--check-episodes', type=int, default=100)
    a = p.parse_args()
    torch.set_num_threads(1)
    env = gym.make('Pendulum-v1')
    if a.mode == 'throughput':
        with tempfile.TemporaryDirectory() as out:
            t = time.perf_counter()
            kwargs = {} if a.preset == 'defaults' else PRESETS[a.preset]
            model = SAC('MlpPolicy', env, seed=a.seed, device='cpu', verbose=0,
                        tensorboard_log=out, **kwargs)
            cb = EvalCallback(Monitor(gym.make('Pendulum-v1')), n_eval_episodes=10,
                              eval_freq=a.eval_every, deterministic=True, verbose=0)
            model.learn(total_timesteps=a.steps, callback=cb)
            dt = time.perf_counter() - t
            model.save(os.path.join(out, 'model'))
        print(json.dumps({'impl': 'sb3', 'steps': a.steps, 'loop_s': dt,
                          'steps_per_s': a.steps / dt, 'load1': os.getloadavg()[0]}))
        return
    from solve_check import SolveClock
    clock = SolveClock(T0, a.threshold, a.check_episodes)
    model = SAC('MlpPolicy', env, seed=a.seed, device='cpu', verbose=0, **PRESETS[a.preset])
    cb = EvalCallback(Monitor(gym.make('Pendulum-v1')), n_eval_episodes=10,
                      eval_freq=a.eval_every, deterministic=True, verbose=0,
                      callback_after_eval=_Solve(clock))
    model.learn(total_timesteps=a.steps, callback=cb)
    record = clock.finish(model.num_timesteps)
    with tempfile.TemporaryDirectory() as out:  # as rl-control writes its bundle at the end
        model.save(os.path.join(out, 'model'))
    print(json.dumps({'impl': f'sb3_{a.preset}', 'seed': a.seed, **record,
                      'exit_s': time.time() - T0 - clock.check_s}))


if __name__ == '__main__':
    main()
