"""Child process: rl_control on Pendulum-v1, measured against `sb3_peer.py`.

Modes:
  throughput  `--config` (default config/bench/pendulum_sac_sb3_defaults.yaml) for `--steps`
              env steps with evaluation off; prints env steps/s of the training loop.
  solve       `--config` (default config/pendulum_sac.yaml, the project's own defaults); prints
              the wall time from process start (BENCH_T0) until the deterministic eval return
              first reaches `--threshold`.
"""
import argparse
import json
import os
import tempfile
import time

T0 = float(os.environ.get('BENCH_T0', time.time()))

import torch  # noqa: E402

from rl_control.train.config import load_config  # noqa: E402
from rl_control.train.learn import train  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument('mode', choices=['throughput', 'solve'])
    p.add_argument('--config', default=None)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--steps', type=int, default=1000)
    p.add_argument('--threshold', type=float, default=-200.0)
    p.add_argument('--set', action='append', default=[])
    a = p.parse_args()
    torch.set_num_threads(1)
    default = ('config/bench/pendulum_sac_sb3_defaults.yaml' if a.mode == 'throughput'
               else 'config/pendulum_sac.yaml')
    overrides = [f'seed={a.seed}', f'total_steps={a.steps}', *a.set]
    if a.mode == 'throughput':
        # One evaluation, at the last step: its callback closes the timed span (building the
        # agent + `steps` env steps), so the final bundle, plot and TensorBoard flush that
        # follow are not counted, as SB3's model.save() is not counted on its side.
        overrides += [f'eval.every={a.steps}', 'eval.episodes=1', 'checkpoint_every=null',
                      'target_return=null']
    cfg = load_config(a.config or default, overrides)
    record: dict = {'evals': [], 'solved_s': None, 'solved_step': None}

    def on_eval(info: dict) -> bool:
        record.setdefault('first_eval_t', time.perf_counter())
        ret = info['eval_mean_return']
        record['evals'].append([info['step'], ret, time.time() - T0])
        if a.mode == 'solve' and ret >= a.threshold:
            record['solved_s'] = time.time() - T0
            record['solved_step'] = info['step']
            return False
        return True

    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        result = train(cfg, out, progress=False, callbacks=[on_eval])
        dt = time.perf_counter() - t
    if a.mode == 'throughput':
        span = record['first_eval_t'] - t
        print(json.dumps({'impl': 'rl_control', 'steps': result.steps, 'wall_s': span,
                          'whole_train_call_s': dt, 'steps_per_s': result.steps / span}))
    else:
        print(json.dumps({'impl': 'rl_control', 'seed': a.seed, **record}))


if __name__ == '__main__':
    main()
