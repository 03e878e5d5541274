"""Child process: rl_control SAC on Pendulum-v1, measured against `sb3_peer.py`.

Mode `solve`: `--config` (default config/pendulum_sac.yaml, the project's own) trained as
`rl-control train` trains it (same `train()` call, the config's own evaluation cadence,
TensorBoard and run files), following bench/solve_check.py's protocol. The config's
`target_return` stop is replaced by that protocol (a crossing the 100-episode check rejects does
not stop training). Throughput is measured on the CLI itself (bench/sac_throughput.py).
"""
import argparse
import json
import os
import tempfile
import time

T0 = float(os.environ.get('BENCH_T0', time.time()))

import numpy as np  # noqa: E402

from rl_control.train import learn  # noqa: E402
from rl_control.train.config import load_config  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument('mode', choices=['solve'])
    p.add_argument('--config', default='config/pendulum_sac.yaml')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--steps', type=int, default=20000)
    p.add_argument('--threshold', type=float, default=-200.0)
    p.add_argument('--check-episodes', type=int, default=100)
    p.add_argument('--set', action='append', default=[])
    a = p.parse_args()
    from solve_check import SolveClock
    clock = SolveClock(T0, a.threshold, a.check_episodes)
    cfg = load_config(a.config, [f'seed={a.seed}', f'total_steps={a.steps}',
                                 'target_return=null', *a.set])
    trainer: dict = {}
    init = learn.Trainer.__init__

    def capture(self, *args, **kwargs):  # the agent that the 100-episode check runs
        init(self, *args, **kwargs)
        trainer['t'] = self

    learn.Trainer.__init__ = capture

    def act(x: np.ndarray) -> np.ndarray:  # Pendulum's torque box is [-2, 2]
        return 2.0 * trainer['t']._act_eval(x.astype(np.float32))

    def on_eval(info: dict) -> bool:
        return clock.on_eval(int(info['step']), info['eval_mean_return'], act)

    with tempfile.TemporaryDirectory() as out:
        result = learn.train(cfg, out, progress=False, callbacks=[on_eval])
    print(json.dumps({'impl': 'rl_control', 'seed': a.seed, **clock.finish(result.steps),
                      'exit_s': time.time() - T0 - clock.check_s}))


if __name__ == '__main__':
    main()
